#define BOOST_TEST_MODULE file_sink_test
#include "sinks/file/file_sink.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace tributary {
namespace {

namespace fs = std::filesystem;

constexpr char kTopic[] = "shop.public.t";

std::shared_ptr<const TableSchema> MakeTable(std::string schema = "public",
                                             std::string table = "t") {
  auto result = std::make_shared<TableSchema>();
  result->connector = "postgresql";
  result->source = "shop";
  result->database = "shopdb";
  result->schema = std::move(schema);
  result->table = std::move(table);
  result->columns = {
      {.name = "id", .type_name = "int4", .type_oid = 23, .key = true, .canonical_type = "int32"},
      {.name = "note", .type_name = "text", .type_oid = 25, .canonical_type = "string"}};
  return result;
}

std::string Position(uint64_t n) { return fmt::format("{:016X}", n); }

void AddInsert(Batch& batch, const std::shared_ptr<const TableSchema>& table, uint64_t n) {
  Event event;
  event.op = Op::kCreate;
  event.table = batch.Retain(table);
  event.after = static_cast<uint32_t>(batch.values.size());
  batch.values.push_back(batch.AddValue(ValueKind::kRaw, std::to_string(n)));
  batch.values.push_back(batch.AddValue(ValueKind::kString, fmt::format("note {}", n)));
  event.meta.lsn = n;
  event.position = batch.AddValue(ValueKind::kString, Position(n));
  batch.events.push_back(event);
}

// Events first..last of `table`, committed at `last`.
Batch MakeBatch(uint64_t sequence, uint64_t first, uint64_t last,
                const std::shared_ptr<const TableSchema>& table) {
  Batch batch;
  batch.sequence = sequence;
  for (uint64_t n = first; n <= last; ++n) AddInsert(batch, table, n);
  batch.commit_position = Position(last);
  return batch;
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void AppendText(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::app) << text;
}

std::string InProgress(uint64_t segment) {
  return fmt::format(".{:020}.jsonl.inprogress", segment);
}
std::string Completed(uint64_t segment) { return fmt::format("{:020}.jsonl", segment); }

// File names in `dir`, sorted.
std::vector<std::string> ListDir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// source.position of every line of every segment of the topic, in write order.
std::vector<std::string> TopicPositions(const fs::path& topic_dir) {
  std::vector<std::string> positions;
  for (uint64_t segment = 1;; ++segment) {
    fs::path path = topic_dir / Completed(segment);
    if (!fs::exists(path)) path = topic_dir / InProgress(segment);
    if (!fs::exists(path)) break;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      auto json = nlohmann::json::parse(line, nullptr, false);
      BOOST_TEST_REQUIRE(!json.is_discarded(), "not JSON: " << line);
      positions.push_back(json["source"]["position"]);
    }
  }
  return positions;
}

std::vector<std::string> Positions(uint64_t first, uint64_t last) {
  std::vector<std::string> positions;
  for (uint64_t n = first; n <= last; ++n) positions.push_back(Position(n));
  return positions;
}

nlohmann::json ReadWatermark(const fs::path& topic_dir) {
  return nlohmann::json::parse(ReadText(topic_dir / "_watermark.json"));
}

struct Fixture {
  Fixture() { options = {.name = "archive", .path = dir.path() / "out"}; }

  void Open() {
    sink = std::make_unique<FileSink>(options);
    BOOST_TEST_REQUIRE(sink->Open([this](uint64_t sequence) { acks.push_back(sequence); }).ok());
  }

  fs::path TopicDir(const std::string& topic = kTopic) const { return options.path / topic; }

  testing::TempDir dir;
  FileSinkOptions options;
  std::unique_ptr<FileSink> sink;
  std::vector<uint64_t> acks;
  std::shared_ptr<const TableSchema> table = MakeTable();
};

