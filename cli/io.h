// Standard input/output for blindlist commands: whole-input reads, and all-or-nothing writes
// (an -o file appears only once complete, with the mode asked for whatever the umask: 0600 by
// default, 0644 for public files such as certificates), whole or streamed.
// Thread-safety: an Input or Output has one owner.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::cli {

inline constexpr std::size_t kInputLimit = std::size_t{1} << 30;

// Reads all of FILE, or standard input when path is empty or "-". Refuses more than `limit` bytes.
Result<std::string> ReadInput(const std::string& path, std::size_t limit = kInputLimit);
inline constexpr mode_t kSecretFileMode = 0600;
inline constexpr mode_t kPublicFileMode = 0644;  // certificates, CSRs: read by other users

// Writes to FILE (through a temporary file renamed into place) or standard output. The file gets
// exactly `mode`, independent of the umask.
Status WriteOutput(const std::string& path, std::string_view data, mode_t mode = kSecretFileMode);

// The whole input in one buffer that is read once and never copied: sized from the file when it
// is a regular file, backed by transparent huge pages when it is large (a 24 MB post costs a
// dozen page faults, not six thousand). Errors as ReadInput.
class Input {
 public:
  static Result<Input> Read(const std::string& path, std::size_t limit = kInputLimit);
  Input(Input&& other) noexcept;
  Input& operator=(Input&& other) = delete;
  Input(const Input&) = delete;
  ~Input();

  [[nodiscard]] std::string_view text() const { return {data_, size_}; }
  // For decoding and decrypting in place.
  [[nodiscard]] std::span<char> chars() { return {data_, size_}; }
  [[nodiscard]] std::span<std::uint8_t> bytes() {
    return {reinterpret_cast<std::uint8_t*>(data_), size_};  // NOLINT(*-reinterpret-cast)
  }
  // Once plaintext is decrypted into the buffer: it is zeroed before it is given back.
  void WipeOnClose() { wipe_ = true; }

 private:
  Input() = default;
  Status Reserve(std::size_t capacity);
  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  bool wipe_ = false;
};

// Output written as it is produced. To FILE: a temporary file beside it, fsynced and renamed
// into place by Commit, removed if Commit is never reached; to standard output: written as is.
class Output {
 public:
  static Result<Output> Open(const std::string& path, mode_t mode = kSecretFileMode);
  Output(Output&& other) noexcept;
  Output& operator=(Output&& other) = delete;
  Output(const Output&) = delete;
  ~Output();

  Status Write(std::string_view data);
  Status Commit();

 private:
  Output() = default;
  std::string path_;  // empty: standard output
  std::string tmp_;
  int fd_ = -1;
};

}  // namespace blindlist::cli
