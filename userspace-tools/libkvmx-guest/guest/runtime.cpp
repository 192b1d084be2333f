// Guest runtime: the ucall port write and the exception dispatcher. Freestanding (see
// kvmx_guest_sources in CMakeLists.txt): runs inside the VM, calls nothing from the host.
#include "kvmx/guest/guest.h"

namespace kvmx::guest {

void send_ucall(Ucall* uc) {
  const uint32_t address = static_cast<uint32_t>(reinterpret_cast<uint64_t>(uc));
  asm volatile("outl %0, %w1" ::"a"(address), "Nd"(kUcallPort) : "memory");
}

}  // namespace kvmx::guest

using kvmx::guest::ExceptionFrame;
using kvmx::guest::ExceptionHandler;
using kvmx::guest::UcallKind;

extern "C" {

ExceptionHandler kvmx_guest_exception_handlers[256];

// Called by the common exception stub in entry.S with the saved frame.
void kvmx_guest_exception(ExceptionFrame* frame) {
  const ExceptionHandler handler = kvmx_guest_exception_handlers[frame->vector & 0xff];
  if (handler) {
    handler(frame);
    return;
  }
  kvmx::guest::ucall_final(UcallKind::exception, __FILE__, __LINE__, nullptr, nullptr, 0, frame->vector,
                           frame->error_code, frame->rip, kvmx::guest::read_cr2());
}

// The guest entry function returned (entry.S, kvmx_guest_return).
[[noreturn]] void kvmx_guest_returned() {
  kvmx::guest::ucall_final(UcallKind::done, __FILE__, __LINE__, "the entry function returned", nullptr, 0);
}

}  // extern "C"