BOOST_FIXTURE_TEST_CASE(lines_land_in_their_topic_directories, Fixture) {
  Open();
  auto other = MakeTable("public", "u");
  auto mysql_style = MakeTable("", "t");  // no schema: the database names the topic
  auto next_version = std::make_shared<TableSchema>(*table);
  next_version->version = 2;

  Batch batch = MakeBatch(1, 1, 2, table);
  AddInsert(batch, other, 3);
  AddInsert(batch, mysql_style, 4);
  AddInsert(batch, next_version, 5);
  BOOST_TEST_REQUIRE(sink->Submit(batch).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());

  BOOST_TEST(ListDir(options.path) ==
             (std::vector<std::string>{"shop.public.t", "shop.public.u", "shop.shopdb.t"}));
  BOOST_TEST(ListDir(TopicDir()) == (std::vector<std::string>{InProgress(1), "_watermark.json"}));
  BOOST_TEST(TopicPositions(TopicDir()) ==
             (std::vector<std::string>{Position(1), Position(2), Position(5)}));
  BOOST_TEST(TopicPositions(TopicDir("shop.public.u")) == std::vector<std::string>{Position(3)});
  BOOST_TEST(TopicPositions(TopicDir("shop.shopdb.t")) == std::vector<std::string>{Position(4)});

  std::ifstream in(TopicDir() / InProgress(1));
  std::string line;
  std::getline(in, line);
  auto json = nlohmann::json::parse(line);
  BOOST_TEST(json["op"] == "c");
}

BOOST_FIXTURE_TEST_CASE(topic_template_fields_and_unsafe_characters, Fixture) {
  options.topic_template = "cdc-{database}/{table}";
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 1, MakeTable("public", "we ird"))).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(ListDir(options.path) == std::vector<std::string>{"cdc-shopdb_we_ird"});

  options.topic_template = "{source}.{nope}";
  FileSink bad(options);
  Status opened = bad.Open([](uint64_t) {});
  BOOST_TEST(opened.code() == StatusCode::kInvalidConfig);
  BOOST_TEST(opened.message().find("{nope}") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(acks_fire_only_after_flush_in_order, Fixture) {
  options.flush_interval = std::chrono::hours(1);
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 3, table)).ok());
  Batch commit_only;
  commit_only.sequence = 2;
  commit_only.commit_position = Position(3);
  BOOST_TEST_REQUIRE(sink->Submit(commit_only).ok());
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(3, 4, 6, table)).ok());
  BOOST_TEST(sink->PendingBytes() > 0u);
  BOOST_TEST_REQUIRE(sink->Poll().ok());
  BOOST_TEST(acks.empty());
  // Nothing is on disk that a watermark vouches for yet.
  BOOST_TEST(!fs::exists(TopicDir() / "_watermark.json"));

  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(acks == (std::vector<uint64_t>{1, 2, 3}));
  BOOST_TEST(sink->PendingBytes() == 0u);
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 6));

  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(acks.size() == 3u);
}

BOOST_FIXTURE_TEST_CASE(poll_flushes_once_the_interval_passed, Fixture) {
  options.flush_interval = std::chrono::milliseconds(0);
  Open();
  BOOST_TEST_REQUIRE(sink->Poll().ok());
  BOOST_TEST(acks.empty());
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(7, 1, 2, table)).ok());
  BOOST_TEST_REQUIRE(sink->Poll().ok());
  BOOST_TEST(acks == std::vector<uint64_t>{7});
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 2));
}

// The interval bounds how long a change waits while more keep coming; when the source falls
// quiet, what the sink holds is made durable at once.
BOOST_FIXTURE_TEST_CASE(a_quiet_source_flushes_at_once, Fixture) {
  options.flush_interval = std::chrono::hours(1);
  Open();
  BOOST_TEST_REQUIRE(sink->SourceQuiet().ok());
  BOOST_TEST(!fs::exists(TopicDir()));
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(4, 1, 3, table)).ok());
  BOOST_TEST_REQUIRE(sink->Poll().ok());
  BOOST_TEST(acks.empty());
  BOOST_TEST_REQUIRE(sink->SourceQuiet().ok());
  BOOST_TEST(acks == std::vector<uint64_t>{4});
  BOOST_TEST(ReadWatermark(TopicDir())["position"] == Position(3));
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 3));
}

BOOST_FIXTURE_TEST_CASE(with_flush_when_quiet_off_only_the_interval_flushes, Fixture) {
  options.flush_interval = std::chrono::hours(1);
  options.flush_when_quiet = false;
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(4, 1, 3, table)).ok());
  BOOST_TEST_REQUIRE(sink->SourceQuiet().ok());
  BOOST_TEST(acks.empty());
  BOOST_TEST(!fs::exists(TopicDir() / "_watermark.json"));
}

