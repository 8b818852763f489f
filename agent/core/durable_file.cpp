#include "agent/core/durable_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace tributary {
namespace {

// Closes the descriptor on every return path; Close() reports the error when it matters.
class FileCloser {
 public:
  explicit FileCloser(int fd) : fd_(fd) {}
  ~FileCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileCloser(const FileCloser&) = delete;
  FileCloser& operator=(const FileCloser&) = delete;

  // close() can report a deferred write error (NFS, quota), so it is checked for writes.
  int Close() {
    int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

Status WriteAndSync(const std::filesystem::path& path, std::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("open", path, errno);
  FileCloser closer(fd);
  RETURN_IF_ERROR(WriteAll(fd, contents, path));
  if (::fsync(fd) != 0) return IoError("fsync", path, errno);
  if (closer.Close() != 0) return IoError("close", path, errno);
  return Status::Ok();
}

}  // namespace

Status IoError(std::string_view operation, const std::filesystem::path& path, int error_number) {
  return Status::Fatal(
      fmt::format("{} {}: {}", operation, path.string(), std::strerror(error_number)));
}

std::filesystem::path TempPathFor(const std::filesystem::path& path) {
  std::filesystem::path temp = path;
  temp += ".tmp";
  return temp;
}

Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::path temp = TempPathFor(path);
  Status status = WriteAndSync(temp, contents);
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = IoError("rename", temp, errno);
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  return SyncDirectory(path.parent_path().empty() ? "." : path.parent_path());
}

Status SyncDirectory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open directory", dir, errno);
  FileCloser closer(fd);
  if (::fsync(fd) != 0) return IoError("fsync directory", dir, errno);
  return Status::Ok();
}

Status WriteAll(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return IoError("write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
  return Status::Ok();
}

Result<std::optional<std::string>> ReadFileIfExists(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return IoError("open", path, errno);
  }
  FileCloser closer(fd);
  std::string contents;
  char chunk[8192];
  while (true) {
    ssize_t got = ::read(fd, chunk, sizeof(chunk));
    if (got < 0) {
      if (errno == EINTR) continue;
      return IoError("read", path, errno);
    }
    if (got == 0) break;
    contents.append(chunk, static_cast<size_t>(got));
  }
  return std::optional<std::string>(std::move(contents));
}

}  // namespace tributary
