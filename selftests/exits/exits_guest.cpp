// Guest code of the exits suite: runs inside the VM.
#include "exits_guest.hpp"

#include "kvmx/guest/guest.h"

namespace exits_suite {

using namespace kvmx::guest;

void guest_pio_out() {
  outb(kPort, 0x5a);
  outw(kPort, 0x1234);
  outl(kPort, 0xdeadbeef);
  GUEST_DONE();
}

// IN to AL and AX leaves the rest of RAX alone; IN to EAX zero-extends into RAX.
void guest_pio_in() {
  uint64_t v = ~0ull;
  asm volatile("inb %w1, %b0" : "+a"(v) : "d"(kPort));
  GUEST_SYNC(1, v);
  v = ~0ull;
  asm volatile("inw %w1, %w0" : "+a"(v) : "d"(kPort));
  GUEST_SYNC(2, v);
  v = ~0ull;
  asm volatile("inl %w1, %k0" : "+a"(v) : "d"(kPort));
  GUEST_SYNC(3, v);
  GUEST_DONE();
}

void guest_rep_outs(const void* buffer, uint64_t count, uint64_t size) {
  const void* p = buffer;
  uint64_t n = count;
  if (size == 1) asm volatile("rep outsb" : "+S"(p), "+c"(n) : "d"(kPort) : "memory");
  if (size == 2) asm volatile("rep outsw" : "+S"(p), "+c"(n) : "d"(kPort) : "memory");
  if (size == 4) asm volatile("rep outsl" : "+S"(p), "+c"(n) : "d"(kPort) : "memory");
  GUEST_SYNC(1, reinterpret_cast<uint64_t>(p) - reinterpret_cast<uint64_t>(buffer), n);
}

void guest_rep_ins(void* buffer, uint64_t count, uint64_t size) {
  void* p = buffer;
  uint64_t n = count;
  if (size == 1) asm volatile("rep insb" : "+D"(p), "+c"(n) : "d"(kPort) : "memory");
  if (size == 2) asm volatile("rep insw" : "+D"(p), "+c"(n) : "d"(kPort) : "memory");
  if (size == 4) asm volatile("rep insl" : "+D"(p), "+c"(n) : "d"(kPort) : "memory");
  GUEST_SYNC(1, reinterpret_cast<uint64_t>(p) - reinterpret_cast<uint64_t>(buffer), n);
}

// Each load starts from kLoadInit and reports the whole register, so the host sees which bits
// the instruction wrote, zero-extended or sign-extended.
#define EXITS_LOAD(stage, insn)                                                        \
  do {                                                                                 \
    uint64_t r = kLoadInit;                                                            \
    asm volatile(insn : "+r"(r) : "r"(kMmio) : "memory");                              \
    GUEST_SYNC(stage, r);                                                              \
  } while (0)

void guest_mmio_loads() {
  EXITS_LOAD(1, "movb (%1), %b0");
  EXITS_LOAD(2, "movw (%1), %w0");
  EXITS_LOAD(3, "movl (%1), %k0");
  EXITS_LOAD(4, "movq (%1), %q0");
  EXITS_LOAD(5, "movzbl (%1), %k0");
  EXITS_LOAD(6, "movzwq (%1), %q0");
  EXITS_LOAD(7, "movsbq (%1), %q0");
  EXITS_LOAD(8, "movswl (%1), %k0");
  EXITS_LOAD(9, "movslq (%1), %q0");
  EXITS_LOAD(10, "movsbw (%1), %w0");
  GUEST_DONE();
}

void guest_mmio_stores() {
  asm volatile("movb %b1, (%0)" ::"r"(kMmio), "r"(0x81ull) : "memory");
  asm volatile("movw %w1, (%0)" ::"r"(kMmio), "r"(0x8182ull) : "memory");
  asm volatile("movl %k1, (%0)" ::"r"(kMmio), "r"(0x82838485ull) : "memory");
  asm volatile("movq %q1, (%0)" ::"r"(kMmio), "r"(0x8182838485868788ull) : "memory");
  asm volatile("movb $0x91, (%0)" ::"r"(kMmio) : "memory");
  asm volatile("movw $0x9192, (%0)" ::"r"(kMmio) : "memory");
  asm volatile("movl $0x92939495, (%0)" ::"r"(kMmio) : "memory");
  asm volatile("movq $-0x6d6c6b6b, (%0)" ::"r"(kMmio) : "memory");  // imm32 0x92939495, sign-extended
  GUEST_DONE();
}

void guest_mmio_movs() {
  volatile uint32_t ram = 0xa1a2a3a4;
  const volatile uint32_t* src = &ram;
  uint64_t dst = kMmio;
  asm volatile("movsl" : "+S"(src), "+D"(dst)::"memory");
  ram = 0;
  uint64_t mmio_src = kMmio;
  volatile uint32_t* ram_dst = &ram;
  asm volatile("movsl" : "+S"(mmio_src), "+D"(ram_dst)::"memory");
  GUEST_SYNC(1, ram);
  GUEST_DONE();
}

// REP MOVS of `count` elements of `size` bytes from src to dst, backwards (DF set) if asked, then
// report RSI, RDI and RCX as the instruction left them.
void guest_rep_movs(uint64_t src, uint64_t dst, uint64_t count, uint64_t size, uint64_t backwards) {
  uint64_t s = src, d = dst, n = count;
  if (backwards) asm volatile("std");
  if (size == 1) asm volatile("rep movsb" : "+S"(s), "+D"(d), "+c"(n)::"memory");
  if (size == 2) asm volatile("rep movsw" : "+S"(s), "+D"(d), "+c"(n)::"memory");
  if (size == 4) asm volatile("rep movsl" : "+S"(s), "+D"(d), "+c"(n)::"memory");
  if (size == 8) asm volatile("rep movsq" : "+S"(s), "+D"(d), "+c"(n)::"memory");
  asm volatile("cld");
  GUEST_SYNC(1, s, d, n);
  GUEST_DONE();
}

void guest_hlt() {
  asm volatile(
      "hlt\n"
      ".globl exits_after_hlt\n"
      "exits_after_hlt:" ::
          : "memory");
  GUEST_DONE();
}

// An IDT limit of 0 makes every exception fail to deliver: #DE -> #GP -> #DF -> shutdown.
void guest_triple_fault() {
  struct __attribute__((packed)) {
    uint16_t limit;
    uint64_t base;
  } idtr = {0, 0};
  asm volatile("lidt %0" ::"m"(idtr));
  asm volatile("xorl %%ecx, %%ecx; divl %%ecx" ::: "rax", "rcx", "rdx");
  GUEST_DONE();
}

void guest_read_only(volatile uint64_t* p) {
  const uint64_t before = *p;
  *p = 0x7777777777777777ull;
  const uint64_t after = *p;
  GUEST_SYNC(1, before, after);
  GUEST_DONE();
}

}  // namespace exits_suite