BOOST_FIXTURE_TEST_CASE(watermark_records_the_durable_prefix, Fixture) {
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 4, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  auto watermark = ReadWatermark(TopicDir());
  BOOST_TEST(watermark.size() == 3u);
  BOOST_TEST(watermark["position"] == Position(4));
  BOOST_TEST(watermark["segment"] == 1);
  BOOST_TEST(watermark["offset"] == fs::file_size(TopicDir() / InProgress(1)));
  BOOST_TEST(!fs::exists(TopicDir() / "_watermark.json.tmp"));
}

BOOST_FIXTURE_TEST_CASE(rotation_numbers_segments_within_rotate_bytes, Fixture) {
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 1, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  uint64_t line_bytes = fs::file_size(TopicDir() / InProgress(1));
  sink->Close();

  // Three lines fit in a segment, a fourth does not (lines 1 to 9 have the same length).
  options.rotate_bytes = line_bytes * 3 + line_bytes / 2;
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 2, 10, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());

  BOOST_TEST(ListDir(TopicDir()) ==
             (std::vector<std::string>{InProgress(4), Completed(1), Completed(2), Completed(3),
                                       "_watermark.json"}));
  for (uint64_t segment = 1; segment <= 3; ++segment) {
    BOOST_TEST(fs::file_size(TopicDir() / Completed(segment)) == 3 * line_bytes);
  }
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 10));
  auto watermark = ReadWatermark(TopicDir());
  BOOST_TEST(watermark["segment"] == 4);
  BOOST_TEST(watermark["offset"] == fs::file_size(TopicDir() / InProgress(4)));
  BOOST_TEST(watermark["position"] == Position(10));
}

// How many of the file's pages are in the page cache.
size_t ResidentPages(const fs::path& path) {
  const size_t size = fs::file_size(path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_TEST_REQUIRE(fd >= 0);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  BOOST_TEST_REQUIRE(map != MAP_FAILED);
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  BOOST_TEST_REQUIRE(::mincore(map, size, resident.data()) == 0);
  ::munmap(map, size);
  return static_cast<size_t>(std::count_if(resident.begin(), resident.end(),
                                           [](unsigned char pages) { return pages & 1; }));
}

// Segments are written once and read later, by loaders: once fsynced, their pages leave the
// page cache instead of pushing the database's own pages out of it. The last, partly written
// page stays (the next line appends to it).
BOOST_FIXTURE_TEST_CASE(fsynced_segments_leave_the_page_cache, Fixture) {
  options.rotate_bytes = 256 * 1024;
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 6000, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  const std::vector<std::string> files = ListDir(TopicDir());
  BOOST_TEST_REQUIRE(files.size() >= 4U);  // completed segments, the open one, the watermark
  for (const std::string& file : files) {
    if (file == "_watermark.json") continue;
    BOOST_TEST_CONTEXT(file) {
      if (file.front() == '.') {
        BOOST_TEST(ResidentPages(TopicDir() / file) <= 1U);
      } else {
        BOOST_TEST(fs::file_size(TopicDir() / file) > 16 * 4096U);
        BOOST_TEST(ResidentPages(TopicDir() / file) == 0U);
      }
    }
  }
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 6000));
}

BOOST_FIXTURE_TEST_CASE(a_line_longer_than_rotate_bytes_gets_its_own_segment, Fixture) {
  options.rotate_bytes = 10;
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 3, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(ListDir(TopicDir()) == (std::vector<std::string>{InProgress(3), Completed(1),
                                                              Completed(2), "_watermark.json"}));
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 3));
}

BOOST_FIXTURE_TEST_CASE(recovery_truncates_a_torn_segment_and_skips_replays, Fixture) {
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 5, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  // Lines written but not vouched for, and a torn one, as a crash before the watermark leaves.
  sink.reset();
  fs::path segment = TopicDir() / InProgress(1);
  uint64_t durable = fs::file_size(segment);
  std::string replayed_line = ReadText(segment).substr(0, durable / 5);
  AppendText(segment, replayed_line + "{\"before\":null,\"aft");

  Open();
  // The source replays from its checkpoint, which is at or below the watermark.
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 3, 6, table)).ok());
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(2, 7, 8, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(acks == (std::vector<uint64_t>{1, 1, 2}));
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 8));
  BOOST_TEST(ReadWatermark(TopicDir())["position"] == Position(8));
}

