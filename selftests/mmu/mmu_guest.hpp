// What the host and the guest code of the mmu suite share: the address-space layout, the access
// cases the host writes into guest memory and the results the guest writes back, and the guest
// entry points (mmu_guest.cpp, mmu_guest.S; built freestanding).
#pragma once

#include <stdint.h>

#include "kvmx/guest/abi.h"

namespace mmu_suite {

// Linear addresses outside the framework's identity map (PML4 slot 0), each in its own PML4 slot so
// that a test's walk shares no paging-structure entry with anything else the guest touches.
inline constexpr uint64_t kVaTest = 1ull << 39;                     // PML4[1]: 4 KiB and 2 MiB tests
inline constexpr uint64_t kVaTest2m = kVaTest + (1ull << 30);       //   PDPT[1]: the 2 MiB page
inline constexpr uint64_t kVaUser = 2ull << 39;                     // PML4[2]: ring-3 code and stack
inline constexpr uint64_t kVaTest1g = 3ull << 39;                   // PML4[3]: the 1 GiB page
inline constexpr uint64_t kVaChurn = 4ull << 39;                    // PML4[4]: page-table churn
inline constexpr uint64_t kVaIdt = 5ull << 39;                      // PML4[5]: nested-fault IDTs

// Selectors the suite adds to the framework's GDT for ring 3 (RPL 3).
inline constexpr uint16_t kUserData = 0x28 | 3;
inline constexpr uint16_t kUserCode = 0x30 | 3;
inline constexpr uint8_t kReturnVector = 0x80;  // INT 0x80 (a DPL-3 gate) returns from ring 3

// What every accessed location holds: a fetch runs `jmp *%rcx` at offset 0 (back to the caller,
// which put its resume address in RCX); reads and writes use the quadword at offset 8, which holds
// kMarker, and writes store kMarker again.
inline constexpr uint64_t kDataOffset = 8;
inline constexpr uint64_t kMarker = 0x5a5a'1234'c0de'a5a5ull;
inline constexpr uint8_t kFetchCode[] = {0xff, 0xe1};  // jmp *%rcx

enum Op : uint8_t { kRead, kWrite, kFetch };

// CPU configuration bits of a case.
inline constexpr uint8_t kCpuWp = 1 << 0;    // CR0.WP
inline constexpr uint8_t kCpuSmep = 1 << 1;  // CR4.SMEP
inline constexpr uint8_t kCpuSmap = 1 << 2;  // CR4.SMAP
inline constexpr uint8_t kCpuNxe = 1 << 3;   // EFER.NXE

inline constexpr int kMaxLevels = 4;

// One access: the guest sets the CPU configuration, writes entry[i] at entry_gpa[i] (the paging
// entries of va's walk, top level first), INVLPGs va, makes the access and records the result.
struct AccessCase {
  uint64_t va;
  uint64_t entry_gpa[kMaxLevels];
  uint64_t entry[kMaxLevels];
  uint32_t nentries;
  uint8_t op;    // Op
  uint8_t user;  // 1: from ring 3
  uint8_t ac;    // RFLAGS.AC for a supervisor access
  uint8_t cpu;   // kCpu* bits
};

struct AccessResult {
  uint64_t faulted;  // number of #PFs the access raised (0 or 1)
  uint64_t error_code;
  uint64_t cr2;
  uint64_t value;                  // what a read returned
  uint64_t entry[kMaxLevels];      // the entries after the access
};

// What the host writes into quadword i of churn page number `page`.
constexpr uint64_t page_tag(uint64_t page, uint64_t i) { return (page << 32) ^ i ^ 0x7a6b'0000'0000'0000ull; }

// Ring 3: the stub (mmu_user_stub .. mmu_user_stub_end) is copied by the host to kVaUser, its stack
// is the page above.
inline constexpr uint64_t kUserStack = kVaUser + 0x2000;

}  // namespace mmu_suite

extern "C" {
// mmu_guest.S
extern const char mmu_user_stub[], mmu_user_stub_resume[], mmu_user_stub_end[];
}

namespace mmu_suite {

void guest_access_cases(const AccessCase* cases, uint64_t count, AccessResult* results);
void on_page_fault(kvmx::guest::ExceptionFrame* frame);
void on_return_from_user(kvmx::guest::ExceptionFrame* frame);

// Page-table churn (churn_test.cpp). Churn pages hold page_tag(page, i) in quadword i.
void guest_remap(uint64_t* pte, uint64_t va, const uint64_t* pages, uint64_t npages, uint64_t rounds,
                 uint64_t flush);
void guest_remap_without_flush(uint64_t* pte, uint64_t va, const uint64_t* pages, uint64_t npages);
void guest_present_toggle(uint64_t* pte, uint64_t va, uint64_t page, uint64_t rounds);
void guest_cr3_switch(const uint64_t* cr3s, uint64_t count, uint64_t va, uint64_t rounds);
void guest_large_page_split(uint64_t* pde, uint64_t va, uint64_t large_entry, uint64_t table_entry,
                            uint64_t rounds);
void guest_self_map(volatile uint64_t* pt_alias, uint64_t va, const uint64_t* pages, uint64_t npages);

}  // namespace mmu_suite
