// Guest entry points and globals of the events suite, shared by host and guest code.
#pragma once

#include <stdint.h>

#include "kvmx/guest/abi.h"

namespace events_suite {

// What record_event saw last: vector, error code, interrupted RIP, and how many events came.
extern volatile uint64_t g_vector, g_error_code, g_rip, g_count;

void record_event(kvmx::guest::ExceptionFrame* frame);
void guest_irq_window();
void guest_wait_event();
void guest_report_event();

}  // namespace events_suite
