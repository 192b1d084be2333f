// vm: VM and vCPU lifecycle, the vCPU limits, the fork rule, the module reference a VM holds, and
// guest memory shared with the host through a slot. Memslot rejections are in memslot_test.cpp.
#include <gtest/gtest.h>
#include "kvmx/linux_kvm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "kvmx/kvmx.hpp"
#include "kvmx/test/fixtures.hpp"
#include "kvmx/test/guest.hpp"
#include "vm_guest.hpp"

namespace {

using kvmx::Fd;
using kvmx::ioctl_unchecked;
using kvmx::kPageSize;
using kvmx::test::env;
using namespace vm_suite;

using VmLifecycle = kvmx::test::SystemTest;
using VmFd = kvmx::test::VmTest;
using VcpuFd = kvmx::test::VcpuTest;

class VmGuest : public kvmx::test::GuestTest {
 protected:
  bool needs_vcpus() const override { return true; }
};

// A GPA above the framework's 64 MiB slot 0, for extra slots.
constexpr std::uint64_t kExtraGpa = 0x10000000;

// Run `fn` in a forked child and return its exit status (0..255), or 256 + signal if it died.
int in_child(const std::function<int()>& fn) {
  const pid_t pid = fork();
  if (pid == 0) _exit(fn());
  if (pid < 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return 256 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// Raw objects for close-order tests: the library's RAII types close in one fixed order.
struct RawVm {
  Fd sys, vm, vcpu;
  void* run = MAP_FAILED;
  std::size_t run_size = 0;
};

int ioctl_errno(int fd, unsigned long cmd, unsigned long arg) {
  auto r = ioctl_unchecked(fd, cmd, arg);
  return r.ok() ? 0 : r.err();
}

// Guards: vCPU, VM and system fds and the kvm_run mapping may be released in any of the 24 orders.
// What is still open keeps working (a vCPU outlives its VM fd, a VM its system fd, the mapping
// its vCPU fd), and the device still creates VMs afterwards.
TEST_F(VmLifecycle, EveryCloseOrderWithLiveMapping) {
  if (!has_cap(KVM_CAP_MAX_VCPUS)) GTEST_SKIP() << "needs vCPUs: KVM_CAP_MAX_VCPUS is 0";
  const bool immediate_exit = has_cap(KVM_CAP_IMMEDIATE_EXIT);
  std::array<int, 4> order{0, 1, 2, 3};  // 0 vCPU fd, 1 VM fd, 2 system fd, 3 munmap(kvm_run)
  do {
    SCOPED_TRACE(::testing::Message() << "order " << order[0] << order[1] << order[2] << order[3]
                                      << " (0 vCPU fd, 1 VM fd, 2 system fd, 3 kvm_run mapping)");
    RawVm raw;
    raw.sys = Fd(open(env().device.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(raw.sys.valid()) << strerror(errno);
    auto vm = ioctl_unchecked(raw.sys.get(), KVM_CREATE_VM, 0);
    KVMX_ASSERT_OK(vm);
    raw.vm = Fd(*vm);
    auto vcpu = ioctl_unchecked(raw.vm.get(), KVM_CREATE_VCPU, 0);
    KVMX_ASSERT_OK(vcpu);
    raw.vcpu = Fd(*vcpu);
    auto size = ioctl_unchecked(raw.sys.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    KVMX_ASSERT_OK(size);
    raw.run_size = static_cast<std::size_t>(*size);
    raw.run = mmap(nullptr, raw.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, raw.vcpu.get(), 0);
    ASSERT_NE(raw.run, MAP_FAILED) << strerror(errno);
    auto* run = static_cast<kvm_run*>(raw.run);
    if (immediate_exit) {
      // Let KVM_RUN initialize the vCPU and return at once, so teardown sees a vCPU that ran.
      run->immediate_exit = 1;
      KVMX_EXPECT_ERRNO(ioctl_unchecked(raw.vcpu.get(), KVM_RUN, 0), EINTR);
    }
    bool vcpu_open = true, vm_open = true, sys_open = true, mapped = true;
    for (int step : order) {
      switch (step) {
        case 0: KVMX_ASSERT_OK(raw.vcpu.try_close()); vcpu_open = false; break;
        case 1: KVMX_ASSERT_OK(raw.vm.try_close()); vm_open = false; break;
        case 2: KVMX_ASSERT_OK(raw.sys.try_close()); sys_open = false; break;
        case 3: ASSERT_EQ(munmap(raw.run, raw.run_size), 0); mapped = false; break;
      }
      kvm_regs regs{};
      if (vcpu_open) {
        EXPECT_EQ(ioctl_errno(raw.vcpu.get(), KVM_GET_REGS, reinterpret_cast<unsigned long>(&regs)), 0);
      }
      if (vm_open) {
        EXPECT_EQ(ioctl_errno(raw.vm.get(), KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY), 0);
      }
      if (sys_open) {
        EXPECT_EQ(ioctl_unchecked(raw.sys.get(), KVM_GET_API_VERSION, 0).value_or(-1), 12);
      }
      if (mapped) {
        EXPECT_EQ(std::atomic_ref<std::uint8_t>(run->immediate_exit).load(), immediate_exit ? 1 : 0);
      }
    }
    KVMX_EXPECT_OK(sys().try_create_vm());
  } while (std::next_permutation(order.begin(), order.end()));
}

// Guards: KVM_GET_VCPU_MMAP_SIZE is 3 pages on the system fd and unknown (ENOTTY) on a VM fd.
// x86 KVM: the kvm_run page, the PIO data page and the coalesced MMIO ring page.
TEST_F(VmFd, VcpuMmapSize) {
  auto size = sys().try_vcpu_mmap_size();
  KVMX_ASSERT_OK(size);
  EXPECT_EQ(*size, static_cast<int>(3 * kPageSize));
  KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), KVM_GET_VCPU_MMAP_SIZE, 0), ENOTTY);
}

// Guards: KVM_CHECK_EXTENSION on a VM fd agrees with the system fd for VM-independent capabilities.
TEST_F(VmFd, CheckExtensionOnVmFd) {
  EXPECT_GT(sys().try_check_extension(KVM_CAP_CHECK_EXTENSION_VM).value_or(0), 0);
  for (long cap : std::initializer_list<long>{KVM_CAP_USER_MEMORY, KVM_CAP_NR_MEMSLOTS, KVM_CAP_MAX_VCPUS, KVM_CAP_MAX_VCPU_ID,
                   KVM_CAP_NR_VCPUS, KVM_CAP_READONLY_MEM, KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_MULTI_ADDRESS_SPACE,
                   KVM_CAP_CHECK_EXTENSION_VM, 0x3fff0000L}) {
    auto on_sys = sys().try_check_extension(cap);
    auto on_vm = vm().try_check_extension(cap);
    KVMX_ASSERT_OK(on_sys);
    KVMX_ASSERT_OK(on_vm);
    EXPECT_EQ(*on_vm, *on_sys) << "capability " << cap;
  }
}

// Guards: VM and vCPU ioctls from a forked child fail with EIO; the system fd still answers.
// kvm_vm_ioctl() and kvm_vcpu_ioctl() refuse a caller whose mm is not the VM's.
TEST_F(VcpuFd, IoctlsFromForkedChildAreEio) {
  const int vm_fd = vm().fd(), vcpu_fd = vcpu().fd(), sys_fd = sys().fd();
  const int status = in_child([&] {
    int bad = 0;
    if (ioctl_errno(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) != EIO) bad |= 1;
    if (ioctl_errno(vm_fd, KVM_CREATE_VCPU, 1) != EIO) bad |= 2;
    kvm_regs regs{};
    if (ioctl_errno(vcpu_fd, KVM_GET_REGS, reinterpret_cast<unsigned long>(&regs)) != EIO) bad |= 4;
    if (ioctl_errno(vcpu_fd, KVM_RUN, 0) != EIO) bad |= 8;
    if (ioctl_unchecked(sys_fd, KVM_GET_API_VERSION, 0).value_or(-1) != 12) bad |= 16;
    return bad;
  });
  EXPECT_EQ(status, 0) << "bits: 1 VM CHECK_EXTENSION, 2 VM CREATE_VCPU, 4 vCPU GET_REGS, 8 vCPU RUN not EIO; "
                          "16 system fd broken; 256+ the child died by a signal";
  // The parent is unaffected.
  KVMX_EXPECT_OK(vcpu().try_get_regs());
  KVMX_EXPECT_OK(vm().try_create_vcpu(1));
}

// Guards: the parent may keep using its VM after a forked child closed its copies of the fds.
TEST_F(VcpuFd, ChildClosingInheritedFdsLeavesParentVm) {
  const int vm_fd = vm().fd(), vcpu_fd = vcpu().fd(), sys_fd = sys().fd();
  EXPECT_EQ(in_child([&] { return close(vcpu_fd) | close(vm_fd) | close(sys_fd) ? 1 : 0; }), 0);
  KVMX_EXPECT_OK(vcpu().try_get_regs());
  KVMX_EXPECT_OK(vm().try_check_extension(KVM_CAP_USER_MEMORY));
}

// Raise RLIMIT_NOFILE so that `n` more fds fit; false if the kernel refuses.
bool allow_fds(rlim_t n) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= n) return true;
  lim.rlim_cur = n;
  if (lim.rlim_max < n) lim.rlim_max = n;
  return setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

// Guards: a VM takes exactly KVM_CAP_MAX_VCPUS vCPUs and refuses one more with EINVAL.
// kvm_vm_ioctl_create_vcpu(): created_vcpus >= max_vcpus.
TEST_F(VmFd, CreateVcpusUpToMaxVcpus) {
  const int max = sys().try_check_extension(KVM_CAP_MAX_VCPUS).value_or(0);
  if (max <= 0) GTEST_SKIP() << "needs vCPUs: KVM_CAP_MAX_VCPUS is 0";
  const int max_id = sys().try_check_extension(KVM_CAP_MAX_VCPU_ID).value_or(0);
  ASSERT_GE(max_id, max) << "KVM_CAP_MAX_VCPU_ID below KVM_CAP_MAX_VCPUS";
  if (!allow_fds(static_cast<rlim_t>(max) + 256)) GTEST_SKIP() << "cannot raise RLIMIT_NOFILE to " << max + 256;
  std::vector<Fd> vcpus;
  vcpus.reserve(max);
  for (int id = 0; id < max; ++id) {
    auto r = ioctl_unchecked(vm().fd(), KVM_CREATE_VCPU, id);
    KVMX_ASSERT_OK(r) << "vCPU " << id << " of " << max;
    vcpus.emplace_back(*r);
  }
  // An id that would be valid, but the VM is full.
  KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), KVM_CREATE_VCPU, max), EINVAL);
  kvm_regs regs{};
  EXPECT_EQ(ioctl_errno(vcpus.back().get(), KVM_GET_REGS, reinterpret_cast<unsigned long>(&regs)), 0);
  vcpus.clear();
  KVMX_EXPECT_OK(sys().try_create_vm());
}

