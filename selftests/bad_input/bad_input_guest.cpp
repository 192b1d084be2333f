// Guest code of the bad_input suite: runs inside the VM.
#include "bad_input_guest.hpp"

#include "kvmx/guest/guest.h"

namespace bad_input_suite {

volatile uint64_t g_stop = 0;
volatile uint64_t g_spins = 0;

// CPUID always exits to the hypervisor, which handles it without leaving KVM_RUN. One exit per
// iteration keeps the guest "spinning in KVM_RUN" for userspace while giving the host a VM exit
// to take its own interrupts at: a one-CPU Bochs test host under KVM/VMX otherwise never got to
// run another thread while the guest spun without exits.
static inline void exit_to_hypervisor() {
  uint32_t a = 0, b, c = 0, d;
  asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");
}

void guest_spin() {
  while (!g_stop) {
    g_spins = g_spins + 1;
    exit_to_hypervisor();
  }
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
    exit_to_hypervisor();
  }
  GUEST_DONE();
}

}  // namespace bad_input_suite
