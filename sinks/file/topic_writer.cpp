#include "sinks/file/topic_writer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "agent/core/durable_file.h"

namespace tributary {
namespace {

// Lines are gathered in memory and written in chunks of about this size.
constexpr size_t kWriteThresholdBytes = 1 << 20;
constexpr size_t kSegmentDigits = 20;
constexpr std::string_view kCompletedSuffix = ".jsonl";
constexpr std::string_view kInProgressSuffix = ".jsonl.inprogress";
constexpr std::string_view kWatermarkName = "_watermark.json";

// The number of a file named <prefix><20 digits><suffix>, if `name` is one.
std::optional<uint64_t> ParseSegmentName(std::string_view name, std::string_view prefix,
                                         std::string_view suffix) {
  if (name.size() != prefix.size() + kSegmentDigits + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return std::nullopt;
  }
  std::string_view digits = name.substr(prefix.size(), kSegmentDigits);
  uint64_t number = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    number = number * 10 + static_cast<uint64_t>(c - '0');
  }
  return number;
}

bool Contains(const std::vector<uint64_t>& numbers, uint64_t number) {
  return std::find(numbers.begin(), numbers.end(), number) != numbers.end();
}

}  // namespace

TopicWriter::TopicWriter(std::string name, std::filesystem::path dir, uint64_t rotate_bytes)
    : name_(std::move(name)), dir_(std::move(dir)), rotate_bytes_(rotate_bytes) {}

TopicWriter::~TopicWriter() { Close(); }

std::filesystem::path TopicWriter::InProgressPath(uint64_t segment) const {
  return dir_ / fmt::format(".{:020}{}", segment, kInProgressSuffix);
}

std::filesystem::path TopicWriter::CompletedPath(uint64_t segment) const {
  return dir_ / fmt::format("{:020}{}", segment, kCompletedSuffix);
}

std::filesystem::path TopicWriter::WatermarkPath() const { return dir_ / kWatermarkName; }

Status TopicWriter::Recover() {
  std::error_code ec;
  bool created = std::filesystem::create_directories(dir_, ec);
  if (ec) return IoError("create directory", dir_, ec.value());
  // Otherwise a power loss could take the new directory, and the files in it, away.
  if (created) RETURN_IF_ERROR(SyncDirectory(dir_.parent_path()));
  RETURN_IF_ERROR(Lock());

  std::filesystem::path stale_temp = TempPathFor(WatermarkPath());
  std::filesystem::remove(stale_temp, ec);
  if (ec) return IoError("remove", stale_temp, ec.value());

  ASSIGN_OR_RETURN(SegmentFiles files, ListSegments());
  ASSIGN_OR_RETURN(std::optional<std::string> watermark, ReadFileIfExists(WatermarkPath()));
  if (watermark) return RecoverFromWatermark(*watermark, files);
  return RecoverWithoutWatermark(files);
}

Status TopicWriter::Lock() {
  dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return IoError("open directory", dir_, errno);
  if (::flock(dir_fd_, LOCK_EX | LOCK_NB) == 0) return Status::Ok();
  if (errno != EWOULDBLOCK) return IoError("lock", dir_, errno);
  return Status::InvalidConfig(fmt::format(
      "file-sink: {} is already being written by another sink or agent; give each source its "
      "own topics (put {{source}} in the topic template) or its own path",
      dir_.string()));
}

Result<TopicWriter::SegmentFiles> TopicWriter::ListSegments() const {
  SegmentFiles files;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (auto number = ParseSegmentName(name, "", kCompletedSuffix)) {
      files.completed.push_back(*number);
    } else if (auto number = ParseSegmentName(name, ".", kInProgressSuffix)) {
      files.in_progress.push_back(*number);
    }
  }
  if (ec) return IoError("list", dir_, ec.value());
  return files;
}

