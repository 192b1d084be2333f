// C++ guest code of the modes suite (64-bit mode): runs inside the VM.
#include "kvmx/guest/guest.h"
#include "kvmx/guest/x86.h"

namespace modes_suite {

using namespace kvmx::guest;

// Report what 64-bit mode looks like from inside, then write through `alias`, a virtual address
// above 4 GiB that the host mapped onto ordinary guest memory.
void guest_long_mode(volatile uint64_t* alias) {
  uint16_t cs;
  asm volatile("mov %%cs, %0" : "=r"(cs));
  GUEST_SYNC(1, read_cr0(), read_cr4(), rdmsr(kvmx::x86::kMsrEfer), cs);
  *alias = 0x0123456789abcdefull;
  GUEST_SYNC(2, *alias);
  GUEST_DONE();
}

}  // namespace modes_suite
