// Guest code of the bad_input suite: runs inside the VM.
#include "bad_input_guest.hpp"

#include "kvmx/guest/guest.h"

namespace bad_input_suite {

volatile uint64_t g_stop = 0;
volatile uint64_t g_spins = 0;

void guest_spin() {
  while (!g_stop) g_spins = g_spins + 1;
  GUEST_DONE();
}

void guest_halt() {
  GUEST_SYNC(1);
  for (;;) {
    asm volatile("hlt" ::: "memory");
    GUEST_SYNC(2);
  }
}

void guest_touch_pages(uint64_t base, uint64_t npages) {
  while (!g_stop) {
    for (uint64_t i = 0; i < npages; ++i) {
      auto* p = reinterpret_cast<volatile uint64_t*>(base + i * 4096);
      *p = *p + 1;
    }
    g_spins = g_spins + 1;
  }
  GUEST_DONE();
}

}  // namespace bad_input_suite
