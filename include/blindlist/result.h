// Errors as values at module boundaries.
// Thread-safety: plain value types; no shared state.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace blindlist {

// A failure: a stable machine-readable code and a one-line human message.
struct Error {
  std::string code;     // e.g. "malformed-der", "wrong-key", "tampered"
  std::string message;  // one line, names the problem; never carries key material
};

inline Error MakeError(std::string code, std::string message) {
  return Error{std::move(code), std::move(message)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result for operations that return nothing on success.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error)
      : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  static Status Ok() { return Status(); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace blindlist

// Propagates an error from an expression yielding Result<T> or Status.
#define BL_CONCAT_INNER(a, b) a##b
#define BL_CONCAT(a, b) BL_CONCAT_INNER(a, b)
// `lhs` may be a declaration ("Tlv t"), so it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define BL_TRY_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                       \
  if (!tmp.ok()) return tmp.error();       \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
#define BL_TRY_ASSIGN(lhs, expr) BL_TRY_ASSIGN_IMPL(BL_CONCAT(bl_try_, __LINE__), lhs, expr)
#define BL_TRY(expr)                                 \
  do {                                               \
    auto bl_status_ = (expr);                        \
    if (!bl_status_.ok()) return bl_status_.error(); \
  } while (0)