BOOST_FIXTURE_TEST_CASE(replays_without_reopening_are_skipped, Fixture) {
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 5, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  // The source reconnected to its checkpoint while the sink stayed open.
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(2, 4, 7, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 7));
}

// A source that starts over without its checkpoint (a new slot, a server restored from a
// backup) starts a new lineage and may number its changes below what the topic holds: they are
// new, not replays. Within that lineage, replays are skipped again.
BOOST_FIXTURE_TEST_CASE(positions_compare_only_within_a_lineage, Fixture) {
  auto batch = [&](uint64_t sequence, uint64_t first, uint64_t last, std::string_view lineage) {
    Batch made = MakeBatch(sequence, first, last, table);
    made.lineage = lineage;
    return made;
  };
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(batch(1, 50, 52, "aaaa")).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  sink.reset();

  Open();
  BOOST_TEST_REQUIRE(sink->Submit(batch(1, 1, 2, "bbbb")).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  std::vector<std::string> expected = Positions(50, 52);
  for (const std::string& position : Positions(1, 2)) expected.push_back(position);
  BOOST_TEST(TopicPositions(TopicDir()) == expected);
  BOOST_TEST(ReadWatermark(TopicDir())["position"] == Position(2));
  BOOST_TEST(ReadWatermark(TopicDir())["lineage"] == "bbbb");

  // A restart in that lineage replays from its checkpoint: what the topic holds is skipped.
  sink.reset();
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(batch(1, 2, 3, "bbbb")).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  expected.push_back(Position(3));
  BOOST_TEST(TopicPositions(TopicDir()) == expected);
}

// Checkpoints and watermarks from before lineages have none: they match, as they did.
BOOST_FIXTURE_TEST_CASE(watermarks_without_a_lineage_match_batches_without_one, Fixture) {
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 3, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(!ReadWatermark(TopicDir()).contains("lineage"));
  sink.reset();
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 2, 4, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 4));
}

BOOST_FIXTURE_TEST_CASE(later_in_progress_segments_are_removed, Fixture) {
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 2, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  sink.reset();
  AppendText(TopicDir() / InProgress(2), "unacknowledged\n");
  AppendText(TopicDir() / InProgress(3), "unacknowledged\n");

  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 3, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(ListDir(TopicDir()) == (std::vector<std::string>{InProgress(1), "_watermark.json"}));
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 3));
}

BOOST_FIXTURE_TEST_CASE(a_segment_renamed_before_its_watermark_moved_is_kept, Fixture) {
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 5, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  sink.reset();
  // The crash came after the rename, with the next segment begun but never vouched for.
  uint64_t durable = fs::file_size(TopicDir() / InProgress(1));
  AppendText(TopicDir() / InProgress(1), "{\"torn");
  fs::rename(TopicDir() / InProgress(1), TopicDir() / Completed(1));
  AppendText(TopicDir() / InProgress(2), "{\"unacknowledged\": true}\n");

  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 8, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(ListDir(TopicDir()) ==
             (std::vector<std::string>{InProgress(2), Completed(1), "_watermark.json"}));
  BOOST_TEST(fs::file_size(TopicDir() / Completed(1)) == durable);
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 8));
  auto watermark = ReadWatermark(TopicDir());
  BOOST_TEST(watermark["segment"] == 2);
  BOOST_TEST(watermark["offset"] == fs::file_size(TopicDir() / InProgress(2)));
}

BOOST_FIXTURE_TEST_CASE(without_a_watermark_the_in_progress_segment_is_discarded, Fixture) {
  fs::create_directories(TopicDir());
  AppendText(TopicDir() / InProgress(1), "{\"never\": \"acked\"}\n{\"torn");
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 2, table)).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 2));
}

BOOST_FIXTURE_TEST_CASE(damaged_watermark_is_corrupt_data, Fixture) {
  fs::create_directories(TopicDir());
  AppendText(TopicDir() / "_watermark.json", "{\"position\": \"00");
  Open();
  Status submitted = sink->Submit(MakeBatch(1, 1, 1, table));
  BOOST_TEST(submitted.code() == StatusCode::kCorruptData);
  BOOST_TEST(submitted.message().find(TopicDir().string()) != std::string::npos);
  BOOST_TEST(sink->Flush().code() == StatusCode::kCorruptData);
  BOOST_TEST(acks.empty());
}

