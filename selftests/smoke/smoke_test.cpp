// smoke: the device answers the handful of ioctls every client issues first.
//
// Keep this suite to what a hypervisor offers before it can run a vCPU: KVM_GET_API_VERSION,
// KVM_CHECK_EXTENSION, KVM_CREATE_VM, closing the VM fd, and the errno of an unknown ioctl.
#include <gtest/gtest.h>
#include "kvmx/linux_kvm.h"

#include <cerrno>
#include <vector>

#include "kvmx/kvmx.hpp"
#include "kvmx/test/fixtures.hpp"

namespace {

using kvmx::ioctl_unchecked;
using kvmx::Vm;
using Smoke = kvmx::test::SystemTest;

// Not a KVM capability, and below KVMX_CAP_BASE (uapi/linux/kvmx.h), so neither implementation
// will ever assign it.
constexpr long kUnknownCap = 0x3fff0000;

// KVM's type byte with numbers KVM never assigned. kvmx's own ioctls use another type byte
// (KVMXIO), so these stay unknown on /dev/kvmx too. One without and one with an argument size.
constexpr unsigned long kUnknownIoctl = _IO(KVMIO, 0xff);
constexpr unsigned long kUnknownIoctlWithArg = _IOWR(KVMIO, 0xfe, struct kvm_regs);

// A VM type no x86 kernel knows: KVM accepts types below 32 that its vendor supports
// (KVM_X86_DEFAULT_VM = 0 everywhere; SEV types on AMD with 6.12).
constexpr unsigned long kBadVmType = 0xdead;

// Guards: the API version every KVM client checks first (KVM_API_VERSION).
TEST_F(Smoke, ApiVersionIs12) {
  auto version = sys().try_api_version();
  KVMX_ASSERT_OK(version);
  EXPECT_EQ(*version, 12);
}

// Guards: KVM_GET_API_VERSION takes no argument; KVM's kvm_dev_ioctl() refuses one with EINVAL.
TEST_F(Smoke, ApiVersionRejectsAnArgument) {
  KVMX_EXPECT_ERRNO(ioctl_unchecked(sys().fd(), KVM_GET_API_VERSION, 1), EINVAL);
}

// Guards: an unknown capability is reported absent (0), not as an error.
TEST_F(Smoke, UnknownCapabilityIsAbsent) {
  for (long cap : {kUnknownCap, -1L}) {
    auto r = sys().try_check_extension(cap);
    KVMX_ASSERT_OK(r);
    EXPECT_EQ(*r, 0) << "KVM_CHECK_EXTENSION(" << cap << ")";
  }
}

// Guards: a VM can be created and its fd closed without error.
TEST_F(Smoke, CreateAndCloseVm) {
  auto vm = sys().try_create_vm();
  KVMX_ASSERT_OK(vm);
  EXPECT_GE(vm->fd(), 0);
  KVMX_EXPECT_OK(vm->try_close());
}

// Guards: VM teardown releases what creation took, so creating VMs in a row keeps working.
TEST_F(Smoke, CreateManyVmsInARow) {
  for (int i = 0; i < 64; ++i) {
    auto vm = sys().try_create_vm();
    KVMX_ASSERT_OK(vm) << "VM " << i;
    KVMX_ASSERT_OK(vm->try_close()) << "VM " << i;
  }
}

// Guards: two VMs live side by side as separate objects, and either may be closed first.
TEST_F(Smoke, TwoVmsAtOnce) {
  for (bool close_first_one_first : {true, false}) {
    auto a = sys().try_create_vm();
    auto b = sys().try_create_vm();
    KVMX_ASSERT_OK(a);
    KVMX_ASSERT_OK(b);
    EXPECT_NE(a->fd(), b->fd());
    // Both answer on their own fd, as VM fds do.
    KVMX_EXPECT_ERRNO(ioctl_unchecked(a->fd(), kUnknownIoctl, 0), ENOTTY);
    KVMX_EXPECT_ERRNO(ioctl_unchecked(b->fd(), kUnknownIoctl, 0), ENOTTY);
    Vm& first = close_first_one_first ? *a : *b;
    Vm& second = close_first_one_first ? *b : *a;
    KVMX_EXPECT_OK(first.try_close());
    KVMX_EXPECT_OK(second.try_close());
  }
}

// Guards: the system fd stays usable while VMs exist and after they are closed.
TEST_F(Smoke, SystemFdOutlivesVms) {
  {
    auto vm = sys().try_create_vm();
    KVMX_ASSERT_OK(vm);
    EXPECT_EQ(sys().try_api_version().value_or(-1), 12);
  }
  EXPECT_EQ(sys().try_api_version().value_or(-1), 12);
  auto again = sys().try_create_vm();
  KVMX_EXPECT_OK(again);
}

// Guards: KVM_CREATE_VM refuses a machine type it does not know with EINVAL
// (kvm_arch_init_vm() on x86), and creating a normal VM still works afterwards.
TEST_F(Smoke, CreateVmWithBadTypeIsEinval) {
  KVMX_EXPECT_ERRNO(sys().try_create_vm(kBadVmType), EINVAL);
  KVMX_EXPECT_ERRNO(sys().try_create_vm(~0ul), EINVAL);
  KVMX_EXPECT_OK(sys().try_create_vm());
}

// Guards: an unknown ioctl on the system fd fails like KVM's: kvm_dev_ioctl() hands it to
// kvm_arch_dev_ioctl(), whose x86 default is -EINVAL (not the usual ENOTTY).
TEST_F(Smoke, UnknownSystemIoctlIsEinval) {
  KVMX_EXPECT_ERRNO(ioctl_unchecked(sys().fd(), kUnknownIoctl, 0), EINVAL);
  KVMX_EXPECT_ERRNO(ioctl_unchecked(sys().fd(), kUnknownIoctlWithArg, 0), EINVAL);
}

// Guards: an unknown ioctl on a VM fd fails like KVM's: kvm_vm_ioctl() hands it to
// kvm_arch_vm_ioctl(), whose x86 default is -ENOTTY.
TEST_F(Smoke, UnknownVmIoctlIsEnotty) {
  auto vm = sys().try_create_vm();
  KVMX_ASSERT_OK(vm);
  KVMX_EXPECT_ERRNO(ioctl_unchecked(vm->fd(), kUnknownIoctl, 0), ENOTTY);
  KVMX_EXPECT_ERRNO(ioctl_unchecked(vm->fd(), kUnknownIoctlWithArg, 0), ENOTTY);
}

}  // namespace
