// Guest entry points and globals of the regs suite, shared by host and guest code.
#pragma once

#include <stdint.h>

namespace regs_suite {

// RAX..R15 in kvm_regs order, then RFLAGS, as regs_guest_report_gprs saw them at entry.
extern volatile uint64_t g_gprs[17];
inline constexpr uint32_t kCpuidLeaf = 0x40000000;
inline constexpr uint64_t kGuestXmm1 = 0x1122334455667788ull;  // guest_xmm loads it into XMM1
inline constexpr uint32_t kGuestMxcsr = 0x1f80 | 0x2000;       // and this MXCSR (round down)

void guest_rdmsrs(uint32_t a, uint32_t b, uint32_t c);
void guest_wrmsr(uint32_t index, uint64_t value);
void guest_rdtsc();
void guest_read_efer();
void guest_xmm();
void guest_cpuid(uint32_t leaf);

}  // namespace regs_suite

extern "C" {
void regs_guest_report_gprs();  // saves every GPR and RFLAGS to g_gprs, then reports SYNC 1
void regs_guest_load_gprs();    // loads RAX..R15 with 0x1000 * (index + 1) + 0xab, then HLT
}
