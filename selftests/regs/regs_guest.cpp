// Guest code of the regs suite: runs inside the VM.
#include "regs_guest.hpp"

#include "kvmx/guest/guest.h"

namespace regs_suite {

using namespace kvmx::guest;

volatile uint64_t g_gprs[17];

extern "C" void regs_guest_gprs_saved() {
  GUEST_SYNC(1);
  GUEST_DONE();
}

// Entry points in assembly: a C++ prologue would change registers before they are read.
asm(R"(
	.text
	.globl regs_guest_report_gprs
regs_guest_report_gprs:
	movq %rax, _ZN10regs_suite6g_gprsE + 0
	movq %rbx, _ZN10regs_suite6g_gprsE + 8
	movq %rcx, _ZN10regs_suite6g_gprsE + 16
	movq %rdx, _ZN10regs_suite6g_gprsE + 24
	movq %rsi, _ZN10regs_suite6g_gprsE + 32
	movq %rdi, _ZN10regs_suite6g_gprsE + 40
	movq %rsp, _ZN10regs_suite6g_gprsE + 48
	movq %rbp, _ZN10regs_suite6g_gprsE + 56
	movq %r8, _ZN10regs_suite6g_gprsE + 64
	movq %r9, _ZN10regs_suite6g_gprsE + 72
	movq %r10, _ZN10regs_suite6g_gprsE + 80
	movq %r11, _ZN10regs_suite6g_gprsE + 88
	movq %r12, _ZN10regs_suite6g_gprsE + 96
	movq %r13, _ZN10regs_suite6g_gprsE + 104
	movq %r14, _ZN10regs_suite6g_gprsE + 112
	movq %r15, _ZN10regs_suite6g_gprsE + 120
	pushfq
	popq _ZN10regs_suite6g_gprsE + 128
	andq $-16, %rsp
	call regs_guest_gprs_saved

	.globl regs_guest_load_gprs
regs_guest_load_gprs:
	movq $0x10ab, %rax
	movq $0x20ab, %rbx
	movq $0x30ab, %rcx
	movq $0x40ab, %rdx
	movq $0x50ab, %rsi
	movq $0x60ab, %rdi
	movq $0x70ab, %rsp
	movq $0x80ab, %rbp
	movq $0x90ab, %r8
	movq $0xa0ab, %r9
	movq $0xb0ab, %r10
	movq $0xc0ab, %r11
	movq $0xd0ab, %r12
	movq $0xe0ab, %r13
	movq $0xf0ab, %r14
	movq $0x100ab, %r15
	hlt
)");

void guest_rdmsrs(uint32_t a, uint32_t b, uint32_t c) {
  GUEST_SYNC(1, rdmsr(a), rdmsr(b), rdmsr(c));
  GUEST_DONE();
}

void guest_wrmsr(uint32_t index, uint64_t value) {
  wrmsr(index, value);
  hlt();
  GUEST_DONE();
}

void guest_rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  GUEST_SYNC(1, (uint64_t(hi) << 32) | lo);
  GUEST_DONE();
}

void guest_read_efer() {
  GUEST_SYNC(1, rdmsr(0xc0000080));
  GUEST_DONE();
}

// Report XMM0 and MXCSR as the host set them (guest code is general-registers-only, so the
// compiler keeps nothing in XMM registers and they need no clobbers), then load XMM1 and MXCSR for the host to read
// after HLT.
void guest_xmm() {
  uint64_t lo, hi;
  uint32_t mxcsr;
  asm volatile("movq %%xmm0, %0; movhlps %%xmm0, %%xmm2; movq %%xmm2, %1; stmxcsr %2"
               : "=r"(lo), "=r"(hi), "=m"(mxcsr));
  GUEST_SYNC(1, lo, hi, mxcsr);
  const uint64_t v = kGuestXmm1;
  const uint32_t new_mxcsr = kGuestMxcsr;
  asm volatile("movq %0, %%xmm1; ldmxcsr %1" ::"r"(v), "m"(new_mxcsr));
  hlt();
  GUEST_DONE();
}

void guest_cpuid(uint32_t leaf) {
  uint32_t a, b, c, d;
  asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(0));
  GUEST_SYNC(1, a, b, c, d);
  GUEST_DONE();
}

}  // namespace regs_suite
