// events: interrupts, NMIs and exceptions injected by userspace, and the event state that
// KVM_GET/SET_VCPU_EVENTS carries.
#include <gtest/gtest.h>

#include "events_guest.hpp"
#include "kvmx/guest/x86.h"
#include "kvmx/test/guest.hpp"

namespace {

using namespace events_suite;
using kvmx::test::Cpu;
using kvmx::test::env;
using kvmx::test::GuestTest;
using kvmx::test::HostUcall;
namespace exit = kvmx::exit;
namespace op = kvmx::op;
namespace x86 = kvmx::x86;

using Events = GuestTest;

constexpr std::uint8_t kIrqVector = 0x40;

// Guards: without an in-kernel irqchip, request_interrupt_window makes KVM_RUN exit with
// KVM_EXIT_IRQ_WINDOW_OPEN once the guest sets IF (after STI's shadow), with
// ready_for_interrupt_injection and if_flag set; KVM_INTERRUPT then delivers the vector through
// the guest's IDT. if_flag is 0 while the guest runs with IF clear.
TEST_F(Events, InterruptWindowThenKvmInterrupt) {
  guest().set_exception_handler(kIrqVector, record_event);
  auto vcpu = guest().add_vcpu(guest_irq_window);
  KVMX_ASSERT_SYNC(guest().run(vcpu), 1);
  kvm_run& run = vcpu.run_struct();
  EXPECT_EQ(run.if_flag, 0);

  run.request_interrupt_window = 1;
  const kvmx::Exit e = vcpu.run();
  KVMX_ASSERT_EXIT(e, exit::IrqWindowOpen);
  EXPECT_EQ(run.ready_for_interrupt_injection, 1);
  EXPECT_EQ(run.if_flag, 1);

  KVMX_EXPECT_ERRNO(vcpu.try_interrupt(256), EINVAL);  // KVM_NR_INTERRUPTS
  KVMX_ASSERT_OK(vcpu.try_interrupt(kIrqVector));
  run.request_interrupt_window = 0;
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 2);
  EXPECT_EQ(uc.values[1], kIrqVector) << "vector seen by the guest's handler";
  EXPECT_EQ(uc.values[2], 1u) << "interrupts delivered";
}

// Guards: KVM_NMI queues an NMI that the guest takes through IDT vector 2.
TEST_F(Events, NmiDelivered) {
  KVMX_REQUIRE_CAP(KVM_CAP_USER_NMI);
  guest().set_exception_handler(x86::kNmi, record_event);
  auto vcpu = guest().add_vcpu(guest_wait_event);
  KVMX_ASSERT_OK(vcpu.try_ioctl(op::nmi));
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], x86::kNmi);
  EXPECT_EQ(uc.values[2], 1u) << "NMIs delivered";
}

// Guards: an exception set with KVM_SET_VCPU_EVENTS (exception.injected) is delivered before the
// first instruction, with its error code, the interrupted RIP being the entry point.
TEST_F(Events, ExceptionInjectedWithVcpuEvents) {
  KVMX_REQUIRE_CAP(KVM_CAP_VCPU_EVENTS);
  guest().set_exception_handler(x86::kGp, record_event);
  auto vcpu = guest().add_vcpu(guest_report_event);
  kvm_vcpu_events events = vcpu.get_vcpu_events();
  events.flags = 0;
  events.exception.injected = 1;
  events.exception.nr = x86::kGp;
  events.exception.has_error_code = 1;
  events.exception.error_code = 0x1234;
  vcpu.set_vcpu_events(events);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], x86::kGp) << "vector";
  EXPECT_EQ(uc.values[2], 0x1234u) << "error code";
  EXPECT_EQ(uc.values[3], reinterpret_cast<std::uint64_t>(&guest_report_event)) << "RIP";
  EXPECT_EQ(uc.values[4], 1u) << "exceptions delivered";
}

