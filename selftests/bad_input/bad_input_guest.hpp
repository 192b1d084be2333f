// Guest entry points of the bad_input suite (defined in bad_input_guest.cpp, built freestanding).
#pragma once

#include <stdint.h>

namespace bad_input_suite {

extern volatile uint64_t g_stop;   // set by the host: the guest reports DONE
extern volatile uint64_t g_spins;  // progress, for the host to see the guest ran

// Spin until g_stop (with a CPUID exit per iteration). Any earlier register state of this loop is a valid state to resume from,
// so a racing KVM_SET_REGS of a stale snapshot cannot derail it.
void guest_spin();
// SYNC 1, then HLT forever; each HLT that returns reports SYNC 2.
void guest_halt();
// Until g_stop: read and write one word of each of `npages` pages at `base`.
void guest_touch_pages(uint64_t base, uint64_t npages);

}  // namespace bad_input_suite
