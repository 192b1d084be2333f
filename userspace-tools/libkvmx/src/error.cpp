#include "kvmx/error.hpp"

#include <cerrno>

#include "kvmx/names.hpp"

namespace kvmx {

std::string Error::message() const {
  std::string m = what + ": " + describe_errno(code);
  if (!hint.empty()) m += "; " + hint;
  return m;
}

Failure::Failure(Error error) : std::runtime_error(error.message()), error_(std::move(error)) {}

Error errno_error(const char* what) {
  const int code = errno;
  return Error{code, what, {}};
}

}  // namespace kvmx
