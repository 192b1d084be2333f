// What guest code and the host share: the ucall record, the exception frame and the port.
// Included by freestanding guest code, so: <stdint.h> only, fixed-width fields, no library.
#pragma once

#include <stdint.h>

#include "kvmx/guest/asm.h"

namespace kvmx::guest {

// The guest writes the 32-bit guest address of a Ucall to this port (OUT, 4 bytes). Guest stacks
// and the image live below 4 GiB and are identity mapped, so the address is also the GPA.
inline constexpr uint16_t kUcallPort = 0x7e0;
inline constexpr int kUcallMaxValues = 6;

// Assembly guests (real mode, 16/32-bit protected mode, hand-written switches) report through
// registers instead of a Ucall record; see asm.h.
inline constexpr uint16_t kAsmSyncPort = KVMX_ASM_SYNC_PORT;
inline constexpr uint16_t kAsmExceptionPort = KVMX_ASM_EXCEPTION_PORT;

enum class UcallKind : uint32_t {
  none = 0,           // host side only: the vCPU stopped for something other than a ucall
  sync = 1,           // GUEST_SYNC(stage, values...): values[0] is the stage
  done = 2,           // GUEST_DONE(), or the entry function returned
  assert_failed = 3,  // GUEST_ASSERT*: text is the condition, values what the guest saw
  exception = 4,      // an exception without a handler: vector, error code, rip, cr2
};

// GUEST_ASSERT_EQ: values[0] is expected (text), values[1] actual (value_text).
inline constexpr uint32_t kUcallFlagEq = 1u << 0;

struct Ucall {
  uint32_t kind;        // UcallKind
  uint32_t line;
  uint64_t file;        // guest address of __FILE__
  uint64_t text;        // guest address of a C string, or 0
  uint64_t value_text;  // guest address of the values' source text, or 0
  uint32_t flags;
  uint32_t nvalues;
  uint64_t values[kUcallMaxValues];
};
static_assert(sizeof(Ucall) == 88);

// What the exception stubs push, lowest address first: GPRs, then vector and error code (0 when
// the CPU pushes none), then the CPU's interrupt frame. A handler may change any of it, e.g. rip
// to resume after a faulting instruction.
struct ExceptionFrame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error_code;
  uint64_t rip, cs, rflags, rsp, ss;
};
static_assert(sizeof(ExceptionFrame) == 22 * 8);

using ExceptionHandler = void (*)(ExceptionFrame*);

// The exception vectors this CPU pushes an error code for (#DF, #TS, #NP, #SS, #GP, #PF, #AC,
// #CP, #VC, #SX).
constexpr bool pushes_error_code(unsigned vector) {
  return vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 ||
         vector == 30;
}

}  // namespace kvmx::guest

// Symbols of the guest runtime (guest/*.cpp, guest/entry.S) the host refers to.
extern "C" {
// 256 exception stubs, each at kvmx_guest_vectors + 16 * vector.
extern const char kvmx_guest_vectors[];
// Where a guest entry function returns to: reports DONE.
void kvmx_guest_return();
// Exception stubs of legacy-mode guests (guest/legacy.S): 32-bit interrupt-gate stubs, 16 bytes
// apart like the 64-bit ones, and real-mode stubs, 8 bytes apart, that the host copies below
// 1 MiB (kvmx_guest_vectors16 .. kvmx_guest_vectors16_end is position independent).
extern const char kvmx_guest_vectors32[];
extern const char kvmx_guest_vectors16[];
extern const char kvmx_guest_vectors16_end[];
// Per-vector handlers; null reports the exception to the host. The host sets them in the guest's
// copy through Guest::set_exception_handler().
extern kvmx::guest::ExceptionHandler kvmx_guest_exception_handlers[256];
}
