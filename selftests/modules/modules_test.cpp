// modules: module loading and pinning, the same checks for kvmx and in-tree KVM.
//
// Runs in a test host only: ci/testhost exports KVMX_IMPL, KVMX_CPU and KVMX_MODULE_DIR, where
// it also puts the other CPU maker's module (with what it needs) without loading it. Elsewhere
// every test skips and says why: loading kernel modules outside a test host is never done.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/klog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kvmx/kvmx.hpp"
#include "kvmx/test/env.hpp"

namespace {

using kvmx::test::Cpu;
using kvmx::test::env;
using kvmx::test::Impl;

struct Names {
  std::string core;          // kvmx / kvm: what the vendor module needs
  std::string vendor;        // the loaded vendor module, as /sys/module names it
  std::string other_file;    // the other CPU maker's module file
  std::vector<std::string> other_needs;  // modules that file needs loaded first
  std::string other_vendor_says;         // part of its refusal in the kernel log
};

// Empty when not in a test host.
std::string module_dir() {
  const char* dir = std::getenv("KVMX_MODULE_DIR");
  return dir && *dir && std::getenv("KVMX_IMPL") && std::getenv("KVMX_CPU") ? dir : "";
}

Names names() {
  const bool amd = env().cpu == Cpu::amd;
  if (env().impl == Impl::kvmx)
    return {"kvmx", amd ? "kvmx_amd" : "kvmx_intel", amd ? "kvmx-intel.ko" : "kvmx-amd.ko", {"kvmx"},
            amd ? "has no usable VMX" : "has no SVM"};
  // kvm_amd needs ccp besides kvm (its SEV support). KVM's refusal names the missing feature
  // differently across versions; both name the module that was refused.
  if (amd) return {"kvm", "kvm_amd", "kvm-intel.ko", {"kvm"}, "kvm_intel"};
  return {"kvm", "kvm_intel", "kvm-amd.ko", {"kvm", "ccp"}, "kvm_amd"};
}

bool loaded(const std::string& module) {
  struct stat st {};
  return stat(("/sys/module/" + module).c_str(), &st) == 0;
}

std::string kernel_log() {
  const int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, nullptr, 0);
  if (size <= 0) return {};
  std::string buf(static_cast<size_t>(size), '\0');
  const int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf.data(), size);
  buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return buf;
}

class Modules : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = module_dir();
    if (dir_.empty()) GTEST_SKIP() << "not in a test host (KVMX_MODULE_DIR, KVMX_IMPL, KVMX_CPU unset)";
    n_ = names();
    if (!loaded(n_.vendor)) GTEST_SKIP() << n_.vendor << " is not loaded in this configuration";
  }
  std::string dir_;
  Names n_;
};

// Guards: on a CPU without its extension, the other CPU maker's module refuses to load with
// EOPNOTSUPP, as kvm_amd and kvm_intel do, and says why in the kernel log. The test host's /init
// tried it after the core was loaded and before this configuration's vendor module, the one
// moment that refusal is the answer; it left busybox insmod's exit code and message here.
TEST_F(Modules, OtherVendorModuleRefusesWithoutSvmOrVmx) {
  const char* path = std::getenv("KVMX_OTHER_VENDOR_RESULT");
  if (!path) GTEST_SKIP() << "the test host did not try the other vendor's module (KVMX_OTHER_VENDOR_RESULT unset)";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path << ": the test host's /init left no result";
  std::string rc, message;
  std::getline(in, rc);
  std::getline(in, message);
  EXPECT_NE(rc, "rc=0") << n_.other_file << " loaded on a CPU it is not for";
  EXPECT_NE(message.find(std::strerror(EOPNOTSUPP)), std::string::npos)
      << "wanted " << kvmx::describe_errno(EOPNOTSUPP) << ", insmod said: " << message;
  EXPECT_NE(kernel_log().find(n_.other_vendor_says), std::string::npos)
      << "no kernel-log line containing '" << n_.other_vendor_says << "'";
}

// The running kernel's version as major * 100 + minor (6.12 -> 612).
int kernel_version() {
  struct utsname u {};
  int major = 0, minor = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return 0;
  return major * 100 + minor;
}

// Guards: with a vendor module loaded, the other one is refused. KVM up to 6.2 answers EEXIST
// ("already loaded vendor module") before it looks at the hardware; from 6.3 on, kvm_amd and
// kvm_intel check their hardware first (vmx_init()/svm_init() return EOPNOTSUPP before
// kvm_x86_vendor_init() sees the other vendor). kvmx keeps the 6.1 order on every kernel.
TEST_F(Modules, SecondVendorModuleIsRefused) {
  for (const auto& need : n_.other_needs)
    if (!loaded(need)) GTEST_SKIP() << n_.other_file << " needs " << need << ", not loaded in this configuration";
  const bool hardware_first = env().impl == Impl::kvm && kernel_version() >= 603;
  const std::string path = dir_ + "/" + n_.other_file;
  kvmx::Fd file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file.valid()) << path << ": " << std::strerror(errno);
  errno = 0;
  const long r = syscall(SYS_finit_module, file.get(), "", 0);
  const int err = errno;
  ASSERT_EQ(r, -1) << n_.other_file << " loaded next to " << n_.vendor;
  EXPECT_EQ(err, hardware_first ? EOPNOTSUPP : EEXIST) << kvmx::describe_errno(err);
  if (!hardware_first) {
    EXPECT_NE(kernel_log().find("already loaded vendor module"), std::string::npos);
  }
}

// Guards: the core module cannot go while the vendor module that uses it is loaded.
TEST_F(Modules, VendorModulePinsCore) {
  errno = 0;
  const long r = syscall(SYS_delete_module, n_.core.c_str(), O_NONBLOCK);
  const int err = errno;
  ASSERT_EQ(r, -1) << n_.core << " was removed under " << n_.vendor;
  EXPECT_EQ(err, EWOULDBLOCK) << kvmx::describe_errno(err);
  EXPECT_TRUE(loaded(n_.core));
}

// Guards: an open device fd pins the vendor module (its file operations name it as owner).
TEST_F(Modules, OpenDevicePinsVendorModule) {
  kvmx::Fd device(open(env().device.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(device.valid()) << env().device << ": " << std::strerror(errno);
  errno = 0;
  const long r = syscall(SYS_delete_module, n_.vendor.c_str(), O_NONBLOCK);
  const int err = errno;
  ASSERT_EQ(r, -1) << n_.vendor << " was removed while " << env().device << " was open";
  EXPECT_EQ(err, EWOULDBLOCK) << kvmx::describe_errno(err);
  EXPECT_TRUE(loaded(n_.vendor));
}

}  // namespace