// Guards: vCPU ids below KVM_CAP_MAX_VCPU_ID work, others are EINVAL, a duplicate is EEXIST.
TEST_F(VmFd, VcpuIdLimitsAndDuplicates) {
  if (!has_cap(KVM_CAP_MAX_VCPUS)) GTEST_SKIP() << "needs vCPUs: KVM_CAP_MAX_VCPUS is 0";
  const int max_id = sys().try_check_extension(KVM_CAP_MAX_VCPU_ID).value_or(0);
  ASSERT_GT(max_id, 0);
  KVMX_EXPECT_ERRNO(vm().try_create_vcpu(max_id), EINVAL);
  KVMX_EXPECT_ERRNO(vm().try_create_vcpu(0xffffffffu), EINVAL);
  auto first = vm().try_create_vcpu(0);
  KVMX_ASSERT_OK(first);
  KVMX_EXPECT_ERRNO(vm().try_create_vcpu(0), EEXIST);
  auto highest = vm().try_create_vcpu(max_id - 1);
  KVMX_EXPECT_OK(highest);
  KVMX_EXPECT_ERRNO(vm().try_create_vcpu(max_id - 1), EEXIST);
}

// The vendor module behind the device in this test-host cell, or empty outside a test host.
std::string vendor_module() {
  const char* impl = std::getenv("KVMX_IMPL");
  const char* cpu = std::getenv("KVMX_CPU");
  if (!impl || !cpu) return {};
  const std::string i = impl, c = cpu;
  if (c != "amd" && c != "intel") return {};
  if (i == "kvm") return "kvm_" + c;
  if (i == "kvmx") return "kvmx_" + c;
  return {};
}

