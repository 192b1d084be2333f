// mmu: a #PF raised while the CPU delivers another exception, because the IDT gate it reads lies in
// a page the guest's own page tables do not map. The SDM ("Conditions for Generating a Double
// Fault", table "Double-Fault Conditions") and the APM ("Double Fault") combine the two by class:
// after a benign or contributory exception the #PF is handled serially (delivered as a #PF);
// after a #PF it is a #DF; during the delivery of a #DF it is a triple fault (shutdown). With
// TDP the CPU combines them itself; with shadow paging every #PF exits to the hypervisor, which
// must apply the same table (KVM: kvm_multiple_exception()).
//
// Each test puts a copy of the framework's IDT across two pages at kVaIdt (16-byte gates, IDTR
// limit 4095): gates [0, split) at the end of the first page, [split, 256) at the start of the
// second, and leaves one of the pages not present.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "kvmx/guest/x86.h"
#include "mmu_fixture.hpp"
#include "nested_fault.hpp"

namespace mmu_suite {
namespace {

namespace exit = kvmx::exit;
namespace x86 = kvmx::x86;
using namespace std::chrono_literals;

constexpr unsigned kGateSize = 16;
constexpr unsigned kIdtSize = 256 * kGateSize;
constexpr std::uint64_t kGatePresent = 1ull << 47;  // P in the low quadword of a gate
constexpr std::uint64_t kUnmapped = kVaIdt + 2 * kvmx::kPageSize;  // PTE 2 of the IDT's table stays 0

// How long a vCPU that should shut down at once may stay in KVM_RUN: a hypervisor that re-injects
// the #DF forever fails the test instead of hanging the suite.
constexpr auto kShutdownDeadline = 10s;
constexpr int kKickSignal = SIGUSR1;

std::uint64_t addr(const char* label) { return reinterpret_cast<std::uint64_t>(label); }

class MmuNestedFault : public MmuTest {
 protected:
  // The first page holds gates [0, split), the second [split, 256); `absent` (0 or 1) is left
  // not present.
  void build_idt(unsigned split, unsigned absent) {
    const std::uint64_t pages = guest().alloc(2 * kvmx::kPageSize);
    idt_gpa_ = pages + kvmx::kPageSize - kGateSize * split;
    base_ = kVaIdt + kvmx::kPageSize - kGateSize * split;
    std::memcpy(guest().host_ptr(idt_gpa_, kIdtSize), guest().host_ptr(guest().idt(), kIdtSize), kIdtSize);
    pt_ = mmu().table_for(mmu().pml4(), kVaIdt, 1);
    for (unsigned i = 0; i < 2; ++i) {
      const std::uint64_t present = i == absent ? 0 : x86::kPtePresent;
      mmu().entry(pt_, i) = (pages + i * kvmx::kPageSize) | present | x86::kPteWritable;
    }
  }

  std::uint64_t gate_va(unsigned vector) const { return base_ + kGateSize * vector; }
  std::uint64_t& gate_low(unsigned vector) {
    return *reinterpret_cast<std::uint64_t*>(guest().host_ptr(idt_gpa_ + kGateSize * vector, 8));
  }

  // Let the first #PF make IDT page `page` present and retry the instruction.
  void fix_page_on_pf(unsigned page) {
    guest().write_global(g_nested_fix_pte, pt_ + 8 * page);
    guest().write_global(g_nested_fix_va, kVaIdt + page * kvmx::kPageSize);
  }

  kvmx::Vcpu add_vcpu(NestedFaultOp op, std::uint64_t va = 0) {
    for (std::uint8_t v : {x86::kDe, x86::kUd, x86::kDf, x86::kTs, x86::kNp, x86::kSs, x86::kGp, x86::kPf}) {
      guest().set_exception_handler(v, on_nested_event);
    }
    kvmx::Vcpu vcpu = mmu().add_vcpu(guest_nested_fault, {op, va});
    kvm_sregs sregs = vcpu.get_sregs();
    sregs.idt.base = base_;
    sregs.idt.limit = kIdtSize - 1;
    vcpu.set_sregs(sregs);
    return vcpu;
  }

