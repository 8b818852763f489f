#define BOOST_TEST_MODULE checkpoint_store_test
#include "agent/checkpoint_store.h"

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/support/temp_dir.h"

namespace tributary {
namespace {

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

BOOST_AUTO_TEST_CASE(no_checkpoint_loads_as_none) {
  testing::TempDir dir;
  CheckpointStore store(dir.path(), "shop");
  auto loaded = store.Load();
  BOOST_TEST_REQUIRE(loaded.ok());
  BOOST_TEST(!loaded->has_value());
}

BOOST_AUTO_TEST_CASE(save_then_load_round_trips) {
  testing::TempDir dir;
  CheckpointStore store(dir.path() / "state", "shop");
  BOOST_TEST_REQUIRE(store.Save("0/16B374D848").ok());
  BOOST_TEST_REQUIRE(store.Save("0/16B374D9A0").ok());
  BOOST_TEST(store.path() == dir.path() / "state" / "shop" / "checkpoint.json");

  auto json = nlohmann::json::parse(ReadText(store.path()));
  BOOST_TEST(json["source"] == "shop");
  BOOST_TEST(json["position"] == "0/16B374D9A0");
  std::string saved_at = json["saved_at"];
  BOOST_TEST(saved_at.size() == 24u);  // 2024-05-01T12:34:56.789Z
  BOOST_TEST(saved_at[10] == 'T');
  BOOST_TEST(saved_at.back() == 'Z');
  BOOST_TEST(!std::filesystem::exists(store.path().string() + ".tmp"));

  CheckpointStore reopened(dir.path() / "state", "shop");
  auto loaded = reopened.Load();
  BOOST_TEST_REQUIRE(loaded.ok());
  BOOST_TEST(loaded->value_or("") == "0/16B374D9A0");
}

// A source without a checkpoint starts a lineage; its checkpoints keep it, and a checkpoint from
// before lineages has none.
BOOST_AUTO_TEST_CASE(the_lineage_is_drawn_without_a_checkpoint_and_kept_by_its_checkpoints) {
  testing::TempDir dir;
  CheckpointStore store(dir.path(), "shop");
  BOOST_TEST_REQUIRE(store.Load().ok());
  const std::string drawn = store.lineage();
  BOOST_TEST(drawn.size() == 16u);
  // Saved alone before the source writes anything: a restart before the first checkpoint
  // resumes in the same lineage, still without a position.
  BOOST_TEST_REQUIRE(store.SaveLineage().ok());
  BOOST_TEST(!nlohmann::json::parse(ReadText(store.path())).contains("position"));
  CheckpointStore restarted(dir.path(), "shop");
  auto none = restarted.Load();
  BOOST_TEST_REQUIRE(none.ok());
  BOOST_TEST(!none->has_value());
  BOOST_TEST(restarted.lineage() == drawn);
  BOOST_TEST_REQUIRE(store.Save("0/16B374D848").ok());
  BOOST_TEST(nlohmann::json::parse(ReadText(store.path()))["lineage"] == drawn);

  CheckpointStore reopened(dir.path(), "shop");
  BOOST_TEST_REQUIRE(reopened.Load().ok());
  BOOST_TEST(reopened.lineage() == drawn);

  // Moved away: the next start is another lineage.
  std::filesystem::rename(store.path(), dir.path() / "moved.json");
  CheckpointStore fresh(dir.path(), "shop");
  BOOST_TEST_REQUIRE(fresh.Load().ok());
  BOOST_TEST(fresh.lineage().size() == 16u);
  BOOST_TEST(fresh.lineage() != drawn);

  std::ofstream(store.path()) << R"({"source":"shop","position":"0/1","saved_at":"x"})";
  CheckpointStore old(dir.path(), "shop");
  auto loaded = old.Load();
  BOOST_TEST_REQUIRE(loaded.ok());
  BOOST_TEST(loaded->value_or("") == "0/1");
  BOOST_TEST(old.lineage().empty());
  BOOST_TEST_REQUIRE(old.Save("0/2").ok());
  BOOST_TEST(!nlohmann::json::parse(ReadText(old.path())).contains("lineage"));
}

BOOST_AUTO_TEST_CASE(stale_temp_file_is_removed_and_ignored) {
  testing::TempDir dir;
  CheckpointStore store(dir.path(), "shop");
  std::filesystem::path temp = store.path().string() + ".tmp";
  WriteText(temp, "{\"source\": \"shop\", \"posi");
  auto none = store.Load();
  BOOST_TEST_REQUIRE(none.ok());
  BOOST_TEST(!none->has_value());
  BOOST_TEST(!std::filesystem::exists(temp));

  BOOST_TEST_REQUIRE(store.Save("0/10").ok());
  WriteText(temp, "{\"source\": \"shop\", \"position\": \"0/20\"}");
  auto loaded = store.Load();
  BOOST_TEST_REQUIRE(loaded.ok());
  BOOST_TEST(loaded->value_or("") == "0/10");
  BOOST_TEST(!std::filesystem::exists(temp));
}

BOOST_AUTO_TEST_CASE(truncated_checkpoint_is_corrupt_data) {
  testing::TempDir dir;
  CheckpointStore store(dir.path(), "shop");
  BOOST_TEST_REQUIRE(store.Save("0/16B374D848").ok());
  std::string text = ReadText(store.path());
  WriteText(store.path(), text.substr(0, text.size() / 2));

  auto loaded = store.Load();
  BOOST_TEST_REQUIRE(!loaded.ok());
  BOOST_TEST(loaded.status().code() == StatusCode::kCorruptData);
  BOOST_TEST(loaded.status().message().find(store.path().string()) != std::string::npos);
  BOOST_TEST(loaded.status().message().find("restore it") != std::string::npos);
  // Never reset: the damaged file stays for the operator.
  BOOST_TEST(ReadText(store.path()) == text.substr(0, text.size() / 2));
}

BOOST_AUTO_TEST_CASE(wrong_shape_is_corrupt_data) {
  testing::TempDir dir;
  CheckpointStore store(dir.path(), "shop");
  for (const char* text :
       {"", "[]", "{\"source\": \"shop\"}", "{\"source\": \"shop\", \"position\": 7}",
        "{\"source\": \"shop\", \"position\": \"\"}",
        "{\"source\": \"legacy\", \"position\": \"0/10\"}"}) {
    WriteText(store.path(), text);
    auto loaded = store.Load();
    BOOST_TEST_REQUIRE(!loaded.ok(), text);
    BOOST_TEST(loaded.status().code() == StatusCode::kCorruptData, text);
  }
}

BOOST_AUTO_TEST_CASE(io_errors_name_the_path) {
  testing::TempDir dir;
  WriteText(dir.path() / "state", "a file where the state directory should be");
  CheckpointStore store(dir.path() / "state", "shop");
  Status saved = store.Save("0/10");
  BOOST_TEST(saved.code() == StatusCode::kFatal);
  BOOST_TEST(saved.message().find((dir.path() / "state").string()) != std::string::npos);
  BOOST_TEST(saved.message().find("Not a directory") != std::string::npos);
}

}  // namespace
}  // namespace tributary
