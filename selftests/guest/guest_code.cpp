// Guest code of the guest suite: runs inside the VM.
#include "guest_code.hpp"

#include "kvmx/guest/guest.h"
#include "kvmx/guest/x86.h"

namespace guest_suite {

using namespace kvmx::guest;
namespace x86 = kvmx::x86;

volatile uint64_t g_value_from_host = 0;
volatile uint64_t g_ud_count = 0;

void guest_done() { GUEST_DONE(); }

void guest_returns() {}

void guest_sync_stages() {
  GUEST_SYNC(1);
  GUEST_SYNC(2, 0xabc, 0xdef);
  GUEST_DONE();
}

void guest_args(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, uint64_t f) {
  GUEST_SYNC(1, a, b, c, d, e);
  GUEST_SYNC(2, f);
}

void guest_long_mode_state() {
  GUEST_SYNC(1, read_cr0(), read_cr3(), read_cr4(), rdmsr(x86::kMsrEfer));
  uint16_t cs;
  asm volatile("mov %%cs, %0" : "=r"(cs));
  GUEST_SYNC(2, cs);
}

void guest_assert_eq(uint64_t actual) {
  GUEST_ASSERT_EQ(42u, actual);
  GUEST_DONE();
}

void guest_assert_values(uint64_t x, uint64_t y) {
  GUEST_ASSERT(x < y, x, y);
  GUEST_DONE();
}

void guest_reads_global() { GUEST_SYNC(1, g_value_from_host); }

void guest_writes_memory(uint64_t* p, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) p[i] = 0x5a5a000000000000ull | i;
  GUEST_SYNC(1);
}

void guest_null_dereference() {
  volatile uint64_t* null = nullptr;
  GUEST_SYNC(1, *null);
}

void skip_ud2(ExceptionFrame* frame) {
  g_ud_count = g_ud_count + 1;
  frame->rip += 2;  // ud2 is 0f 0b
}

void guest_ud_then_sync() {
  asm volatile("ud2");
  asm volatile("ud2");
  GUEST_SYNC(1, g_ud_count);
}

void guest_port_io() {
  outb(kPortOut, 0x5a);
  outw(kPortOut, 0x1234);
  outl(kPortOut, 0xdeadbeef);
  const uint8_t b = inb(kPortIn);
  const uint32_t l = inl(kPortIn);
  GUEST_ASSERT_EQ(uint8_t{0xa5}, b);
  GUEST_ASSERT_EQ(0xcafef00du, l);
  GUEST_DONE();
}

void guest_mmio() {
  auto* reg = reinterpret_cast<volatile uint32_t*>(kMmioAddress);
  *reg = 0x11223344;
  const uint32_t v = *reg;
  GUEST_ASSERT_EQ(0x55667788u, v);
  GUEST_DONE();
}

void guest_hlt() {
  hlt();
  GUEST_DONE();
}

}  // namespace guest_suite
