// Guest entry points of the vm suite (defined in vm_guest.cpp, built freestanding).
#pragma once

#include <stdint.h>

namespace vm_suite {

// SYNC 1 with the sum of src[0..n); then dst[i] = fill_pattern(i); SYNC 2.
void guest_sum_then_fill(const volatile uint64_t* src, volatile uint64_t* dst, uint64_t n);
// SYNC 1 with *p; then *p = value; SYNC 2 with *p.
void guest_read_then_write(volatile uint64_t* p, uint64_t value);

constexpr uint64_t fill_pattern(uint64_t i) { return 0x9e3779b97f4a7c15ull * (i + 1); }

}  // namespace vm_suite