Status TopicWriter::RecoverFromWatermark(const std::string& text, const SegmentFiles& files) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError()) {
    return Corrupt(fmt::format("{} is not valid JSON ({} at offset {})", kWatermarkName,
                               rapidjson::GetParseError_En(doc.GetParseError()),
                               doc.GetErrorOffset()));
  }
  auto position = doc.IsObject() ? doc.FindMember("position") : doc.MemberEnd();
  auto segment = doc.IsObject() ? doc.FindMember("segment") : doc.MemberEnd();
  auto offset = doc.IsObject() ? doc.FindMember("offset") : doc.MemberEnd();
  if (!doc.IsObject() || position == doc.MemberEnd() || !position->value.IsString() ||
      segment == doc.MemberEnd() || !segment->value.IsUint64() || segment->value.GetUint64() == 0 ||
      offset == doc.MemberEnd() || !offset->value.IsUint64()) {
    return Corrupt(fmt::format(
        "{} is not an object with a \"position\" string, a \"segment\" number from 1 and an "
        "\"offset\" number",
        kWatermarkName));
  }
  uint64_t watermark_segment = segment->value.GetUint64();
  uint64_t durable_bytes = offset->value.GetUint64();

  for (uint64_t completed : files.completed) {
    if (completed > watermark_segment) {
      return Corrupt(fmt::format("completed segment {} is newer than the watermark's segment {}",
                                 completed, watermark_segment));
    }
  }
  bool in_progress = Contains(files.in_progress, watermark_segment);
  bool completed = Contains(files.completed, watermark_segment);
  if (in_progress && completed) {
    return Corrupt(
        fmt::format("segment {} exists both in progress and completed", watermark_segment));
  }
  if (in_progress || completed) {
    // Completed: the crash came between the rename and the next segment's first watermark.
    std::filesystem::path path =
        in_progress ? InProgressPath(watermark_segment) : CompletedPath(watermark_segment);
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) return IoError("stat", path, ec.value());
    if (size < durable_bytes) {
      return Corrupt(fmt::format("{} has {} bytes, fewer than the {} its watermark vouches for",
                                 path.filename().string(), size, durable_bytes));
    }
    if (size > durable_bytes) {
      if (::truncate(path.c_str(), static_cast<off_t>(durable_bytes)) != 0) {
        return IoError("truncate", path, errno);
      }
      spdlog::info("file-sink: Truncated a torn segment topic={} segment={} bytes={}", name_,
                   watermark_segment, size - durable_bytes);
    }
  } else if (durable_bytes > 0) {
    return Corrupt(fmt::format("segment {} is missing but its watermark vouches for {} bytes",
                               watermark_segment, durable_bytes));
  }
  for (uint64_t number : files.in_progress) {
    if (number > watermark_segment) RETURN_IF_ERROR(RemoveInProgress(number));
  }

  segment_ = completed ? watermark_segment + 1 : watermark_segment;
  file_bytes_ = completed ? 0 : durable_bytes;
  last_position_.assign(position->value.GetString(), position->value.GetStringLength());
  // Written by the agent since the lineage came in; older watermarks have none, as have the
  // checkpoints of that time.
  auto lineage = doc.FindMember("lineage");
  if (lineage != doc.MemberEnd() && lineage->value.IsString()) {
    last_lineage_.assign(lineage->value.GetString(), lineage->value.GetStringLength());
  }
  return Status::Ok();
}

Status TopicWriter::RecoverWithoutWatermark(const SegmentFiles& files) {
  // The first watermark is written before any segment completes, so completed segments
  // without one mean the watermark was lost, and with it which lines are duplicates.
  if (!files.completed.empty()) {
    return Corrupt(fmt::format("it has completed segments but no {}", kWatermarkName));
  }
  // Nothing here was ever vouched for, so nothing was acked: the source sends it again.
  for (uint64_t number : files.in_progress) RETURN_IF_ERROR(RemoveInProgress(number));
  segment_ = 1;
  file_bytes_ = 0;
  return Status::Ok();
}

Status TopicWriter::RemoveInProgress(uint64_t segment) {
  std::filesystem::path path = InProgressPath(segment);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError("remove", path, errno);
  spdlog::info("file-sink: Removed an unacknowledged segment topic={} segment={}", name_, segment);
  return Status::Ok();
}

Status TopicWriter::Corrupt(const std::string& problem) const {
  return Status::CorruptData(fmt::format(
      "file-sink: topic directory {}: {}; restore it from a backup, or move the directory "
      "away to write the topic afresh",
      dir_.string(), problem));
}

bool TopicWriter::IsReplay(std::string_view position, std::string_view lineage) {
  // Positions grow within a source's lineage, so a position at or below the last one taken in
  // it is a replay: after a crash (from the watermark) or after the source reconnected to its
  // checkpoint.
  if (!last_position_.empty() && lineage == last_lineage_ && position <= last_position_) {
    ++skipped_;
    return true;
  }
  if (skipped_ > 0) {
    spdlog::info("file-sink: Skipped events already written topic={} count={}", name_, skipped_);
    skipped_ = 0;
  }
  return false;
}

