// Guest entry points and constants of the exits suite, shared by host and guest code.
#pragma once

#include <stdint.h>

namespace exits_suite {

inline constexpr uint16_t kPort = 0x3f0;
inline constexpr uint64_t kMmio = 0x20000000;       // no memslot: every access exits
inline constexpr uint64_t kReadOnly = 0x30000000;   // a KVM_MEM_READONLY slot
inline constexpr uint64_t kLoadInit = 0x1111111111111111ull;  // the register before each load

void guest_pio_out();
void guest_pio_in();
void guest_rep_outs(const void* buffer, uint64_t count, uint64_t size);
void guest_rep_ins(void* buffer, uint64_t count, uint64_t size);
void guest_mmio_loads();
void guest_mmio_stores();
void guest_mmio_movs();
void guest_rep_movs(uint64_t src, uint64_t dst, uint64_t count, uint64_t size, uint64_t backwards);
void guest_hlt();
void guest_triple_fault();
void guest_read_only(volatile uint64_t* p);

}  // namespace exits_suite

extern "C" const char exits_after_hlt[];
