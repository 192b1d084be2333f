// Guest entry points of the guest suite (defined in guest_code.cpp, built freestanding).
#pragma once

#include <stdint.h>

#include "kvmx/guest/abi.h"

namespace guest_suite {

inline constexpr uint16_t kPortOut = 0x80;
inline constexpr uint16_t kPortIn = 0x81;
inline constexpr uint64_t kMmioAddress = 0xd0000000;  // mapped in the page tables, no memslot

extern volatile uint64_t g_value_from_host;
extern volatile uint64_t g_ud_count;

void guest_done();
void guest_returns();
void guest_sync_stages();
void guest_args(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, uint64_t f);
void guest_long_mode_state();
void guest_assert_eq(uint64_t actual);
void guest_assert_values(uint64_t x, uint64_t y);
void guest_reads_global();
void guest_writes_memory(uint64_t* p, uint64_t n);
void guest_null_dereference();
void guest_ud_then_sync();
void skip_ud2(kvmx::guest::ExceptionFrame* frame);
void guest_port_io();
void guest_mmio();
void guest_hlt();

}  // namespace guest_suite
