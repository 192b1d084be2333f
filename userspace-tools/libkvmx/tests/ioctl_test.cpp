// Bad-fd and wrong-device paths: every call returns the errno and names its ioctl.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cerrno>

#include "kvmx/kvmx.hpp"

namespace kvmx {
namespace {

template <class T>
void expect_error(const Result<T>& r, int code, std::string_view call) {
  ASSERT_FALSE(r.ok()) << call << " unexpectedly succeeded";
  EXPECT_EQ(r.err(), code) << r.error().message();
  EXPECT_EQ(r.error().what, call);
}

// Guards: the descriptor table carries each ioctl's name and number.
TEST(Ioctl, DescriptorsNameTheirIoctl) {
  EXPECT_EQ(op::run.name, "KVM_RUN");
  EXPECT_EQ(decltype(op::run)::cmd, KVM_RUN);
  EXPECT_EQ(op::set_user_memory_region.name, "KVM_SET_USER_MEMORY_REGION");
  EXPECT_EQ(ioctl_name(KVM_GET_SREGS), "KVM_GET_SREGS");
  EXPECT_EQ(ioctl_name(_IO(KVMIO, 0xff)), "");
  static_assert(std::is_same_v<decltype(op::set_regs)::pointer, const kvm_regs*>, "_IOW takes const");
  static_assert(std::is_same_v<decltype(op::get_regs)::pointer, kvm_regs*>);
}

// Guards: ioctl numbers whose argument ends in a flexible array match the kernel's C values;
// C++ sees a bigger struct through the unpatched 6.1 headers (kvmx/linux_kvm.h explains).
TEST(Ioctl, FlexibleArrayIoctlsHaveTheirCNumbers) {
  EXPECT_EQ(KVM_GET_MSRS, 0xc008ae88u);
  EXPECT_EQ(KVM_SET_MSRS, 0x4008ae89u);
  EXPECT_EQ(KVM_SET_CPUID2, 0x4008ae90u);
  EXPECT_EQ(KVM_GET_SUPPORTED_CPUID, 0xc008ae05u);
  EXPECT_EQ(KVM_GET_MSR_INDEX_LIST, 0xc004ae02u);
  EXPECT_EQ(KVM_GET_XSAVE, 0x9000aea4u);
}

// Guards: kvmx's capabilities (<linux/kvmx.h>, reached through kvmx/linux_kvm.h) lie in the range
// upstream KVM never numbers, and the MMU modes are distinct single bits.
TEST(Ioctl, KvmxCapabilitiesAreInTheirOwnRange) {
  static_assert(KVMX_CAP_KVMX >= KVMX_CAP_BASE && KVMX_CAP_MMU_MODE > KVMX_CAP_KVMX);
  EXPECT_EQ(KVMX_CAP_MMU_MODE, 0x4b580001);
  EXPECT_EQ(KVMX_MMU_MODE_TDP & KVMX_MMU_MODE_SHADOW, 0u);
  EXPECT_EQ(std::popcount(KVMX_MMU_MODE_TDP), 1);
  EXPECT_EQ(std::popcount(KVMX_MMU_MODE_SHADOW), 1);
  EXPECT_EQ(cap_name(KVMX_CAP_MMU_MODE), "KVMX_CAP_MMU_MODE");
}

// Guards: a typed call on a closed fd fails with EBADF and names the ioctl.
TEST(BadFd, TypedCallsNameTheIoctl) {
  expect_error(ioctl(-1, op::get_api_version), EBADF, "KVM_GET_API_VERSION");
  expect_error(ioctl(-1, op::create_vm, 0), EBADF, "KVM_CREATE_VM");
  kvm_regs regs{};
  expect_error(ioctl(-1, op::get_regs, &regs), EBADF, "KVM_GET_REGS");
}

// Guards: an unknown command is named in hex.
TEST(BadFd, UncheckedCallNamesTheCommandInHex) {
  expect_error(ioctl_unchecked(-1, _IO(KVMIO, 0xff), 0), EBADF, "ioctl 0xaeff");
}

// Guards: every System call on a bad fd gives EBADF naming its ioctl.
TEST(BadFd, System) {
  const System sys = System::adopt(Fd(-1), "/nonexistent");
  expect_error(sys.try_api_version(), EBADF, "KVM_GET_API_VERSION");
  expect_error(sys.try_check_extension(KVM_CAP_USER_MEMORY), EBADF, "KVM_CHECK_EXTENSION");
  expect_error(sys.try_vcpu_mmap_size(), EBADF, "KVM_GET_VCPU_MMAP_SIZE");
  expect_error(sys.try_create_vm(), EBADF, "KVM_CREATE_VM");
  expect_error(sys.try_supported_cpuid(), EBADF, "KVM_GET_SUPPORTED_CPUID");
  EXPECT_THROW(sys.api_version(), Failure);
}

// Guards: every Vm call on a bad fd gives EBADF naming its ioctl, and nothing is kept.
TEST(BadFd, Vm) {
  Vm vm(Fd(-1), nullptr);
  expect_error(vm.try_check_extension(KVM_CAP_USER_MEMORY), EBADF, "KVM_CHECK_EXTENSION");
  expect_error(vm.try_create_vcpu(0), EBADF, "KVM_CREATE_VCPU");
  expect_error(vm.try_set_user_memory_region({}), EBADF, "KVM_SET_USER_MEMORY_REGION");
  expect_error(vm.try_add_memory(0, 0, 4096), EBADF, "KVM_SET_USER_MEMORY_REGION");
  EXPECT_TRUE(vm.regions().empty());
  expect_error(vm.try_enable_cap(KVM_CAP_DIRTY_LOG_RING), EBADF, "KVM_ENABLE_CAP");
  kvm_enable_cap request{};
  request.cap = KVMX_CAP_MMU_MODE;
  request.flags = 1;
  expect_error(vm.try_enable_cap(request), EBADF, "KVM_ENABLE_CAP");
  kvm_irq_level irq{};
  expect_error(vm.try_ioctl(op::irq_line, &irq), EBADF, "KVM_IRQ_LINE");
}

// A Vcpu over a memfd: the mapping works, every ioctl is refused with ENOTTY; moved from, the
// same calls hit fd -1 and give EBADF.
class FakeVcpu : public ::testing::Test {
 protected:
  static Vcpu make() {
    const int fd = memfd_create("fake-vcpu", MFD_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, 3 * 4096), 0);
    return Vcpu::try_adopt(Fd(fd), 0, 3 * 4096).value();
  }
};

void expect_all_vcpu_calls_fail(Vcpu& vcpu, int code) {
  expect_error(vcpu.try_run(), code, "KVM_RUN");
  expect_error(vcpu.try_get_regs(), code, "KVM_GET_REGS");
  expect_error(vcpu.try_set_regs({}), code, "KVM_SET_REGS");
  expect_error(vcpu.try_get_sregs(), code, "KVM_GET_SREGS");
  expect_error(vcpu.try_set_sregs({}), code, "KVM_SET_SREGS");
  expect_error(vcpu.try_get_fpu(), code, "KVM_GET_FPU");
  expect_error(vcpu.try_set_fpu({}), code, "KVM_SET_FPU");
  expect_error(vcpu.try_get_vcpu_events(), code, "KVM_GET_VCPU_EVENTS");
  expect_error(vcpu.try_set_vcpu_events({}), code, "KVM_SET_VCPU_EVENTS");
  expect_error(vcpu.try_get_mp_state(), code, "KVM_GET_MP_STATE");
  expect_error(vcpu.try_set_mp_state({}), code, "KVM_SET_MP_STATE");
  expect_error(vcpu.try_get_msr(0x10), code, "KVM_GET_MSRS(0x10)");
  expect_error(vcpu.try_set_msr(0x10, 1), code, "KVM_SET_MSRS(0x10)");
  expect_error(vcpu.try_set_cpuid({}), code, "KVM_SET_CPUID2");
  expect_error(vcpu.try_interrupt(32), code, "KVM_INTERRUPT");
  expect_error(vcpu.try_ioctl(op::nmi), code, "KVM_NMI");
}

// Guards: vCPU calls on a fd that is not a vCPU name their ioctl (ENOTTY from the memfd).
TEST_F(FakeVcpu, WrongFdGivesEnotty) {
  Vcpu vcpu = make();
  expect_all_vcpu_calls_fail(vcpu, ENOTTY);
}

// Guards: a moved-from Vcpu holds no fd; its calls give EBADF rather than touching kvm_run.
TEST_F(FakeVcpu, MovedFromGivesEbadf) {
  Vcpu vcpu = make();
  Vcpu taken = std::move(vcpu);
  expect_all_vcpu_calls_fail(vcpu, EBADF);
  EXPECT_EQ(vcpu.fd(), -1);
  EXPECT_GE(taken.fd(), 0);
}

// Guards: run() keeps the error for anything but EINTR (asserting tier throws).
TEST_F(FakeVcpu, RunThrowsOnError) {
  Vcpu vcpu = make();
  EXPECT_THROW(vcpu.run(), Failure);
}

// Guards: immediate_exit is written into the shared page.
TEST_F(FakeVcpu, ImmediateExitIsStored) {
  Vcpu vcpu = make();
  vcpu.set_immediate_exit(true);
  EXPECT_EQ(vcpu.run_struct().immediate_exit, 1);
  vcpu.immediate_exit_handle().set(false);
  EXPECT_EQ(vcpu.run_struct().immediate_exit, 0);
}

// Guards: mapping kvm_run from a bad fd, or smaller than struct kvm_run, fails cleanly.
TEST(BadFd, VcpuAdopt) {
  expect_error(Vcpu::try_adopt(Fd(-1), 0, 3 * 4096), EBADF, "mmap of kvm_run");
  expect_error(Vcpu::try_adopt(Fd(-1), 0, 16), EINVAL, "mmap of kvm_run");
}

// Guards: a missing device names the module to load, by device name.
TEST(Device, MissingDeviceNamesTheModule) {
  auto kvmx = System::try_open("/nonexistent-dir/kvmx");
  expect_error(kvmx, ENOENT, "open(/nonexistent-dir/kvmx)");
  EXPECT_NE(kvmx.error().message().find("kvmx-amd"), std::string::npos) << kvmx.error().message();
  EXPECT_NE(kvmx.error().message().find("kvmx-intel"), std::string::npos);

  auto kvm = System::try_open("/nonexistent-dir/kvm");
  ASSERT_FALSE(kvm.ok());
  EXPECT_NE(kvm.error().message().find("kvm_amd"), std::string::npos) << kvm.error().message();
  EXPECT_NE(kvm.error().message().find("kvm_intel"), std::string::npos);
}

// Guards: a device that is not a hypervisor answers ENOTTY, named.
TEST(Device, NotAHypervisor) {
  const System sys = System::open("/dev/null");
  expect_error(sys.try_api_version(), ENOTTY, "KVM_GET_API_VERSION");
  expect_error(sys.try_create_vm(), ENOTTY, "KVM_CREATE_VM");
}

// Guards: KVMX_DEVICE overrides the default device path.
TEST(Device, DefaultDeviceFromEnvironment) {
  const char* saved = getenv("KVMX_DEVICE");
  const std::string keep = saved ? saved : "";
  unsetenv("KVMX_DEVICE");
  EXPECT_EQ(System::default_device(), "/dev/kvmx");
  setenv("KVMX_DEVICE", "/dev/kvm", 1);
  EXPECT_EQ(System::default_device(), "/dev/kvm");
  if (saved) setenv("KVMX_DEVICE", keep.c_str(), 1); else unsetenv("KVMX_DEVICE");
}

}  // namespace
}  // namespace kvmx
