// kvmx-bench's guest side: each workload sets up, reports kStageStart, does the timed work,
// reports kStageEnd with what it computed, and returns. Freestanding (kvmx_add_guest_code):
// runs inside the VM and calls nothing from the host.
#include "kvmx/bench/guest_abi.h"
#include "kvmx/bench/guest_entry.h"
#include "kvmx/guest/guest.h"
#include "kvmx/guest/x86.h"

using namespace kvmx::bench;
namespace x86 = kvmx::x86;

namespace {

constexpr uint64_t kPage = 4096;

inline void write_cr3(uint64_t v) { asm volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }
inline void invlpg(uint64_t va) { asm volatile("invlpg (%0)" ::"r"(va) : "memory"); }
inline uint64_t load(uint64_t va) { return *reinterpret_cast<volatile uint64_t*>(va); }
inline void store(uint64_t va, uint64_t v) { *reinterpret_cast<volatile uint64_t*>(va) = v; }
inline uint64_t* table(uint64_t gpa) { return reinterpret_cast<uint64_t*>(gpa); }

struct Regs {
  uint32_t a, b, c, d;
};
inline Regs cpuid(uint32_t leaf) {
  Regs r;
  asm volatile("cpuid" : "=a"(r.a), "=b"(r.b), "=c"(r.c), "=d"(r.d) : "a"(leaf), "c"(0));
  return r;
}

volatile uint64_t g_wakeups;
ForkParams* volatile g_fork;
volatile uint64_t g_cow_faults;

}  // namespace

extern "C" {

void bench_guest_cpuid(const ExitParams* p) {
  const Regs first = cpuid(0);
  for (uint64_t i = 0; i < p->warmup; ++i) cpuid(0);
  GUEST_SYNC(kStageStart);
  uint64_t mismatches = 0;
  for (uint64_t i = 0; i < p->iterations; ++i) {
    const Regs r = cpuid(0);
    mismatches += (r.a != first.a) | (r.b != first.b) | (r.c != first.c) | (r.d != first.d);
  }
  GUEST_SYNC(kStageEnd, mismatches, first.a, first.b, first.c, first.d);
}

void bench_guest_pio(const ExitParams* p) {
  for (uint64_t i = 0; i < p->warmup; ++i) kvmx::guest::inl(kPioPort);
  GUEST_SYNC(kStageStart);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < p->iterations; ++i) sum += kvmx::guest::inl(kPioPort);
  GUEST_SYNC(kStageEnd, sum);
}

void bench_guest_mmio(const ExitParams* p) {
  const auto* reg = reinterpret_cast<volatile uint32_t*>(p->mmio_gva);
  for (uint64_t i = 0; i < p->warmup; ++i) (void)*reg;
  GUEST_SYNC(kStageStart);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < p->iterations; ++i) sum += *reg;
  GUEST_SYNC(kStageEnd, sum);
}

void bench_guest_wake_handler(kvmx::guest::ExceptionFrame*) { g_wakeups = g_wakeups + 1; }

void bench_guest_hlt(const ExitParams* p) {
  const uint64_t total = p->warmup + p->iterations;
  for (uint64_t i = 0; i < total; ++i) {
    if (i == p->warmup) GUEST_SYNC(kStageStart);
    // STI's shadow covers HLT: the interrupt can only arrive once the vCPU has halted.
    asm volatile("sti; hlt; cli" ::: "memory");
    GUEST_ASSERT_EQ(i + 1, g_wakeups);
  }
  GUEST_SYNC(kStageEnd, g_wakeups - p->warmup);
}

void bench_guest_touch(const TouchParams* p) {
  GUEST_SYNC(kStageStart);
  for (uint64_t i = 0; i < p->pages; ++i) store(p->base + i * kPage, kTag ^ i);
  GUEST_SYNC(kStageEnd, p->pages);
}

void bench_guest_random(const RandomParams* p) {
  // Warm-up: one read per 4 KiB page, so the timed part takes no first-touch faults.
  uint64_t warm = 0;
  for (uint64_t e = 0; e < p->elements; e += kPage / 8) warm += load(p->base + 8 * e);
  asm volatile("" ::"r"(warm));  // keep the loop
  GUEST_SYNC(kStageStart);
  uint64_t x = p->seed, sum = 0;
  for (uint64_t i = 0; i < p->reads; ++i) {
    const uint64_t v = load(p->base + 8 * walk_index(x, p->elements));
    sum += v;
    x = walk_next(x, v);
  }
  GUEST_SYNC(kStageEnd, sum, x);
}