BOOST_FIXTURE_TEST_CASE(write_errors_are_fatal_and_nothing_is_acked, Fixture) {
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 1, table)).ok());
  // The topic is recovered (and empty) now; its first segment turns out to be on a full disk.
  fs::create_symlink("/dev/full", TopicDir() / InProgress(1));
  Status flushed = sink->Flush();
  BOOST_TEST(flushed.code() == StatusCode::kFatal);
  BOOST_TEST(flushed.message().find(InProgress(1)) != std::string::npos);
  BOOST_TEST(flushed.message().find("No space left on device") != std::string::npos);
  BOOST_TEST(acks.empty());
  BOOST_TEST(sink->Submit(MakeBatch(2, 2, 2, table)).code() == StatusCode::kFatal);
  BOOST_TEST(sink->Flush().code() == StatusCode::kFatal);
  BOOST_TEST(sink->Poll().code() == StatusCode::kFatal);
  BOOST_TEST(acks.empty());
}

BOOST_FIXTURE_TEST_CASE(a_topic_has_one_writer, Fixture) {
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(MakeBatch(1, 1, 1, table)).ok());
  FileSink second(options);
  BOOST_TEST_REQUIRE(second.Open([](uint64_t) {}).ok());
  Status submitted = second.Submit(MakeBatch(1, 1, 1, table));
  BOOST_TEST(submitted.code() == StatusCode::kInvalidConfig);
  BOOST_TEST(submitted.message().find("{source}") != std::string::npos);
}

constexpr char kSchemaChanges[] = "shop.schema-changes";

// A schema-change event for `table` (a registered version) at position n.
void AddSchemaChange(Batch& batch, const std::shared_ptr<const TableSchema>& table, uint64_t n) {
  Event event;
  event.op = Op::kSchemaChange;
  event.table = batch.Retain(table);
  event.position = batch.AddValue(ValueKind::kString, Position(n));
  batch.events.push_back(event);
}

std::shared_ptr<const TableSchema> Version(const std::shared_ptr<const TableSchema>& base,
                                           uint32_t version, bool dropped = false) {
  auto next = std::make_shared<TableSchema>(*base);
  next->version = version;
  next->previous_version = version - 1;
  next->dropped = dropped;
  return next;
}

// Every line of the topic's first segment, parsed.
std::vector<nlohmann::json> TopicLines(const fs::path& topic_dir) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(topic_dir / InProgress(1));
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

BOOST_FIXTURE_TEST_CASE(schema_changes_go_to_their_own_topic_and_share_the_ack, Fixture) {
  options.flush_interval = std::chrono::hours(1);
  Open();
  auto v2 = Version(table, 2);
  auto gone = Version(MakeTable("public", "gone"), 5, /*dropped=*/true);
  Batch batch;
  batch.sequence = 1;
  AddSchemaChange(batch, v2, 1);
  AddInsert(batch, v2, 1);
  AddInsert(batch, v2, 2);
  AddSchemaChange(batch, gone, 3);  // a dropped table: no rows follow
  batch.commit_position = Position(3);
  BOOST_TEST_REQUIRE(sink->Submit(batch).ok());
  BOOST_TEST_REQUIRE(sink->Poll().ok());
  BOOST_TEST(acks.empty());
  BOOST_TEST(!fs::exists(TopicDir(kSchemaChanges) / "_watermark.json"));

  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(acks == std::vector<uint64_t>{1});
  // The dropped table's events never made a row directory.
  BOOST_TEST(ListDir(options.path) == (std::vector<std::string>{kTopic, kSchemaChanges}));
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 2));
  BOOST_TEST(TopicPositions(TopicDir(kSchemaChanges)) ==
             (std::vector<std::string>{Position(1), Position(3)}));
  BOOST_TEST(ReadWatermark(TopicDir(kSchemaChanges))["position"] == Position(3));
  const std::vector<nlohmann::json> changes = TopicLines(TopicDir(kSchemaChanges));
  BOOST_TEST_REQUIRE(changes.size() == 2u);
  BOOST_TEST(changes[0]["table"] == "public.t");
  BOOST_TEST(changes[0]["version"] == 2);
  BOOST_TEST(changes[0]["tableChanges"][0]["type"] == "ALTER");
  BOOST_TEST(changes[1]["table"] == "public.gone");
  BOOST_TEST(changes[1]["tableChanges"][0]["type"] == "DROP");
  // Rows say the version the schema change announced.
  BOOST_TEST(TopicLines(TopicDir())[0]["source"]["schema_version"] == 2);

  // A replay after a restart writes neither the schema change nor the rows again.
  sink.reset();
  Open();
  BOOST_TEST_REQUIRE(sink->Submit(batch).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());
  BOOST_TEST(TopicPositions(TopicDir(kSchemaChanges)) ==
             (std::vector<std::string>{Position(1), Position(3)}));
  BOOST_TEST(TopicPositions(TopicDir()) == Positions(1, 2));
}

