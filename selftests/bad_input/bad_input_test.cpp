// bad_input: bad fds, unknown and malformed ioctls, bad pointers and counts, vCPU mmap offsets,
// and VM/vCPU churn. Each errno is KVM's (virt/kvm/kvm_main.c, arch/x86/kvm/x86.c).
#include <gtest/gtest.h>
#include "kvmx/linux_kvm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "kvmx/kvmx.hpp"
#include "kvmx/test/fixtures.hpp"

namespace {

using kvmx::Fd;
using kvmx::ioctl_unchecked;
using kvmx::kPageSize;
using kvmx::Result;

using BadFd = kvmx::test::SystemTest;
using BadIoctl = kvmx::test::VcpuTest;
using BadVmIoctl = kvmx::test::VmTest;

struct Call {
  const char* name;
  unsigned long cmd;
};

// A few ioctls of each fd type, with a harmless argument when one is needed.
constexpr Call kSystemCalls[] = {{"KVM_GET_API_VERSION", KVM_GET_API_VERSION},
                                 {"KVM_CREATE_VM", KVM_CREATE_VM},
                                 {"KVM_CHECK_EXTENSION", KVM_CHECK_EXTENSION},
                                 {"KVM_GET_VCPU_MMAP_SIZE", KVM_GET_VCPU_MMAP_SIZE}};
constexpr Call kVmCalls[] = {{"KVM_CREATE_VCPU", KVM_CREATE_VCPU},
                             {"KVM_SET_USER_MEMORY_REGION", KVM_SET_USER_MEMORY_REGION},
                             {"KVM_GET_DIRTY_LOG", KVM_GET_DIRTY_LOG}};
constexpr Call kVcpuCalls[] = {{"KVM_RUN", KVM_RUN},
                               {"KVM_GET_REGS", KVM_GET_REGS},
                               {"KVM_SET_REGS", KVM_SET_REGS},
                               {"KVM_GET_SREGS", KVM_GET_SREGS}};

// Enough zeroed, writable space for any of the arguments above.
struct ArgBuffer {
  alignas(64) std::byte bytes[8192]{};
  unsigned long addr() { return reinterpret_cast<unsigned long>(bytes); }
};

template <class F>
void for_every_call(F&& f) {
  for (const auto& c : kSystemCalls) f(c);
  for (const auto& c : kVmCalls) f(c);
  for (const auto& c : kVcpuCalls) f(c);
}

// Guards: every KVM ioctl on -1, a closed fd or an fd number never opened fails with EBADF.
TEST_F(BadFd, ClosedAndInvalidFdsAreEbadf) {
  const int closed = dup(sys().fd());
  ASSERT_GE(closed, 0);
  ASSERT_EQ(close(closed), 0);
  ArgBuffer arg;
  for_every_call([&](const Call& c) {
    for (int fd : {-1, closed, 1 << 20}) {
      KVMX_EXPECT_ERRNO(ioctl_unchecked(fd, c.cmd, arg.addr()), EBADF) << c.name << " on fd " << fd;
    }
  });
}

// Guards: KVM ioctls on a regular file, /dev/null or a pipe fail with ENOTTY from the VFS.
TEST_F(BadFd, NonKvmFdsAreEnotty) {
  char path[] = "/tmp/kvmx-bad-input-XXXXXX";
  Fd file(mkstemp(path));
  ASSERT_TRUE(file.valid()) << strerror(errno);
  unlink(path);
  Fd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(null.valid());
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  Fd pipe_read(pipe_fds[0]), pipe_write(pipe_fds[1]);
  ArgBuffer arg;
  for_every_call([&](const Call& c) {
    for (int fd : {file.get(), null.get(), pipe_read.get()}) {
      KVMX_EXPECT_ERRNO(ioctl_unchecked(fd, c.cmd, arg.addr()), ENOTTY) << c.name << " on fd " << fd;
    }
  });
}

// Guards: an ioctl of one KVM fd type on another fails with that fd type's unknown-ioctl errno.
// System fd EINVAL (kvm_arch_dev_ioctl), VM fd ENOTTY (kvm_arch_vm_ioctl), vCPU fd EINVAL (x86
// kvm_arch_vcpu_ioctl).
TEST_F(BadIoctl, IoctlOnWrongFdType) {
  ArgBuffer arg;
  for (const auto& c : kVmCalls) KVMX_EXPECT_ERRNO(ioctl_unchecked(sys().fd(), c.cmd, arg.addr()), EINVAL) << c.name;
  for (const auto& c : kVcpuCalls) KVMX_EXPECT_ERRNO(ioctl_unchecked(sys().fd(), c.cmd, arg.addr()), EINVAL) << c.name;
  for (const auto& c : kSystemCalls) {
    if (c.cmd == KVM_CHECK_EXTENSION) continue;  // also a VM ioctl (KVM_CAP_CHECK_EXTENSION_VM)
    KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), c.cmd, arg.addr()), ENOTTY) << c.name;
  }
  for (const auto& c : kVcpuCalls) KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), c.cmd, arg.addr()), ENOTTY) << c.name;
  for (const auto& c : kSystemCalls) KVMX_EXPECT_ERRNO(ioctl_unchecked(vcpu().fd(), c.cmd, arg.addr()), EINVAL) << c.name;
  for (const auto& c : kVmCalls) KVMX_EXPECT_ERRNO(ioctl_unchecked(vcpu().fd(), c.cmd, arg.addr()), EINVAL) << c.name;
}

