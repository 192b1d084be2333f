// Guest code of the vm suite: runs inside the VM.
#include "vm_guest.hpp"

#include "kvmx/guest/guest.h"

namespace vm_suite {

void guest_sum_then_fill(const volatile uint64_t* src, volatile uint64_t* dst, uint64_t n) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; ++i) sum += src[i];
  GUEST_SYNC(1, sum);
  for (uint64_t i = 0; i < n; ++i) dst[i] = fill_pattern(i);
  GUEST_SYNC(2);
  GUEST_DONE();
}

void guest_read_then_write(volatile uint64_t* p, uint64_t value) {
  GUEST_SYNC(1, *p);
  *p = value;
  GUEST_SYNC(2, *p);
  GUEST_DONE();
}

}  // namespace vm_suite
