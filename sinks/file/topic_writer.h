#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

namespace tributary {

// One topic directory of the file sink (DESIGN.md §6): numbered segments, one envelope per
// line, the open one hidden as .N.jsonl.inprogress, and _watermark.json saying which prefix
// of which segment is durable and the position of its last event.
//
// Durability order: segment data is fsynced before the watermark that covers it is written,
// and a segment is renamed to its completed name only once the watermark covers all of it,
// so a completed segment never shrinks on recovery.
class TopicWriter {
 public:
  TopicWriter(std::string name, std::filesystem::path dir, uint64_t rotate_bytes);
  ~TopicWriter();
  TopicWriter(const TopicWriter&) = delete;
  TopicWriter& operator=(const TopicWriter&) = delete;

  // Creates the directory, or brings it back to its watermark after a crash: the watermark's
  // segment is truncated to the durable offset and later in-progress segments are deleted.
  // Locks the directory: a second writer (another sink, another agent) is an error.
  Status Recover();

  // Buffers the line `write_line(std::string& out)` appends (one event, no newline), unless
  // `position` is at or below the last one this topic took in the same `lineage`
  // (Batch::lineage), including the recovered watermark's: a replay of what the topic already
  // holds. Rotates first when the line would take a non-empty segment past rotate_bytes.
  template <typename WriteLine>
  Status Append(std::string_view position, std::string_view lineage, WriteLine&& write_line) {
    if (IsReplay(position, lineage)) return Status::Ok();
    const size_t line_start = buffer_.size();
    write_line(buffer_);
    return Appended(position, lineage, line_start);
  }

  // Writes the buffer, fsyncs the segment and saves the watermark, if anything was appended
  // since the last call.
  Status Sync();

  // Called when a segment is about to be made durable and completed by a rotation, which
  // happens inside Append, before the sink's next flush: what must be durable first (the
  // schema changes the rows follow) is synced there.
  void BeforeCompletingSegment(std::function<Status()> hook) {
    before_completing_ = std::move(hook);
  }

  // Closes the segment file and unlocks the directory; buffered lines are dropped (they were
  // never acked).
  void Close();

 private:
  // Counts and says so when `position` is a replay; logs the count skipped before a new one.
  bool IsReplay(std::string_view position, std::string_view lineage);
  // Ends the line appended at buffer_[line_start…] and takes `position` as the last one.
  Status Appended(std::string_view position, std::string_view lineage, size_t line_start);

  std::filesystem::path InProgressPath(uint64_t segment) const;
  std::filesystem::path CompletedPath(uint64_t segment) const;
  std::filesystem::path WatermarkPath() const;

  struct SegmentFiles {
    std::vector<uint64_t> completed;
    std::vector<uint64_t> in_progress;
  };
  Status Lock();
  Result<SegmentFiles> ListSegments() const;
  Status RecoverFromWatermark(const std::string& text, const SegmentFiles& files);
  Status RecoverWithoutWatermark(const SegmentFiles& files);
  Status RemoveInProgress(uint64_t segment);
  Status Corrupt(const std::string& problem) const;

  // Writes buffer_[0, length) to the segment and drops it from the buffer.
  Status WriteBuffered(size_t length);
  Status SaveWatermark();
  // Drops the open segment's pages from the page cache; they must be fsynced already.
  void DropCached();
  // Completes the open segment with the first `length` buffered bytes; the rest of the
  // buffer starts the next segment.
  Status Rotate(size_t length);

  std::string name_;
  std::filesystem::path dir_;
  uint64_t rotate_bytes_;
  std::function<Status()> before_completing_;

  int dir_fd_ = -1;  // holds the directory's lock
  uint64_t segment_ = 1;
  int fd_ = -1;              // the open segment, opened on its first write
  uint64_t file_bytes_ = 0;  // bytes of the open segment written to its file
  std::string buffer_;       // lines not yet written to the file
  // Of the last line appended, or the recovered watermark's.
  std::string last_position_;
  std::string last_lineage_;  // of last_position_
  uint64_t skipped_ = 0;      // replayed events skipped since the last one appended
  bool dirty_ = false;        // appended since the last watermark
};

}  // namespace tributary
