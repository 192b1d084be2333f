// Guest entry points of the dirty_log suite (defined in dirty_log_guest.cpp, built freestanding).
#pragma once

#include <stdint.h>

namespace dirty_log_suite {

// Set by the host while the guest runs (the guest reads them on every use).
extern volatile uint64_t g_stride;     // guest_write_selected: 0 ends the guest
extern volatile uint64_t g_offset;
extern volatile uint64_t g_iteration;  // guest_write_random: the value written
extern volatile uint64_t g_stop;       // guest_write_random: nonzero ends the guest
extern volatile uint64_t g_writes;     // guest_write_random: how many writes the guest made

// Until g_stride is 0: write a word in every page i of [base, base + npages pages) with
// i % g_stride == g_offset, then SYNC 1. Touches no other page of the range.
void guest_write_selected(uint64_t base, uint64_t npages);
// Until g_stop: write g_iteration to the first word of pseudo-random pages of the range.
void guest_write_random(uint64_t base, uint64_t npages, uint64_t seed);

// The word guest_write_selected writes into page i (at word i % 512 of the page).
constexpr uint64_t selected_value(uint64_t i, uint64_t round) { return (round << 32) | (i + 1); }

}  // namespace dirty_log_suite
