// What the host and the guest code of the nested-fault tests (nested_fault_test.cpp) share: the
// log of the events the guest's handlers saw, and the guest entry points (nested_fault_guest.cpp,
// nested_fault_guest.S; built freestanding).
#pragma once

#include <stdint.h>

#include "kvmx/guest/abi.h"

namespace mmu_suite {

// What raises the first exception.
enum NestedFaultOp : uint8_t {
  kRaiseUd,    // UD2: #UD, benign
  kRaiseDe,    // DIV by zero: #DE, contributory
  kRaiseRead,  // a read of `va`: #PF when va is not mapped
};

struct NestedEvent {
  uint64_t vector;
  uint64_t error_code;  // 0 for vectors without one
  uint64_t rip;         // the saved RIP
  uint64_t cr2;         // CR2 when the handler ran
};

inline constexpr unsigned kMaxNestedEvents = 4;

struct NestedFaultLog {
  uint64_t count;  // events seen, including any beyond kMaxNestedEvents
  NestedEvent events[kMaxNestedEvents];
};

extern NestedFaultLog g_nested_log;
// The PTE (its guest address, GVA == GPA) that the next #PF makes present, then INVLPGs
// g_nested_fix_va, and returns to retry the interrupted instruction; 0: none. Any other event
// resumes after the instruction that raised the first exception.
extern volatile uint64_t g_nested_fix_pte, g_nested_fix_va;

void on_nested_event(kvmx::guest::ExceptionFrame* frame);
void guest_nested_fault(uint64_t op, uint64_t va);

}  // namespace mmu_suite

extern "C" {
// nested_fault_guest.S: the instructions that raise the first exception, and where every
// handler but the page-fixing #PF resumes.
extern const char nested_fault_ud2[], nested_fault_div[], nested_fault_read[], nested_fault_resume[];
}