// Guards: KVM_SET_VCPU_EVENTS then KVM_GET_VCPU_EVENTS keeps an injected interrupt, a pending
// and masked NMI and an injected exception.
TEST_F(Events, VcpuEventsRoundTrip) {
  KVMX_REQUIRE_CAP(KVM_CAP_VCPU_EVENTS);
  auto vcpu = guest().add_vcpu(guest_report_event);
  kvm_vcpu_events set = vcpu.get_vcpu_events();
  EXPECT_EQ(set.exception.injected, 0);
  EXPECT_EQ(set.interrupt.injected, 0);
  EXPECT_EQ(set.nmi.pending, 0);
  set.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
  set.interrupt.injected = 1;
  set.interrupt.nr = 0x30;
  set.nmi.pending = 1;
  set.nmi.masked = 1;
  vcpu.set_vcpu_events(set);
  kvm_vcpu_events got = vcpu.get_vcpu_events();
  EXPECT_EQ(got.interrupt.injected, 1);
  EXPECT_EQ(got.interrupt.nr, 0x30);
  EXPECT_EQ(got.nmi.pending, 1);
  EXPECT_EQ(got.nmi.masked, 1);

  set = vcpu.get_vcpu_events();
  set.flags = 0;
  set.interrupt.injected = 0;
  set.exception.injected = 1;
  set.exception.nr = x86::kUd;
  set.exception.has_error_code = 0;
  vcpu.set_vcpu_events(set);
  got = vcpu.get_vcpu_events();
  EXPECT_EQ(got.exception.injected, 1);
  EXPECT_EQ(got.exception.nr, x86::kUd);
  EXPECT_EQ(got.exception.has_error_code, 0);
}

// Guards: the interrupt shadow round-trips through KVM_VCPUEVENT_VALID_SHADOW. The vendors differ:
// VMX keeps "blocking by STI" and "blocking by MOV SS" apart and reports what was set, while
// SVM has a single interrupt-shadow bit, so KVM reports it as both STI and MOV SS. (KVM offers
// the flag with KVM_CAP_VCPU_EVENTS; KVM_CAP_INTR_SHADOW is not reported by KVM_CHECK_EXTENSION.)
TEST_F(Events, InterruptShadowRoundTrip) {
  KVMX_REQUIRE_CAP(KVM_CAP_VCPU_EVENTS);
  auto vcpu = guest().add_vcpu(guest_report_event);
  kvm_vcpu_events set = vcpu.get_vcpu_events();
  set.flags = KVM_VCPUEVENT_VALID_SHADOW;
  set.interrupt.shadow = KVM_X86_SHADOW_INT_MOV_SS;
  vcpu.set_vcpu_events(set);
  const kvm_vcpu_events got = vcpu.get_vcpu_events();
  EXPECT_NE(got.interrupt.shadow & KVM_X86_SHADOW_INT_MOV_SS, 0);
  if (env().cpu == Cpu::amd) {
    EXPECT_EQ(got.interrupt.shadow, KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI) << "SVM: one shadow bit";
  } else if (env().cpu == Cpu::intel) {
    EXPECT_EQ(got.interrupt.shadow, KVM_X86_SHADOW_INT_MOV_SS) << "VMX: STI and MOV SS blocking apart";
  }
  set.interrupt.shadow = 0;
  vcpu.set_vcpu_events(set);
  EXPECT_EQ(vcpu.get_vcpu_events().interrupt.shadow, 0);
}

// Guards: KVM_SET_VCPU_EVENTS refuses an exception vector above 31 or the NMI vector, and unknown
// flags, with EINVAL.
TEST_F(Events, VcpuEventsRejectsBadInput) {
  KVMX_REQUIRE_CAP(KVM_CAP_VCPU_EVENTS);
  auto vcpu = guest().add_vcpu(guest_report_event);
  const kvm_vcpu_events base = vcpu.get_vcpu_events();
  kvm_vcpu_events bad = base;
  bad.flags = 0;
  bad.exception.injected = 1;
  bad.exception.nr = 32;
  KVMX_EXPECT_ERRNO(vcpu.try_set_vcpu_events(bad), EINVAL);
  bad.exception.nr = x86::kNmi;
  KVMX_EXPECT_ERRNO(vcpu.try_set_vcpu_events(bad), EINVAL);
  bad = base;
  bad.flags = 1u << 31;
  KVMX_EXPECT_ERRNO(vcpu.try_set_vcpu_events(bad), EINVAL);
}

}  // namespace
