// Guest code of the nested-fault tests: one handler for every vector the tests can see, which
// logs the event and either makes the IDT page present and retries, or resumes past the
// instruction that raised the first exception.
#include "nested_fault.hpp"

#include "kvmx/guest/guest.h"
#include "kvmx/guest/x86.h"

extern "C" void nested_fault_raise(uint64_t op, uint64_t va);

namespace mmu_suite {

NestedFaultLog g_nested_log;
volatile uint64_t g_nested_fix_pte, g_nested_fix_va;

void on_nested_event(kvmx::guest::ExceptionFrame* frame) {
  const uint64_t n = g_nested_log.count;
  if (n < kMaxNestedEvents) {
    NestedEvent& e = g_nested_log.events[n];
    e.vector = frame->vector;
    e.error_code = frame->error_code;
    e.rip = frame->rip;
    e.cr2 = kvmx::guest::read_cr2();
  }
  g_nested_log.count = n + 1;
  if (frame->vector == kvmx::x86::kPf && g_nested_fix_pte != 0) {
    auto* pte = reinterpret_cast<volatile uint64_t*>(g_nested_fix_pte);
    *pte = *pte | kvmx::x86::kPtePresent;
    asm volatile("invlpg (%0)" ::"r"(g_nested_fix_va) : "memory");
    g_nested_fix_pte = 0;
    return;
  }
  frame->rip = reinterpret_cast<uint64_t>(nested_fault_resume);
}

void guest_nested_fault(uint64_t op, uint64_t va) { nested_fault_raise(op, va); }

}  // namespace mmu_suite
