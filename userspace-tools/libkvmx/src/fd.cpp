#include "kvmx/fd.hpp"

#include <unistd.h>

namespace kvmx {

void Fd::reset(int fd) noexcept {
  if (fd_ >= 0 && fd_ != fd) ::close(fd_);
  fd_ = fd;
}

Result<void> Fd::try_close() {
  const int fd = release();
  if (::close(fd) != 0) return errno_error("close");
  return {};
}

}  // namespace kvmx
