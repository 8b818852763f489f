#include "agent/checkpoint_store.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <random>
#include <system_error>
#include <utility>

#include "agent/core/durable_file.h"

namespace tributary {
namespace {

// "2024-05-01T12:34:56.789Z"
std::string NowIso8601() {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", text, millis);
}

// 64 random bits in hex: two sources' lineages, or two starts of one, never meet.
std::string NewLineage() {
  std::random_device random;
  return fmt::format("{:08x}{:08x}", random(), random());
}

}  // namespace

CheckpointStore::CheckpointStore(const std::filesystem::path& state_dir, std::string source)
    : source_(std::move(source)), dir_(state_dir / source_), path_(dir_ / "checkpoint.json") {}

Result<std::optional<std::string>> CheckpointStore::Load() {
  // A temp file is a Save that never reached its rename: the checkpoint file still holds the
  // previous position, which is the one to resume from.
  std::filesystem::path temp = TempPathFor(path_);
  std::error_code ec;
  if (std::filesystem::remove(temp, ec)) {
    spdlog::warn("checkpoint: Removed a temp file left by a crash path={}", temp.string());
  }
  if (ec) return IoError("remove", temp, ec.value());

  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadFileIfExists(path_));
  if (!text) {
    lineage_ = NewLineage();
    lineage_saved_ = false;
    return std::optional<std::string>();
  }

  rapidjson::Document doc;
  doc.Parse(text->data(), text->size());
  if (doc.HasParseError()) {
    return Corrupt(fmt::format("is not valid JSON ({} at offset {}, file is {} bytes)",
                               rapidjson::GetParseError_En(doc.GetParseError()),
                               doc.GetErrorOffset(), text->size()));
  }
  if (!doc.IsObject()) return Corrupt("is not a JSON object");
  auto source = doc.FindMember("source");
  if (source == doc.MemberEnd() || !source->value.IsString()) {
    return Corrupt("has no \"source\" string");
  }
  if (source_ != source->value.GetString()) {
    return Corrupt(fmt::format("belongs to source \"{}\"", source->value.GetString()));
  }
  auto lineage = doc.FindMember("lineage");
  lineage_ = lineage != doc.MemberEnd() && lineage->value.IsString()
                 ? std::string(lineage->value.GetString(), lineage->value.GetStringLength())
                 : std::string();
  lineage_saved_ = true;
  auto position = doc.FindMember("position");
  // A lineage alone: the source started, nothing was checkpointed yet (SaveLineage).
  if (position == doc.MemberEnd() && !lineage_.empty()) return std::optional<std::string>();
  if (position == doc.MemberEnd() || !position->value.IsString() ||
      position->value.GetStringLength() == 0) {
    return Corrupt("has no \"position\" string");
  }
  return std::optional<std::string>(
      std::string(position->value.GetString(), position->value.GetStringLength()));
}

void CheckpointStore::StartNewLineage() { lineage_ = NewLineage(); }

Status CheckpointStore::SaveLineage() {
  if (lineage_saved_) return Status::Ok();
  RETURN_IF_ERROR(Write(std::nullopt));
  lineage_saved_ = true;
  return Status::Ok();
}

Status CheckpointStore::Save(const std::string& position) { return Write(position); }

Status CheckpointStore::Write(const std::optional<std::string>& position) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return IoError("create directory", dir_, ec.value());

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  std::string saved_at = NowIso8601();
  writer.StartObject();
  writer.Key("source");
  writer.String(source_.data(), static_cast<rapidjson::SizeType>(source_.size()));
  if (position) {
    writer.Key("position");
    writer.String(position->data(), static_cast<rapidjson::SizeType>(position->size()));
  }
  writer.Key("saved_at");
  writer.String(saved_at.data(), static_cast<rapidjson::SizeType>(saved_at.size()));
  if (!lineage_.empty()) {
    writer.Key("lineage");
    writer.String(lineage_.data(), static_cast<rapidjson::SizeType>(lineage_.size()));
  }
  writer.EndObject();
  std::string contents(buffer.GetString(), buffer.GetSize());
  contents += '\n';
  return WriteFileAtomically(path_, contents);
}

Status CheckpointStore::Corrupt(const std::string& problem) const {
  return Status::CorruptData(fmt::format(
      "checkpoint {} {}; restore it from a backup, or move it away to start source \"{}\" "
      "without a checkpoint (changes may be skipped or delivered twice)",
      path_.string(), problem, source_));
}

}  // namespace tributary