// Guards: ioctl numbers KVM never assigned: system EINVAL, VM ENOTTY, vCPU EINVAL (x86).
// The defaults of kvm_arch_dev_ioctl, kvm_arch_vm_ioctl and kvm_arch_vcpu_ioctl.
TEST_F(BadIoctl, UnknownIoctlsPerFdType) {
  ArgBuffer arg;
  for (unsigned long cmd : std::initializer_list<unsigned long>{_IO(KVMIO, 0xff), _IOWR(KVMIO, 0xfe, kvm_regs), _IOR(KVMIO, 0xfd, std::uint64_t),
                            _IOW(KVMIO, 0xfc, std::uint32_t)}) {
    KVMX_EXPECT_ERRNO(ioctl_unchecked(sys().fd(), cmd, arg.addr()), EINVAL) << std::hex << cmd;
    KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), cmd, arg.addr()), ENOTTY) << std::hex << cmd;
    KVMX_EXPECT_ERRNO(ioctl_unchecked(vcpu().fd(), cmd, arg.addr()), EINVAL) << std::hex << cmd;
  }
}

// The same ioctl number with another argument size or direction.
constexpr unsigned long resized(unsigned long cmd, unsigned size) {
  return _IOC(_IOC_DIR(cmd) == _IOC_NONE ? _IOC_READ : _IOC_DIR(cmd), _IOC_TYPE(cmd), _IOC_NR(cmd), size);
}
constexpr unsigned long redirected(unsigned long cmd, unsigned dir) {
  return _IOC(dir, _IOC_TYPE(cmd), _IOC_NR(cmd), _IOC_SIZE(cmd));
}

// Guards: the right ioctl nr with a wrong size or direction is an unknown ioctl, never a short copy.
// KVM matches whole ioctl numbers. The sizes avoid KVM_SET_USER_MEMORY_REGION2 (same nr 0x49, 160
// bytes, 6.8+).
TEST_F(BadIoctl, WrongSizeOrDirection) {
  ArgBuffer arg;
  for (unsigned long cmd : std::initializer_list<unsigned long>{KVM_GET_API_VERSION, KVM_CREATE_VM, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE,
                            KVM_GET_SUPPORTED_CPUID}) {
    KVMX_EXPECT_ERRNO(ioctl_unchecked(sys().fd(), resized(cmd, 4), arg.addr()), EINVAL) << std::hex << cmd;
  }
  for (unsigned long cmd : std::initializer_list<unsigned long>{KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG, KVM_CREATE_VCPU}) {
    KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), resized(cmd, 24), arg.addr()), ENOTTY) << std::hex << cmd;
    KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), resized(cmd, 8), arg.addr()), ENOTTY) << std::hex << cmd;
  }
  KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), redirected(KVM_SET_USER_MEMORY_REGION, _IOC_READ), arg.addr()), ENOTTY);
  for (unsigned long cmd : std::initializer_list<unsigned long>{KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_FPU}) {
    KVMX_EXPECT_ERRNO(ioctl_unchecked(vcpu().fd(), resized(cmd, 8), arg.addr()), EINVAL) << std::hex << cmd;
    KVMX_EXPECT_ERRNO(ioctl_unchecked(vcpu().fd(), resized(cmd, _IOC_SIZE(cmd) + 8), arg.addr()), EINVAL)
        << std::hex << cmd;
  }
  KVMX_EXPECT_ERRNO(ioctl_unchecked(vcpu().fd(), redirected(KVM_GET_REGS, _IOC_WRITE), arg.addr()), EINVAL);
  KVMX_EXPECT_ERRNO(ioctl_unchecked(vcpu().fd(), redirected(KVM_SET_REGS, _IOC_READ), arg.addr()), EINVAL);
  // Nothing was harmed: the right numbers still work.
  KVMX_EXPECT_OK(vcpu().try_get_regs());
}