Status TopicWriter::Appended(std::string_view position, std::string_view lineage,
                             size_t line_start) {
  buffer_ += '\n';
  uint64_t segment_bytes = file_bytes_ + line_start;
  if (segment_bytes > 0 && segment_bytes + (buffer_.size() - line_start) > rotate_bytes_) {
    RETURN_IF_ERROR(Rotate(line_start));
  }
  last_position_.assign(position);
  last_lineage_.assign(lineage);
  dirty_ = true;
  if (buffer_.size() >= kWriteThresholdBytes) return WriteBuffered(buffer_.size());
  return Status::Ok();
}

Status TopicWriter::WriteBuffered(size_t length) {
  if (length == 0) return Status::Ok();
  std::filesystem::path path = InProgressPath(segment_);
  if (fd_ < 0) {
    // A new segment starts empty even if an unacknowledged one of that number survived.
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (file_bytes_ == 0 ? O_TRUNC : 0);
    fd_ = ::open(path.c_str(), flags, 0644);
    if (fd_ < 0) return IoError("open", path, errno);
  }
  RETURN_IF_ERROR(WriteAll(fd_, std::string_view(buffer_).substr(0, length), path));
  // Starts the write-back now, without waiting for it: the next fsync then finds little left
  // to write, instead of stalling the sink on everything written since the last one.
  // Advisory: a failure here leaves the work to that fsync.
  (void)::sync_file_range(fd_, static_cast<off_t>(file_bytes_), static_cast<off_t>(length),
                          SYNC_FILE_RANGE_WRITE);
  file_bytes_ += length;
  buffer_.erase(0, length);
  return Status::Ok();
}

Status TopicWriter::Sync() {
  if (!dirty_) return Status::Ok();
  RETURN_IF_ERROR(WriteBuffered(buffer_.size()));
  if (fd_ >= 0) {
    if (::fsync(fd_) != 0) return IoError("fsync", InProgressPath(segment_), errno);
    DropCached();
  }
  RETURN_IF_ERROR(SaveWatermark());
  dirty_ = false;
  return Status::Ok();
}

void TopicWriter::DropCached() {
  // Advisory, like sync_file_range above: a failure only leaves the pages cached.
  (void)::posix_fadvise(fd_, 0, static_cast<off_t>(file_bytes_), POSIX_FADV_DONTNEED);
}

Status TopicWriter::SaveWatermark() {
  rapidjson::StringBuffer json;
  rapidjson::Writer<rapidjson::StringBuffer> writer(json);
  writer.StartObject();
  writer.Key("position");
  writer.String(last_position_.data(), static_cast<rapidjson::SizeType>(last_position_.size()));
  writer.Key("segment");
  writer.Uint64(segment_);
  writer.Key("offset");
  writer.Uint64(file_bytes_);
  if (!last_lineage_.empty()) {
    writer.Key("lineage");
    writer.String(last_lineage_.data(), static_cast<rapidjson::SizeType>(last_lineage_.size()));
  }
  writer.EndObject();
  std::string contents(json.GetString(), json.GetSize());
  contents += '\n';
  return WriteFileAtomically(WatermarkPath(), contents);
}

Status TopicWriter::Rotate(size_t length) {
  if (before_completing_) RETURN_IF_ERROR(before_completing_());
  RETURN_IF_ERROR(WriteBuffered(length));
  std::filesystem::path in_progress = InProgressPath(segment_);
  // Without an open file nothing was written since recovery: the segment is durable already.
  if (fd_ >= 0) {
    if (::fsync(fd_) != 0) return IoError("fsync", in_progress, errno);
    DropCached();
    ::close(fd_);
    fd_ = -1;
  }
  // The watermark covers the whole segment before it gets its completed name.
  RETURN_IF_ERROR(SaveWatermark());
  std::filesystem::path completed = CompletedPath(segment_);
  if (::rename(in_progress.c_str(), completed.c_str()) != 0) {
    return IoError("rename", in_progress, errno);
  }
  if (::fsync(dir_fd_) != 0) return IoError("fsync directory", dir_, errno);
  spdlog::debug("file-sink: Completed a segment topic={} segment={} bytes={}", name_, segment_,
                file_bytes_);
  ++segment_;
  file_bytes_ = 0;
  return Status::Ok();
}

void TopicWriter::Close() {
  if (fd_ >= 0) ::close(fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  fd_ = -1;
  dir_fd_ = -1;
  buffer_.clear();
  dirty_ = false;
}

}  // namespace tributary
