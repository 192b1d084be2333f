// Entry points of kvmx-bench's guest workloads (guest/workloads_guest.cpp), for the host to start
// vCPUs at and to install as exception handlers.
#pragma once

#include "kvmx/bench/guest_abi.h"
#include "kvmx/guest/abi.h"

extern "C" {
void bench_guest_cpuid(const kvmx::bench::ExitParams* p);
void bench_guest_pio(const kvmx::bench::ExitParams* p);
void bench_guest_mmio(const kvmx::bench::ExitParams* p);
void bench_guest_hlt(const kvmx::bench::ExitParams* p);
void bench_guest_wake_handler(kvmx::guest::ExceptionFrame* frame);
void bench_guest_touch(const kvmx::bench::TouchParams* p);
void bench_guest_random(const kvmx::bench::RandomParams* p);
void bench_guest_churn(const kvmx::bench::ChurnParams* p);
void bench_guest_cr3(const kvmx::bench::Cr3Params* p);
void bench_guest_cow_handler(kvmx::guest::ExceptionFrame* frame);
void bench_guest_fork(kvmx::bench::ForkParams* p);
}