int module_refcnt(const std::string& module) {
  std::ifstream f("/sys/module/" + module + "/refcnt");
  int n = -1;
  f >> n;
  return f ? n : -1;
}

// Guards: an open VM fd alone pins the vendor module: delete_module(O_NONBLOCK) is EWOULDBLOCK.
// The VM's file operations name the module as owner; try_stop_module() (kernel/module/main.c) refuses a
// nonzero refcount with EWOULDBLOCK. The system fd is closed first, since it pins the module too.
TEST_F(VmLifecycle, OpenVmFdPinsVendorModule) {
  const std::string module = vendor_module();
  if (module.empty()) GTEST_SKIP() << "not in a test host: KVMX_IMPL and KVMX_CPU name no vendor module";
  const int before = module_refcnt(module);
  if (before < 0) GTEST_SKIP() << module << " is not a loaded module (no /sys/module/" << module << "/refcnt)";
  Fd vm;
  {
    Fd device(open(env().device.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(device.valid()) << strerror(errno);
    auto r = ioctl_unchecked(device.get(), KVM_CREATE_VM, 0);
    KVMX_ASSERT_OK(r);
    vm = Fd(*r);
  }
  EXPECT_GT(module_refcnt(module), before);
  errno = 0;
  const long r = syscall(SYS_delete_module, module.c_str(), O_NONBLOCK);
  const int err = errno;
  ASSERT_EQ(r, -1) << "delete_module(" << module << ") succeeded while a VM fd was open";
  EXPECT_EQ(err, EWOULDBLOCK) << kvmx::describe_errno(err);
  EXPECT_EQ(ioctl_errno(vm.get(), KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY), 0);
  KVMX_EXPECT_OK(vm.try_close());
  EXPECT_EQ(module_refcnt(module), before) << "closing the VM fd did not drop its module reference";
}

// Guards: the guest sees what the host wrote into a slot, and the host sees what the guest wrote.
TEST_F(VmGuest, GuestAndHostShareSlotMemory) {
  constexpr std::uint64_t kWords = 2 * kPageSize / 8;
  auto& slot = guest().vm().add_memory(1, kExtraGpa, 4 * kPageSize);
  for (std::uint64_t off = 0; off < slot.size(); off += kPageSize) guest().map(kExtraGpa + off, kExtraGpa + off);
  auto* host = reinterpret_cast<std::uint64_t*>(slot.host());
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < kWords; ++i) sum += host[i] = i * i + 7;
  const std::uint64_t src = kExtraGpa, dst = kExtraGpa + 2 * kPageSize;
  auto vcpu = guest().add_vcpu(guest_sum_then_fill, {src, dst, kWords});
  const auto first = guest().run(vcpu);
  KVMX_ASSERT_SYNC(first, 1);
  EXPECT_EQ(first.values.at(1), sum);
  KVMX_ASSERT_SYNC(guest().run(vcpu), 2);
  for (std::uint64_t i = 0; i < kWords; ++i) ASSERT_EQ(host[2 * kPageSize / 8 + i], fill_pattern(i)) << "word " << i;
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: a moved slot shows the guest the same bytes at the new GPA; the old GPA exits as MMIO.
TEST_F(VmGuest, MovedSlotKeepsContents) {
  constexpr std::uint64_t kMovedGpa = kExtraGpa + 0x200000;
  auto& slot = guest().vm().add_memory(1, kExtraGpa, kPageSize);
  guest().map(kExtraGpa, kExtraGpa);
  guest().map(kMovedGpa, kMovedGpa);
  auto* host = reinterpret_cast<std::uint64_t*>(slot.host());
  host[0] = 0x1122334455667788;
  kvm_userspace_memory_region moved{.slot = 1,
                                    .flags = 0,
                                    .guest_phys_addr = kMovedGpa,
                                    .memory_size = slot.size(),
                                    .userspace_addr = reinterpret_cast<std::uint64_t>(slot.host())};
  KVMX_ASSERT_OK(guest().vm().try_set_user_memory_region(moved));
  auto at_new = guest().add_vcpu(guest_read_then_write, {kMovedGpa, 0xabcdef});
  const auto read = guest().run(at_new);
  KVMX_ASSERT_SYNC(read, 1);
  EXPECT_EQ(read.values.at(1), 0x1122334455667788u);
  KVMX_ASSERT_SYNC(guest().run(at_new), 2);
  EXPECT_EQ(host[0], 0xabcdefu);

  auto at_old = guest().add_vcpu(guest_read_then_write, {kExtraGpa, 1});
  const kvmx::Exit e = at_old.run();
  KVMX_ASSERT_EXIT(e, kvmx::exit::Mmio);
  EXPECT_EQ(std::get<kvmx::exit::Mmio>(e).addr, kExtraGpa);
  EXPECT_FALSE(std::get<kvmx::exit::Mmio>(e).is_write);
}

// Guards: KVM_MEM_READONLY: guest reads see host data, writes exit as MMIO and change nothing.
TEST_F(VmGuest, ReadOnlySlotWritesExitAsMmio) {
  KVMX_REQUIRE_CAP(KVM_CAP_READONLY_MEM);
  auto& slot = guest().vm().add_memory(1, kExtraGpa, kPageSize, {.read_only = true});
  guest().map(kExtraGpa, kExtraGpa);
  auto* host = reinterpret_cast<std::uint64_t*>(slot.host());
  host[0] = 0x5555aaaa5555aaaa;
  auto vcpu = guest().add_vcpu(guest_read_then_write, {kExtraGpa, 0x0123456789abcdef});
  const auto read = guest().run(vcpu);
  KVMX_ASSERT_SYNC(read, 1);
  EXPECT_EQ(read.values.at(1), 0x5555aaaa5555aaaau);
  const kvmx::Exit e = vcpu.run();
  KVMX_ASSERT_EXIT(e, kvmx::exit::Mmio);
  const auto& mmio = std::get<kvmx::exit::Mmio>(e);
  EXPECT_EQ(mmio.addr, kExtraGpa);
  EXPECT_TRUE(mmio.is_write);
  EXPECT_EQ(mmio.data.size(), 8u);
  EXPECT_EQ(mmio.value(), 0x0123456789abcdefu);
  const auto after = guest().run(vcpu);
  KVMX_ASSERT_SYNC(after, 2);
  EXPECT_EQ(after.values.at(1), 0x5555aaaa5555aaaau);
  EXPECT_EQ(host[0], 0x5555aaaa5555aaaau);
}

}  // namespace
