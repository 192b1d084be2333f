// Guest code of the mmu suite: the access-case runner and the page-table churn workloads. Each
// runs many accesses inside the guest and reports once (a VM exit is expensive under nested
// virtualization), leaving judgement to the host where it can.
#include "mmu_guest.hpp"

#include <initializer_list>

#include "kvmx/guest/guest.h"
#include "kvmx/guest/x86.h"

extern "C" {
uint64_t mmu_kernel_access(uint64_t op, uint64_t va, uint64_t value, uint64_t rflags_or);
uint64_t mmu_enter_user(uint64_t op, uint64_t va, uint64_t value, uint64_t rip, uint64_t rsp);
extern const char mmu_kernel_resume[], mmu_user_return[];
extern uint64_t mmu_kernel_rsp;
}

namespace mmu_suite {
namespace {

using namespace kvmx::x86;
using kvmx::guest::ExceptionFrame;

// Where the #PF handler resumes: set just before an access that may fault, 0 otherwise (an
// unexpected #PF then fails the test with its details).
volatile uint64_t g_resume_rip;
volatile uint64_t g_faults, g_error_code, g_cr2;

inline void invlpg(uint64_t va) { asm volatile("invlpg (%0)" ::"r"(va) : "memory"); }
inline void write_cr0(uint64_t v) { asm volatile("mov %0, %%cr0" ::"r"(v) : "memory"); }
inline void write_cr3(uint64_t v) { asm volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }
inline void write_cr4(uint64_t v) { asm volatile("mov %0, %%cr4" ::"r"(v) : "memory"); }

inline uint64_t update(uint64_t value, uint64_t bit, bool on) { return on ? value | bit : value & ~bit; }

void apply_cpu(uint8_t cpu) {
  using kvmx::guest::read_cr0;
  using kvmx::guest::read_cr4;
  const uint64_t cr0 = read_cr0(), cr4 = read_cr4(), efer = kvmx::guest::rdmsr(kMsrEfer);
  const uint64_t new_cr0 = update(cr0, kCr0Wp, cpu & kCpuWp);
  const uint64_t new_cr4 = update(update(cr4, kCr4Smep, cpu & kCpuSmep), kCr4Smap, cpu & kCpuSmap);
  const uint64_t new_efer = update(efer, kEferNxe, cpu & kCpuNxe);
  if (new_cr0 != cr0) write_cr0(new_cr0);
  if (new_cr4 != cr4) write_cr4(new_cr4);
  if (new_efer != efer) kvmx::guest::wrmsr(kMsrEfer, new_efer);
}

struct Access {
  bool faulted;
  uint64_t value;
};

// A supervisor access (op of mmu_guest.hpp) that may fault.
Access kernel_access(uint8_t op, uint64_t va, bool ac = false) {
  g_faults = 0;
  g_resume_rip = reinterpret_cast<uint64_t>(mmu_kernel_resume);
  const uint64_t value = mmu_kernel_access(op, va, kMarker, ac ? kRflagsAc : 0);
  g_resume_rip = 0;
  return {g_faults != 0, value};
}

Access user_access(uint8_t op, uint64_t va) {
  const auto stub_offset = [](const char* label) { return static_cast<uint64_t>(label - mmu_user_stub); };
  g_faults = 0;
  g_resume_rip = kVaUser + stub_offset(mmu_user_stub_resume);
  const uint64_t value = mmu_enter_user(op, va, kMarker, kVaUser, kUserStack);
  g_resume_rip = 0;
  return {g_faults != 0, value};
}

uint64_t read64(uint64_t va) {
  const Access a = kernel_access(kRead, va);
  GUEST_ASSERT(!a.faulted, va, g_error_code, g_cr2);
  return a.value;
}

inline uint64_t tag(uint64_t page, uint64_t i) { return page_tag(page, i); }

void expect_page(uint64_t va, uint64_t page) {
  // First, middle and last quadword: enough to tell pages apart and to cover the whole frame.
  for (uint64_t i : {0ul, 255ul, 511ul}) {
    GUEST_ASSERT_EQ(tag(page, i), read64(va + 8 * i));
  }
}

}  // namespace

void on_page_fault(ExceptionFrame* frame) {
  const uint64_t cr2 = kvmx::guest::read_cr2();
  GUEST_ASSERT(g_resume_rip != 0, frame->rip, frame->error_code, cr2);
  g_faults = g_faults + 1;
  g_error_code = frame->error_code;
  g_cr2 = cr2;
  frame->rip = g_resume_rip;
}

void on_return_from_user(ExceptionFrame* frame) {
  frame->rip = reinterpret_cast<uint64_t>(mmu_user_return);
  frame->cs = 0x08;  // the framework's code and data selectors
  frame->ss = 0x10;
  frame->rsp = mmu_kernel_rsp;
  frame->rflags = kRflagsFixed;
}

void guest_access_cases(const AccessCase* cases, uint64_t count, AccessResult* results) {
  int current_cpu = -1;
  for (uint64_t n = 0; n < count; ++n) {
    const AccessCase& c = cases[n];
    if (c.cpu != current_cpu) {
      apply_cpu(c.cpu);
      current_cpu = c.cpu;
    }
    auto* entries = reinterpret_cast<volatile uint64_t* const*>(c.entry_gpa);
    for (uint32_t i = 0; i < c.nentries; ++i) *entries[i] = c.entry[i];
    invlpg(c.va);

    const Access a = c.user ? user_access(c.op, c.va) : kernel_access(c.op, c.va, c.ac);
    AccessResult& r = results[n];
    r.faulted = g_faults;
    r.error_code = a.faulted ? g_error_code : 0;
    r.cr2 = a.faulted ? g_cr2 : 0;
    r.value = a.value;
    for (uint32_t i = 0; i < c.nentries; ++i) r.entry[i] = *entries[i];
  }
  apply_cpu(kCpuWp);  // as the framework starts
}

// Point `pte` (mapping `va`) at each page in turn, flushing with INVLPG (flush 0) or a CR3 reload
// (flush 1), and check that `va` reads the new page every time; then write the round number
// into the page's second quadword through `va`.
void guest_remap(uint64_t* pte, uint64_t va, const uint64_t* pages, uint64_t npages, uint64_t rounds,
                 uint64_t flush) {
  volatile uint64_t* entry = pte;
  for (uint64_t r = 0; r < rounds; ++r) {
    for (uint64_t p = 0; p < npages; ++p) {
      *entry = pages[p] | kPtePresent | kPteWritable;
      if (flush == 0) {
        invlpg(va);
      } else {
        write_cr3(kvmx::guest::read_cr3());
      }
      expect_page(va, p);
      *reinterpret_cast<volatile uint64_t*>(va + 8 * 256) = tag(p, 256) + r + 1;
    }
  }
}

// Change the mapping of `va` from page p to page p + 1 without a flush: the architecture allows
// either translation until the INVLPG, and only the new one after it.
void guest_remap_without_flush(uint64_t* pte, uint64_t va, const uint64_t* pages, uint64_t npages) {
  volatile uint64_t* entry = pte;
  *entry = pages[0] | kPtePresent | kPteWritable;
  invlpg(va);
  expect_page(va, 0);
  for (uint64_t p = 1; p < npages; ++p) {
    *entry = pages[p] | kPtePresent | kPteWritable;
    const uint64_t seen = read64(va);
    GUEST_ASSERT(seen == tag(p - 1, 0) || seen == tag(p, 0), p, seen);
    invlpg(va);
    expect_page(va, p);
  }
}

// Unmap `va` (with INVLPG): every access faults with P = 0 and CR2 = va. Map it again without a
// flush: a not-present entry is never cached, so the next access must succeed.
void guest_present_toggle(uint64_t* pte, uint64_t va, uint64_t page, uint64_t rounds) {
  volatile uint64_t* entry = pte;
  for (uint64_t r = 0; r < rounds; ++r) {
    *entry = 0;
    invlpg(va);
    for (uint8_t op : {kRead, kWrite}) {
      GUEST_ASSERT(kernel_access(op, va + 8).faulted, r, op);
      GUEST_ASSERT_EQ(uint64_t{op == kWrite ? kPfWrite : 0u}, g_error_code);
      GUEST_ASSERT_EQ(va + 8, g_cr2);
    }
    *entry = page | kPtePresent | kPteWritable;
    expect_page(va, 0);
  }
}

// Switch CR3 among `count` address spaces that map `va` to different pages; in each, check the
// page and count the visit in its quadword 1 (the host checks the counts).
void guest_cr3_switch(const uint64_t* cr3s, uint64_t count, uint64_t va, uint64_t rounds) {
  const uint64_t original = kvmx::guest::read_cr3();
  for (uint64_t r = 0; r < rounds; ++r) {
    for (uint64_t i = 0; i < count; ++i) {
      write_cr3(cr3s[i]);
      GUEST_ASSERT_EQ(tag(i, 0), read64(va));
      GUEST_ASSERT_EQ(tag(i, 511), read64(va + 8 * 511));
      auto* visits = reinterpret_cast<volatile uint64_t*>(va + 8);
      GUEST_ASSERT_EQ(r, *visits);
      *visits = r + 1;
    }
  }
  write_cr3(original);
}

// Flip the PDE of the 2 MiB region at `va` between a 2 MiB page (`large_entry`) and a page table
// (`table_entry`) that maps its 4 KiB frames in reverse order, reloading CR3 after each change.
void guest_large_page_split(uint64_t* pde, uint64_t va, uint64_t large_entry, uint64_t table_entry,
                            uint64_t rounds) {
  volatile uint64_t* entry = pde;
  for (uint64_t r = 0; r < rounds; ++r) {
    for (bool split : {false, true}) {
      *entry = split ? table_entry : large_entry;
      write_cr3(kvmx::guest::read_cr3());
      for (uint64_t page : {0ul, 1ul, 2ul, 100ul, 255ul, 256ul, 510ul, 511ul}) {
        const uint64_t frame = split ? 511 - page : page;
        GUEST_ASSERT_EQ(tag(frame, 0), read64(va + page * 4096));
        GUEST_ASSERT_EQ(tag(frame, 511), read64(va + page * 4096 + 8 * 511));
      }
    }
  }
}

// The page table that maps `va` also maps itself at `pt_alias`: edit the entry of `va` through
// that alias (a write to a live page table through a mapping other than the identity map), then
// read through `va`, and check the walk's accessed/dirty updates through the alias as well.
void guest_self_map(volatile uint64_t* pt_alias, uint64_t va, const uint64_t* pages, uint64_t npages) {
  const uint64_t index = (va >> 12) & 511;
  for (uint64_t p = 0; p < npages; ++p) {
    pt_alias[index] = pages[p] | kPtePresent | kPteWritable;
    invlpg(va);
    expect_page(va, p);
    GUEST_ASSERT_EQ(pages[p] | kPtePresent | kPteWritable | kPteAccessed, pt_alias[index]);
    *reinterpret_cast<volatile uint64_t*>(va + 8) = tag(p, 1) + 1;
    GUEST_ASSERT_EQ(pages[p] | kPtePresent | kPteWritable | kPteAccessed | kPteDirty, pt_alias[index]);
    // The same frame through the identity map.
    GUEST_ASSERT_EQ(tag(p, 1) + 1, *reinterpret_cast<volatile uint64_t*>(pages[p] + 8));
  }
}

}  // namespace mmu_suite