  NestedFaultLog log() { return guest().read_global(g_nested_log); }

  // KVM_RUN, interrupted (immediate_exit and a signal: exit::Intr) if it has not returned
  // within kShutdownDeadline.
  static kvmx::Exit run_with_deadline(kvmx::Vcpu& vcpu) {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN returns EINTR
    sigaction(kKickSignal, &sa, nullptr);
    std::mutex m;
    std::condition_variable cv;
    bool returned = false;
    const pthread_t runner = pthread_self();
    const kvmx::ImmediateExit stop = vcpu.immediate_exit_handle();
    std::thread watchdog([&] {
      std::unique_lock lock(m);
      if (cv.wait_for(lock, kShutdownDeadline, [&] { return returned; })) return;
      stop.set(true);
      while (!cv.wait_for(lock, 10ms, [&] { return returned; })) pthread_kill(runner, kKickSignal);
    });
    const kvmx::Exit e = vcpu.run();
    {
      std::lock_guard lock(m);
      returned = true;
    }
    cv.notify_one();
    watchdog.join();
    vcpu.set_immediate_exit(false);
    return e;
  }

  std::uint64_t base_ = 0, idt_gpa_ = 0, pt_ = 0;
};

std::string describe(const NestedFaultLog& log) {
  std::string s = std::to_string(log.count) + " event(s):";
  char buf[128];
  for (std::uint64_t i = 0; i < log.count && i < kMaxNestedEvents; ++i) {
    const NestedEvent& e = log.events[i];
    std::snprintf(buf, sizeof buf, " [vector %lu, error code %#lx, rip %#lx, cr2 %#lx]",
                  static_cast<unsigned long>(e.vector), static_cast<unsigned long>(e.error_code),
                  static_cast<unsigned long>(e.rip), static_cast<unsigned long>(e.cr2));
    s += buf;
  }
  return s;
}

// The #PF on a gate read: CR2 is the linear address of the gate (where the CPU's read of the
// 16-byte gate faulted: the gate lies inside the absent page), and the error code is 0: not
// present, a read, supervisor (the IDT read is an implicit supervisor access), not a fetch. The
// saved RIP is the instruction whose exception was being delivered, since that delivery never
// happened.
void expect_gate_fault(const NestedEvent& e, std::uint64_t gate, std::uint64_t rip) {
  EXPECT_EQ(e.vector, x86::kPf) << "first event";
  EXPECT_EQ(e.cr2, gate) << "CR2 of the #PF";
  EXPECT_EQ(e.error_code, 0u) << "#PF error code";
  EXPECT_EQ(e.rip, rip) << "RIP saved by the #PF";
}

// Guards: a #PF while delivering a benign exception (#UD, gate 6 in the absent page) is handled
// serially: the guest gets #PF (not #DF) with CR2 = the linear address of gate 6 and error code
// 0 at RIP = the UD2; after the handler maps the page, the retried UD2 delivers #UD.
TEST_F(MmuNestedFault, BenignThenPageFaultIsPageFault) {
  build_idt(8, 0);  // gates 0-7 absent; 8 and 14 present
  fix_page_on_pf(0);
  auto vcpu = add_vcpu(kRaiseUd);
  KVMX_ASSERT_DONE(guest().run(vcpu));
  const NestedFaultLog l = log();
  ASSERT_EQ(l.count, 2u) << describe(l);
  expect_gate_fault(l.events[0], gate_va(x86::kUd), addr(nested_fault_ud2));
  EXPECT_EQ(l.events[1].vector, x86::kUd) << "after the page is mapped";
  EXPECT_EQ(l.events[1].rip, addr(nested_fault_ud2)) << "RIP saved by the #UD";
}

// Guards: a #PF while delivering a contributory exception (#DE, gate 0 in the absent page) is
// handled serially: #PF (not #DF) with CR2 = the linear address of gate 0 and error code 0 at
// RIP = the DIV; after the handler maps the page, the retried DIV delivers #DE.
TEST_F(MmuNestedFault, ContributoryThenPageFaultIsPageFault) {
  build_idt(1, 0);  // gate 0 absent; 8 and 14 present
  fix_page_on_pf(0);
  auto vcpu = add_vcpu(kRaiseDe);
  KVMX_ASSERT_DONE(guest().run(vcpu));
  const NestedFaultLog l = log();
  ASSERT_EQ(l.count, 2u) << describe(l);
  expect_gate_fault(l.events[0], gate_va(x86::kDe), addr(nested_fault_div));
  EXPECT_EQ(l.events[1].vector, x86::kDe) << "after the page is mapped";
  EXPECT_EQ(l.events[1].rip, addr(nested_fault_div)) << "RIP saved by the #DE";
}

// Guards: a #PF while delivering a #PF (a read of an unmapped address; gate 14 in the absent
// page, gate 8 present) is a #DF: the guest's #DF handler runs with error code 0, and no #PF
// handler runs. CR2 and the saved RIP are not compared: the SDM leaves the saved CS:RIP of a #DF
// undefined, and CR2 may hold either faulting address.
TEST_F(MmuNestedFault, PageFaultThenPageFaultIsDoubleFault) {
  build_idt(9, 1);  // gates 0-8 present; 9-255, with 14, absent
  auto vcpu = add_vcpu(kRaiseRead, kUnmapped);
  KVMX_ASSERT_DONE(guest().run(vcpu));
  const NestedFaultLog l = log();
  ASSERT_EQ(l.count, 1u) << describe(l);
  EXPECT_EQ(l.events[0].vector, x86::kDf);
  EXPECT_EQ(l.events[0].error_code, 0u) << "#DF error code";
}

// Guards: with gates 8 and 14 both in the absent page, a #PF becomes a #DF (its gate read
// faults), and the #PF on the #DF's gate read is a triple fault: KVM_EXIT_SHUTDOWN, no handler
// runs.
TEST_F(MmuNestedFault, PageFaultDuringDoubleFaultIsShutdown) {
  build_idt(256, 0);  // the whole IDT in the absent page
  auto vcpu = add_vcpu(kRaiseRead, kUnmapped);
  const kvmx::Exit e = run_with_deadline(vcpu);
  KVMX_EXPECT_EXIT(e, exit::Shutdown) << "(an INTR exit: KVM_RUN was still running after "
                                      << kShutdownDeadline.count() << " s)";
  const NestedFaultLog l = log();
  EXPECT_EQ(l.count, 0u) << describe(l);
}

// Guards: a #DF that no #PF caused (#DE, whose gate is marked not present, raises #NP:
// contributory on contributory; gate 0 lies in the present page) whose own gate read faults
// (gate 8 in the absent page) is a triple fault: KVM_EXIT_SHUTDOWN, no handler runs. (#DE, not
// a #GP from a non-canonical address: QEMU TCG delivers the #NP of a not-present #GP gate
// without making it a #DF, for in-tree KVM as well.)
TEST_F(MmuNestedFault, PageFaultDuringContributoryDoubleFaultIsShutdown) {
  build_idt(8, 1);  // gates 0-7 present; 8-255 absent
  gate_low(x86::kDe) &= ~kGatePresent;
  auto vcpu = add_vcpu(kRaiseDe);
  const kvmx::Exit e = run_with_deadline(vcpu);
  KVMX_EXPECT_EXIT(e, exit::Shutdown) << "(an INTR exit: KVM_RUN was still running after "
                                      << kShutdownDeadline.count() << " s)";
  const NestedFaultLog l = log();
  EXPECT_EQ(l.count, 0u) << describe(l);
}

}  // namespace
}  // namespace mmu_suite
