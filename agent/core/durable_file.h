#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/status.h"

// Crash-safe file helpers shared by the checkpoint store and the file sink's watermarks.
namespace tributary {

// Fatal status "<operation> <path>: <strerror(error_number)>".
Status IoError(std::string_view operation, const std::filesystem::path& path, int error_number);

// Where WriteFileAtomically stages `path`'s new contents; a leftover one is a crash's debris.
std::filesystem::path TempPathFor(const std::filesystem::path& path);

// Replaces `path` with `contents` so that after a crash it holds either the old or the new
// contents, never a mix: writes TempPathFor(path), fsyncs it, renames it over `path`, fsyncs
// the directory.
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents);

// Makes creates, renames and unlinks in `dir` survive a crash.
Status SyncDirectory(const std::filesystem::path& dir);

// Writes all of `data` to `fd` (retrying short writes and EINTR); `path` names it in errors.
Status WriteAll(int fd, std::string_view data, const std::filesystem::path& path);

// The file's contents, or nullopt when it does not exist.
Result<std::optional<std::string>> ReadFileIfExists(const std::filesystem::path& path);

}  // namespace tributary
