#include "connectors/postgres/stream_spool.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "agent/core/durable_file.h"

namespace tributary::postgres {
namespace {

// Writes and reads go through a buffer of this size: large enough that a million small rows
// cost a few thousand system calls, small enough to keep several open transactions cheap.
constexpr size_t kBufferSize = size_t{256} * 1024;

struct RecordHeader {
  uint64_t lsn;
  uint32_t size;
};
constexpr size_t kHeaderSize = sizeof(uint64_t) + sizeof(uint32_t);

}  // namespace

Result<StreamSpool> StreamSpool::Create(std::filesystem::path path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("open", path, errno);
  return StreamSpool(std::move(path), fd);
}

StreamSpool::StreamSpool(StreamSpool&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      buffer_(std::move(other.buffer_)),
      read_pos_(other.read_pos_),
      records_(other.records_) {}

StreamSpool& StreamSpool::operator=(StreamSpool&& other) noexcept {
  if (this != &other) {
    CloseFile();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    buffer_ = std::move(other.buffer_);
    read_pos_ = other.read_pos_;
    records_ = other.records_;
  }
  return *this;
}

StreamSpool::~StreamSpool() { CloseFile(); }

void StreamSpool::CloseFile() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status StreamSpool::Append(uint64_t lsn, std::string_view message) {
  if (message.size() > UINT32_MAX) {
    return Status::CorruptData(
        fmt::format("postgres: a streamed message of {} bytes is too large", message.size()));
  }
  const RecordHeader header{lsn, static_cast<uint32_t>(message.size())};
  buffer_.append(reinterpret_cast<const char*>(&header.lsn), sizeof(header.lsn));
  buffer_.append(reinterpret_cast<const char*>(&header.size), sizeof(header.size));
  buffer_.append(message);
  ++records_;
  return buffer_.size() >= kBufferSize ? FlushWrites() : Status::Ok();
}

Status StreamSpool::FlushWrites() {
  RETURN_IF_ERROR(WriteAll(fd_, buffer_, path_));
  buffer_.clear();
  return Status::Ok();
}

Status StreamSpool::StartReading() {
  RETURN_IF_ERROR(FlushWrites());
  if (::lseek(fd_, 0, SEEK_SET) != 0) return IoError("seek", path_, errno);
  read_pos_ = 0;
  return Status::Ok();
}

Result<bool> StreamSpool::Fill(size_t size) {
  if (buffer_.size() - read_pos_ >= size) return true;
  buffer_.erase(0, read_pos_);
  read_pos_ = 0;
  while (buffer_.size() < size) {
    const size_t have = buffer_.size();
    buffer_.resize(have + std::max(kBufferSize, size - have));
    ssize_t got = ::read(fd_, buffer_.data() + have, buffer_.size() - have);
    if (got < 0 && errno == EINTR) {
      buffer_.resize(have);
      continue;
    }
    if (got < 0) {
      const int error = errno;
      buffer_.resize(have);
      return IoError("read", path_, error);
    }
    buffer_.resize(have + static_cast<size_t>(got));
    if (got == 0) return false;
  }
  return true;
}

Result<bool> StreamSpool::Next(uint64_t& lsn, std::string_view& message) {
  ASSIGN_OR_RETURN(bool more, Fill(kHeaderSize));
  if (!more) {
    // This process wrote the file whole: a partial record means someone else touched it.
    if (buffer_.size() != read_pos_) {
      return Status::CorruptData(
          fmt::format("postgres: spool {} ends in a partial record", path_.string()));
    }
    return false;
  }
  RecordHeader header{};
  std::memcpy(&header.lsn, buffer_.data() + read_pos_, sizeof(header.lsn));
  std::memcpy(&header.size, buffer_.data() + read_pos_ + sizeof(header.lsn), sizeof(header.size));
  ASSIGN_OR_RETURN(more, Fill(kHeaderSize + header.size));
  if (!more) {
    return Status::CorruptData(
        fmt::format("postgres: spool {} ends in a partial record", path_.string()));
  }
  lsn = header.lsn;
  message = std::string_view(buffer_).substr(read_pos_ + kHeaderSize, header.size);
  read_pos_ += kHeaderSize + header.size;
  return true;
}

void StreamSpool::Remove() {
  CloseFile();
  if (!path_.empty()) ::unlink(path_.c_str());
  buffer_.clear();
  buffer_.shrink_to_fit();
}

}  // namespace tributary::postgres