// An address that faults: a page mapped and unmapped again.
std::uintptr_t unmapped_address() {
  void* p = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  munmap(p, kPageSize);
  return reinterpret_cast<std::uintptr_t>(p);
}

// Guards: NULL, unmapped or kernel argument pointers are EFAULT and leave the vCPU usable.
TEST_F(BadIoctl, BadArgumentPointersAreEfault) {
  const std::uintptr_t unmapped = unmapped_address();
  ASSERT_NE(unmapped, 0u);
  const unsigned long bad[] = {0, unmapped, 0xffffffff81000000ul};
  for (unsigned long p : bad) {
    SCOPED_TRACE(::testing::Message() << "argument 0x" << std::hex << p);
    for (unsigned long cmd : std::initializer_list<unsigned long>{KVM_GET_SUPPORTED_CPUID, KVM_GET_MSR_INDEX_LIST}) {
      KVMX_EXPECT_ERRNO(ioctl_unchecked(sys().fd(), cmd, p), EFAULT);
    }
    for (unsigned long cmd : std::initializer_list<unsigned long>{KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG}) {
      KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), cmd, p), EFAULT);
    }
    for (unsigned long cmd : std::initializer_list<unsigned long>{KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_FPU, KVM_SET_FPU,
                              KVM_GET_MSRS, KVM_SET_MSRS, KVM_SET_CPUID2, KVM_GET_CPUID2, KVM_GET_VCPU_EVENTS,
                              KVM_SET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_SET_MP_STATE}) {
      KVMX_EXPECT_ERRNO(ioctl_unchecked(vcpu().fd(), cmd, p), EFAULT) << kvmx::ioctl_name(cmd);
    }
  }
  KVMX_EXPECT_OK(vcpu().try_get_regs());
}

// A variable-length argument (kvm_cpuid2, kvm_msrs, kvm_msr_list) with room for `n` entries.
template <class Header, class Entry>
struct Variable {
  explicit Variable(std::size_t n) : storage((sizeof(Header) + n * sizeof(Entry) + 7) / 8, 0) {}
  Header* get() { return reinterpret_cast<Header*>(storage.data()); }
  std::vector<std::uint64_t> storage;
};

// Guards: entry counts beyond KVM's limits, or outputs too small, are E2BIG.
// KVM_SET_CPUID2 above KVM_MAX_CPUID_ENTRIES (256), KVM_GET/SET_MSRS at MAX_IO_MSRS (256) and above;
// KVM_GET_SUPPORTED_CPUID, KVM_GET_CPUID2 and KVM_GET_MSR_INDEX_LIST with too little room (the
// last writes back the count it needs).
TEST_F(BadIoctl, HugeAndTinyCountsAreE2big) {
  Variable<kvm_cpuid2, kvm_cpuid_entry2> cpuid(1);
  for (std::uint32_t n : {257u, 0x10000u, 0xffffffffu}) {
    cpuid.get()->nent = n;
    KVMX_EXPECT_ERRNO(vcpu().try_ioctl(kvmx::op::set_cpuid2, cpuid.get()), E2BIG) << "nent " << n;
  }
  Variable<kvm_msrs, kvm_msr_entry> msrs(1);
  for (std::uint32_t n : {256u, 0x10000u, 0xffffffffu}) {
    msrs.get()->nmsrs = n;
    KVMX_EXPECT_ERRNO(vcpu().try_ioctl(kvmx::op::set_msrs, msrs.get()), E2BIG) << "nmsrs " << n;
    KVMX_EXPECT_ERRNO(vcpu().try_ioctl(kvmx::op::get_msrs, msrs.get()), E2BIG) << "nmsrs " << n;
  }
  for (std::uint32_t n : {0u, 1u}) {
    cpuid.get()->nent = n;
    KVMX_EXPECT_ERRNO(sys().try_ioctl(kvmx::op::get_supported_cpuid, cpuid.get()), E2BIG) << "nent " << n;
  }
  // KVM_GET_CPUID2 needs room for what KVM_SET_CPUID2 gave.
  vcpu().set_cpuid(sys().supported_cpuid());
  cpuid.get()->nent = 0;
  KVMX_EXPECT_ERRNO(vcpu().try_ioctl(kvmx::op::get_cpuid2, cpuid.get()), E2BIG);
  Variable<kvm_msr_list, std::uint32_t> list(0);
  list.get()->nmsrs = 0;
  KVMX_EXPECT_ERRNO(sys().try_ioctl(kvmx::op::get_msr_index_list, list.get()), E2BIG);
  EXPECT_GT(list.get()->nmsrs, 0u) << "KVM_GET_MSR_INDEX_LIST writes back the count it needs";
}

