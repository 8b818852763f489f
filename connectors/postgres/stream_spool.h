#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "agent/core/status.h"

namespace tributary::postgres {

// The messages of one streamed (in-progress) transaction, kept on disk until its Stream Commit
// or Stream Abort, so that a transaction of any size costs a fixed amount of memory. The file
// is scratch: it is not synced, and a restart deletes it, since the server sends a streamed
// transaction again from its start after a reconnect.
//
// Records are the message's WAL position and its pgoutput bytes, in host byte order.
class StreamSpool {
 public:
  // Creates (or truncates) the file at `path`.
  static Result<StreamSpool> Create(std::filesystem::path path);

  StreamSpool(StreamSpool&& other) noexcept;
  StreamSpool& operator=(StreamSpool&& other) noexcept;
  StreamSpool(const StreamSpool&) = delete;
  StreamSpool& operator=(const StreamSpool&) = delete;
  ~StreamSpool();  // closes the file; Remove() deletes it

  Status Append(uint64_t lsn, std::string_view message);

  // Switches to reading from the first record; no Append after this.
  Status StartReading();
  // The next record, or false at the end. `message` stays valid until the next call.
  Result<bool> Next(uint64_t& lsn, std::string_view& message);

  // Closes and deletes the file (best effort: it is scratch).
  void Remove();

  const std::filesystem::path& path() const { return path_; }
  uint64_t records() const { return records_; }

 private:
  StreamSpool(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  Status FlushWrites();
  // Makes at least `size` unread bytes available in buffer_; false at the end of the file.
  Result<bool> Fill(size_t size);
  void CloseFile();

  std::filesystem::path path_;
  int fd_ = -1;
  std::string buffer_;  // pending writes, or read-ahead while reading
  size_t read_pos_ = 0;
  uint64_t records_ = 0;
};

}  // namespace tributary::postgres