BOOST_FIXTURE_TEST_CASE(rows_are_never_durable_before_their_schema_change, Fixture) {
  Open();
  auto v2 = Version(table, 2);
  Batch batch;
  batch.sequence = 1;
  AddSchemaChange(batch, v2, 1);
  AddInsert(batch, v2, 1);
  batch.commit_position = Position(1);
  BOOST_TEST_REQUIRE(sink->Submit(batch).ok());
  // The schema change cannot be written: the rows must not be vouched for either.
  fs::create_symlink("/dev/full", TopicDir(kSchemaChanges) / InProgress(1));
  BOOST_TEST(sink->Flush().code() == StatusCode::kFatal);
  BOOST_TEST(acks.empty());
  BOOST_TEST(!fs::exists(TopicDir() / "_watermark.json"));
}

// A rotation completes a segment, and vouches for its rows, inside Submit: the schema change
// those rows follow is made durable first.
BOOST_FIXTURE_TEST_CASE(a_rotation_makes_the_schema_change_durable_before_its_rows, Fixture) {
  options.flush_interval = std::chrono::hours(1);
  options.rotate_bytes = 1024;
  Open();
  auto v2 = Version(table, 2);
  Batch batch;
  batch.sequence = 1;
  AddSchemaChange(batch, v2, 1);
  for (uint64_t n = 1; n <= 40; ++n) AddInsert(batch, v2, n);
  batch.commit_position = Position(40);
  BOOST_TEST_REQUIRE(sink->Submit(batch).ok());
  BOOST_TEST_REQUIRE(fs::exists(TopicDir() / Completed(1)));
  BOOST_TEST_REQUIRE(fs::exists(TopicDir(kSchemaChanges) / "_watermark.json"));
  BOOST_TEST(ReadWatermark(TopicDir(kSchemaChanges))["position"] == Position(1));
  BOOST_TEST(acks.empty());
}

BOOST_FIXTURE_TEST_CASE(schemas_true_writes_connect_form_lines, Fixture) {
  options.schemas = true;
  Open();
  auto v2 = Version(table, 2);
  Batch batch;
  batch.sequence = 1;
  AddSchemaChange(batch, v2, 1);
  AddInsert(batch, v2, 1);
  batch.commit_position = Position(1);
  BOOST_TEST_REQUIRE(sink->Submit(batch).ok());
  BOOST_TEST_REQUIRE(sink->Flush().ok());

  const std::vector<nlohmann::json> rows = TopicLines(TopicDir());
  BOOST_TEST_REQUIRE(rows.size() == 1u);
  BOOST_TEST(rows[0]["schema"]["name"] == "shop.public.t.Envelope");
  BOOST_TEST(rows[0]["schema"]["version"] == 2);
  BOOST_TEST(rows[0]["payload"]["after"] == nlohmann::json::parse(R"({"id":1,"note":"note 1"})"));
  BOOST_TEST(rows[0]["payload"]["source"]["position"] == Position(1));
  const std::vector<nlohmann::json> changes = TopicLines(TopicDir(kSchemaChanges));
  BOOST_TEST_REQUIRE(changes.size() == 1u);
  BOOST_TEST(changes[0]["schema"]["name"] == "io.tributary.SchemaChangeValue");
  BOOST_TEST(changes[0]["payload"]["version"] == 2);
  // The watermark still finds the position inside the Connect form.
  BOOST_TEST(ReadWatermark(TopicDir())["position"] == Position(1));
}

}  // namespace
}  // namespace tributary
