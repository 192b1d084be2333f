// Errors that keep errno and name the call that failed, and the Result<T> of the raw API tier.
//
// Every call in libkvmx comes in two tiers:
//   try_foo(...) -> Result<T>   returns the error; for negative tests and callers that recover.
//   foo(...)     -> T           throws Failure; for tests and tools where any error is fatal.
// Both tiers report the same Error, e.g. "KVM_CREATE_VCPU: EINVAL (Invalid argument)".
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace kvmx {

struct Error {
  int code = 0;      // a positive errno value
  std::string what;  // the failing call and any detail, e.g. "KVM_CREATE_VM" or "open(/dev/kvmx)"
  std::string hint;  // what the user can do about it; may be empty

  // "KVM_CREATE_VM: EINVAL (Invalid argument)", then "; " and the hint if there is one.
  std::string message() const;
};

// The exception of the asserting tier.
class Failure : public std::runtime_error {
 public:
  explicit Failure(Error error);
  const Error& error() const noexcept { return error_; }

 private:
  Error error_;
};

// Reading the value of a failed Result throws Failure, which turns the raw tier into the
// asserting tier with one call: try_create_vm().value().
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // The errno of the failure, 0 on success: lets tests write EXPECT_EQ(r.err(), EINVAL).
  int err() const noexcept { return ok() ? 0 : std::get<1>(v_).code; }

  T& value() & { throw_if_error(); return std::get<0>(v_); }
  const T& value() const& { throw_if_error(); return std::get<0>(v_); }
  T&& value() && { throw_if_error(); return std::get<0>(std::move(v_)); }
  T value_or(T fallback) const& { return ok() ? std::get<0>(v_) : std::move(fallback); }

  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    if (ok()) throw std::logic_error("kvmx::Result::error() called on a success");
    return std::get<1>(v_);
  }

 private:
  void throw_if_error() const {
    if (!ok()) throw Failure(std::get<1>(v_));
  }

  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}

  bool ok() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return ok(); }
  int err() const noexcept { return error_ ? error_->code : 0; }
  void value() const {
    if (error_) throw Failure(*error_);
  }
  const Error& error() const {
    if (!error_) throw std::logic_error("kvmx::Result::error() called on a success");
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

// An Error for the current errno: errno_error("mmap"). Takes a C string so that nothing between
// the failing call and the read of errno can allocate and disturb it.
Error errno_error(const char* what);

}  // namespace kvmx
