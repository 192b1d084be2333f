// Guest code of the dirty_log suite: runs inside the VM.
#include "dirty_log_guest.hpp"

#include "kvmx/guest/guest.h"

namespace dirty_log_suite {

volatile uint64_t g_stride = 0;
volatile uint64_t g_offset = 0;
volatile uint64_t g_iteration = 0;
volatile uint64_t g_stop = 0;
volatile uint64_t g_writes = 0;

void guest_write_selected(uint64_t base, uint64_t npages) {
  for (uint64_t round = 1;; ++round) {
    const uint64_t stride = g_stride, offset = g_offset;
    if (stride == 0) break;
    for (uint64_t i = offset; i < npages; i += stride) {
      auto* page = reinterpret_cast<volatile uint64_t*>(base + i * 4096);
      page[i % 512] = selected_value(i, round);
    }
    GUEST_SYNC(1, round);
  }
  GUEST_DONE();
}

void guest_write_random(uint64_t base, uint64_t npages, uint64_t seed) {
  uint64_t x = seed | 1;
  uint64_t writes = 0;
  while (!g_stop) {
    // xorshift64: cheap, no library, covers every page over time.
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    auto* page = reinterpret_cast<volatile uint64_t*>(base + (x % npages) * 4096);
    *page = g_iteration;
    g_writes = ++writes;
    // CPUID exits to the hypervisor (not to userspace): a one-CPU Bochs test host needs such
    // exits to run the harvesting thread while the guest spins.
    uint32_t a = 0, b, c = 0, d;
    asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");
  }
  GUEST_DONE();
}

}  // namespace dirty_log_suite
