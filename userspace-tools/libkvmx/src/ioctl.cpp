#include "kvmx/ioctl.hpp"

#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>

namespace kvmx {
namespace {

struct IoctlName {
  unsigned long cmd;
  std::string_view name;
};

#define KVMX_NAME_NONE(name, cmd) IoctlName{cmd, #cmd},
#define KVMX_NAME_VALUE(name, cmd) IoctlName{cmd, #cmd},
#define KVMX_NAME_PTR(name, cmd, type) IoctlName{cmd, #cmd},
constexpr IoctlName kIoctlNames[] = {KVMX_IOCTLS(KVMX_NAME_NONE, KVMX_NAME_VALUE, KVMX_NAME_PTR)};

std::string hex_command(unsigned long cmd) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "ioctl 0x%lx", cmd);
  return buf;
}

}  // namespace

std::string_view ioctl_name(unsigned long cmd) {
  const auto* it = std::find_if(std::begin(kIoctlNames), std::end(kIoctlNames),
                                [&](const IoctlName& n) { return n.cmd == cmd; });
  return it == std::end(kIoctlNames) ? std::string_view{} : it->name;
}

Result<int> ioctl_call(int fd, unsigned long cmd, unsigned long arg, std::string_view name) {
  const int r = ::ioctl(fd, cmd, arg);
  if (r < 0) {
    const int code = errno;
    return Error{code, name.empty() ? hex_command(cmd) : std::string(name), {}};
  }
  return r;
}

Result<int> ioctl_unchecked(int fd, unsigned long cmd, unsigned long arg) {
  return ioctl_call(fd, cmd, arg, ioctl_name(cmd));
}

}  // namespace kvmx
