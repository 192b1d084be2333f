#include "kvmx/fd.hpp"

#include <unistd.h>

namespace kvmx {

void Fd::reset(int fd) noexcept {
  if (fd_ >= 0 && fd_ != fd) ::close(fd_);
  fd_ = fd;
}

}  // namespace kvmx
