// An owned file descriptor: closed on destruction, movable, not copyable.
#pragma once

#include <utility>

#include "kvmx/error.hpp"

namespace kvmx {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept { return std::exchange(fd_, -1); }
  // Close the current descriptor (if any) and own `fd` instead.
  void reset(int fd = -1) noexcept;
  // Close now and report close(2)'s error; the fd is released either way.
  Result<void> try_close();

 private:
  int fd_ = -1;
};

}  // namespace kvmx