void bench_guest_churn(const ChurnParams* p) {
  uint64_t* pt = table(p->pt);
  uint64_t warm = 0;  // fault the pool in first: the timed part measures page-table work only
  for (uint64_t j = 0; j < p->pool_pages; ++j) warm += load(p->pool + j * kPage);
  asm volatile("" ::"r"(warm));
  GUEST_SYNC(kStageStart);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < p->iterations; ++i) {
    const uint64_t slot = i % p->slots;
    const uint64_t page = p->pool + ((i * 13 + 7) % p->pool_pages) * kPage;
    const uint64_t va = kWindowChurn + slot * kPage;
    pt[slot] = page | x86::kPtePresent | x86::kPteWritable;  // map (or remap)
    invlpg(va);
    const uint64_t v = load(va);
    GUEST_ASSERT_EQ(kTag ^ page, v);
    sum += v;
    pt[slot] = 0;  // unmap
    invlpg(va);
  }
  GUEST_SYNC(kStageEnd, sum);
}

void bench_guest_cr3(const Cr3Params* p) {
  const uint64_t home = kvmx::guest::read_cr3();
  const auto* cr3s = reinterpret_cast<const uint64_t*>(p->pml4s);
  GUEST_SYNC(kStageStart);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < p->iterations; ++i) {
    const uint64_t space = i % p->spaces;
    write_cr3(cr3s[space]);
    const uint64_t v = load(kWindowCr3);
    GUEST_ASSERT_EQ(kTag ^ space, v);
    sum += v;
  }
  write_cr3(home);
  GUEST_SYNC(kStageEnd, sum);
}

// Write fault in the child's copy-on-write window: copy the page, map the copy writable.
void bench_guest_cow_handler(kvmx::guest::ExceptionFrame* frame) {
  ForkParams* p = g_fork;
  const uint64_t cr2 = kvmx::guest::read_cr2();
  const uint64_t index = (cr2 - kWindowFork) / kPage;
  const bool in_window = p && cr2 >= kWindowFork && index < p->pages && (frame->error_code & 3) == 3;
  uint64_t* child = in_window ? table(p->child_pt) : nullptr;
  if (!child || (child[index] & x86::kPteWritable)) {
    kvmx::guest::ucall_final(kvmx::guest::UcallKind::exception, __FILE__, __LINE__, nullptr, nullptr, 0,
                             frame->vector, frame->error_code, frame->rip, cr2);
  }
  const uint64_t copy = p->pool + g_cow_faults * kPage;
  const auto* from = reinterpret_cast<const uint64_t*>(child[index] & x86::kPteAddrMask);
  auto* to = reinterpret_cast<uint64_t*>(copy);
  for (uint64_t i = 0; i < kPage / 8; ++i) to[i] = from[i];
  child[index] = copy | x86::kPtePresent | x86::kPteWritable;
  invlpg(cr2);
  g_cow_faults = g_cow_faults + 1;
}

void bench_guest_fork(ForkParams* p) {
  uint64_t* parent = table(p->parent_pt);
  uint64_t* child = table(p->child_pt);
  const uint64_t home = kvmx::guest::read_cr3();
  g_fork = p;
  uint64_t warm = 0;  // fault both sides in first: the timed part measures fork and copy-on-write
  for (uint64_t i = 0; i < p->pages; ++i) warm += load(p->pool + i * kPage) + load(kWindowFork + i * kPage);
  asm volatile("" ::"r"(warm));
  GUEST_SYNC(kStageStart);
  // fork(): share every page read-only between parent and child, flush, run the child.
  for (uint64_t i = 0; i < p->pages; ++i) {
    const uint64_t pte = parent[i] & ~x86::kPteWritable;
    parent[i] = pte;
    child[i] = pte;
  }
  write_cr3(home);
  write_cr3(p->child_cr3);
  // The child writes every page: one copy-on-write fault each.
  for (uint64_t i = 0; i < p->pages; ++i) store(kWindowFork + i * kPage + 8, kChildTag ^ i);
  GUEST_SYNC(kStageEnd, g_cow_faults);
  // Check (untimed): the child sees the copied contents and its writes, the parent neither.
  uint64_t bad = 0;
  for (uint64_t i = 0; i < p->pages; ++i) {
    bad += load(kWindowFork + i * kPage) != (kTag ^ i);
    bad += load(kWindowFork + i * kPage + 8) != (kChildTag ^ i);
  }
  write_cr3(home);
  for (uint64_t i = 0; i < p->pages; ++i) {
    bad += load(kWindowFork + i * kPage) != (kTag ^ i);
    bad += load(kWindowFork + i * kPage + 8) != 0;
    bad += (parent[i] & x86::kPteWritable) != 0;
  }
  GUEST_ASSERT_EQ(0u, bad);
}

}  // extern "C"