// Guards: a valid count whose entries run into unmapped memory is EFAULT, not an overread.
TEST_F(BadIoctl, EntriesRunningIntoAHoleAreEfault) {
  auto* two = static_cast<std::byte*>(mmap(nullptr, 2 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(two, MAP_FAILED);
  ASSERT_EQ(munmap(two + kPageSize, kPageSize), 0);
  auto* cpuid = reinterpret_cast<kvm_cpuid2*>(two + kPageSize - sizeof(kvm_cpuid2));
  cpuid->nent = 64;
  KVMX_EXPECT_ERRNO(vcpu().try_ioctl(kvmx::op::set_cpuid2, cpuid), EFAULT);
  auto* msrs = reinterpret_cast<kvm_msrs*>(two + kPageSize - sizeof(kvm_msrs));
  msrs->nmsrs = 4;
  KVMX_EXPECT_ERRNO(vcpu().try_ioctl(kvmx::op::set_msrs, msrs), EFAULT);
  KVMX_EXPECT_ERRNO(vcpu().try_ioctl(kvmx::op::get_msrs, msrs), EFAULT);
  munmap(two, kPageSize);
  KVMX_EXPECT_OK(vcpu().try_get_regs());
}

// Guards: vCPU ids >= KVM_CAP_MAX_VCPU_ID and slot ids >= KVM_CAP_NR_MEMSLOTS are EINVAL.
// For KVM_CREATE_VCPU, KVM_SET_USER_MEMORY_REGION and KVM_GET_DIRTY_LOG.
TEST_F(BadIoctl, OutOfRangeIds) {
  const int max_id = sys().try_check_extension(KVM_CAP_MAX_VCPU_ID).value_or(0);
  for (unsigned long id : {static_cast<unsigned long>(max_id), 0x7fffffffUL, 0xffffffffUL}) {
    KVMX_EXPECT_ERRNO(ioctl_unchecked(vm().fd(), KVM_CREATE_VCPU, id), EINVAL) << "vCPU id " << id;
  }
  const std::uint32_t nr = sys().try_check_extension(KVM_CAP_NR_MEMSLOTS).value_or(0);
  std::uint64_t bitmap[8]{};
  for (std::uint32_t slot : {nr, 0xffffu, 0xffffffffu}) {
    const kvm_userspace_memory_region r{.slot = slot, .flags = 0, .guest_phys_addr = 0, .memory_size = 0, .userspace_addr = 0};
    KVMX_EXPECT_ERRNO(vm().try_set_user_memory_region(r), EINVAL) << "slot " << slot;
    kvm_dirty_log log{};
    log.slot = slot;
    log.dirty_bitmap = bitmap;
    KVMX_EXPECT_ERRNO(vm().try_ioctl(kvmx::op::get_dirty_log, &log), EINVAL) << "slot " << slot;
  }
}

// Run `fn` in a forked child; its exit status, or 256 + the signal that killed it.
int in_child(const std::function<int()>& fn) {
  const pid_t pid = fork();
  if (pid == 0) {
    signal(SIGBUS, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    _exit(fn());
  }
  if (pid < 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFSIGNALED(status) ? 256 + WTERMSIG(status) : WEXITSTATUS(status);
}

// Guards: vCPU fd mmap: bad offset/length EINVAL, pages past kvm_run SIGBUS, VM/system fd ENODEV.
// KVM's kvm_vcpu_mmap() refuses only dirty-ring misuse; kvm_vcpu_fault() gives SIGBUS for other pages.
TEST_F(BadIoctl, MmapOffsetsOfVcpuFd) {
  const long size = sys().try_vcpu_mmap_size().value_or(0);
  ASSERT_GT(size, 0);
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPageSize, PROT_READ, MAP_SHARED, vcpu().fd(), 100), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(mmap(nullptr, 0, PROT_READ, MAP_SHARED, vcpu().fd(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  for (int fd : {vm().fd(), sys().fd()}) {
    errno = 0;
    EXPECT_EQ(mmap(nullptr, kPageSize, PROT_READ, MAP_SHARED, fd, 0), MAP_FAILED);
    EXPECT_EQ(errno, ENODEV);
  }
  for (long offset : {size, size + static_cast<long>(kPageSize), 1000L * static_cast<long>(kPageSize)}) {
    SCOPED_TRACE(::testing::Message() << "offset " << offset);
    void* p = mmap(nullptr, kPageSize, PROT_READ, MAP_SHARED, vcpu().fd(), offset);
    ASSERT_NE(p, MAP_FAILED) << strerror(errno);
    const int status = in_child([p] { return static_cast<int>(*static_cast<volatile std::uint8_t*>(p)) & 0; });
    EXPECT_EQ(status, 256 + SIGBUS) << "the child touching the page should die by SIGBUS";
    munmap(p, kPageSize);
  }
  // Each page of the advertised size is there.
  void* whole = mmap(nullptr, size, PROT_READ, MAP_SHARED, vcpu().fd(), 0);
  ASSERT_NE(whole, MAP_FAILED);
  const int status = in_child([&] {
    unsigned sum = 0;
    for (long off = 0; off < size; off += kPageSize) sum += static_cast<volatile std::uint8_t*>(whole)[off];
    return static_cast<int>(sum & 0);
  });
  EXPECT_EQ(status, 0);
  munmap(whole, size);
}

using Churn = kvmx::test::SystemTest;

// The vendor module's reference count in a test host (KVMX_IMPL and KVMX_CPU set), else -1.
int vendor_module_refcnt() {
  const char* impl = std::getenv("KVMX_IMPL");
  const char* cpu = std::getenv("KVMX_CPU");
  if (!impl || !cpu) return -1;
  const std::string module = std::string(std::string_view(impl) == "kvmx" ? "kvmx_" : "kvm_") + cpu;
  std::ifstream f("/sys/module/" + module + "/refcnt");
  int n = -1;
  f >> n;
  return f ? n : -1;
}

// Guards: creating and destroying many VMs with vCPUs, memory and runs works and leaks nothing.
// Bounded: 12 rounds of 6 VMs; in a test host, the vendor module's refcount returns to where it was.
TEST_F(Churn, ManyVmsAndVcpus) {
  if (!has_cap(KVM_CAP_MAX_VCPUS)) GTEST_SKIP() << "needs vCPUs: KVM_CAP_MAX_VCPUS is 0";
  const bool immediate_exit = has_cap(KVM_CAP_IMMEDIATE_EXIT);
  const int vcpus = std::min(4, sys().check_extension(KVM_CAP_MAX_VCPUS));
  const int refs_before = vendor_module_refcnt();
  for (int round = 0; round < 12; ++round) {
    std::vector<kvmx::Vm> vms;
    std::vector<kvmx::Vcpu> all;
    for (int v = 0; v < 6; ++v) {
      auto vm = sys().try_create_vm();
      KVMX_ASSERT_OK(vm) << "round " << round << " VM " << v;
      vm->add_memory(0, 0, 16 * kPageSize);
      for (int c = 0; c < vcpus; ++c) {
        auto vcpu = vm->try_create_vcpu(c);
        KVMX_ASSERT_OK(vcpu) << "round " << round << " VM " << v << " vCPU " << c;
        if (immediate_exit) {
          vcpu->set_immediate_exit(true);
          KVMX_EXPECT_ERRNO(vcpu->try_run(), EINTR);
        }
        all.push_back(std::move(vcpu).value());
      }
      vms.push_back(std::move(vm).value());
    }
    // Alternate which goes first: vCPUs before their VMs, or VMs first.
    if (round % 2) {
      all.clear();
      vms.clear();
    } else {
      vms.clear();
      all.clear();
    }
  }
  // Every VM and vCPU file held a module reference; a leaked one would show here.
  if (refs_before >= 0) {
    EXPECT_EQ(vendor_module_refcnt(), refs_before) << "module references leaked";
  }
}

}  // namespace
