// Guest code of the events suite: runs inside the VM.
#include "events_guest.hpp"

#include "kvmx/guest/guest.h"

namespace events_suite {

using namespace kvmx::guest;

volatile uint64_t g_vector, g_error_code, g_rip, g_count;

void record_event(ExceptionFrame* frame) {
  g_vector = frame->vector;
  g_error_code = frame->error_code;
  g_rip = frame->rip;
  g_count = g_count + 1;
}

// Wait a bounded time for an event, so that a lost one fails the test instead of hanging it.
static void wait_for_event() {
  for (uint64_t i = 0; i < 10000000 && g_count == 0; ++i) asm volatile("pause" ::: "memory");
}

// Stage 1 runs with IF clear; then STI opens the interrupt window.
void guest_irq_window() {
  GUEST_SYNC(1);
  asm volatile("sti; nop" ::: "memory");
  wait_for_event();
  asm volatile("cli" ::: "memory");
  GUEST_SYNC(2, g_vector, g_count);
  GUEST_DONE();
}

void guest_wait_event() {
  wait_for_event();
  GUEST_SYNC(1, g_vector, g_count);
  GUEST_DONE();
}

// For an event injected before the first instruction: the handler has already run.
void guest_report_event() {
  GUEST_SYNC(1, g_vector, g_error_code, g_rip, g_count);
  GUEST_DONE();
}

}  // namespace events_suite
