// The workloads' host side: build the VM and its page tables, run the guest, answer its exits,
// time the part between its kStageStart and kStageEnd reports, and check what it computed.
#include <linux/kvmx.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kvmx/bench/bench.hpp"
#include "kvmx/bench/guest_entry.h"
#include "kvmx/guest/x86.h"
#include "kvmx/test/guest_vm.hpp"

namespace kvmx::bench {
namespace {

using test::GuestOptions;
using test::GuestVm;
using test::HostUcall;
namespace x86 = kvmx::x86;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMiB = 1ull << 20;
// Room for this executable's image, the framework's tables, stacks and small allocations.
constexpr std::uint64_t kBaseMemory = 48 * kMiB;

// The guest computed something else than it should have: the workload fails.
class Wrong : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

void expect_eq(const char* what, std::uint64_t expected, std::uint64_t actual) {
  if (expected != actual) {
    throw Wrong(std::string(what) + ": expected " + hex(expected) + ", got " + hex(actual));
  }
}

std::string exit_name(std::uint32_t reason) {
  std::string name(exit_reason_name(reason));
  if (name.empty()) return "reason_" + std::to_string(reason);
  if (name.starts_with("KVM_EXIT_")) name = name.substr(9);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

GuestVm make_guest(const System& sys, const Target& target, std::uint64_t memory, bool huge_pages) {
  GuestOptions options;
  options.memory_size = memory;
  options.huge_pages = huge_pages;
  GuestVm g(sys, options);
  if (target.per_vm_mode) {
    g.vm().enable_cap(KVMX_CAP_MMU_MODE, target.per_vm_mode);
    expect_eq("the VM's MMU mode (KVMX_CAP_MMU_MODE on the VM fd)", target.per_vm_mode,
              static_cast<std::uint64_t>(g.vm().check_extension(KVMX_CAP_MMU_MODE)));
  }
  return g;
}

template <class T>
std::uint64_t put_params(GuestVm& g, const T& params) {
  const std::uint64_t at = g.alloc(sizeof(T), 16);
  std::memcpy(g.host_ptr(at, sizeof(T)), &params, sizeof(T));
  return at;
}

std::uint64_t& entry_at(GuestVm& g, std::uint64_t table, std::uint64_t index) {
  return *reinterpret_cast<std::uint64_t*>(g.host_ptr(table + 8 * index, 8));
}

// The table that entry `index` of `table` points to, allocated if the entry is empty.
std::uint64_t next_table(GuestVm& g, std::uint64_t table, std::uint64_t index) {
  std::uint64_t& e = entry_at(g, table, index);
  if (!(e & x86::kPtePresent)) e = g.alloc(kPageSize) | x86::kPtePresent | x86::kPteWritable;
  if (e & x86::kPteLarge) throw Wrong("a large page where a table was expected at " + hex(table));
  return e & x86::kPteAddrMask;
}

// The table at `level` (3 = PDPT, 2 = PD, 1 = PT) on the way to `gva` from `pml4`.
std::uint64_t table_for(GuestVm& g, std::uint64_t pml4, std::uint64_t gva, int level) {
  std::uint64_t t = pml4;
  for (int l = 4; l > level; --l) t = next_table(g, t, (gva >> (12 + 9 * (l - 1))) & 511);
  return t;
}

// A copy of the framework's PML4 (its identity map of guest memory), as a new address space.
std::uint64_t copy_pml4(GuestVm& g) {
  const std::uint64_t pml4 = g.alloc(kPageSize);
  std::memcpy(g.host_ptr(pml4, kPageSize), g.host_ptr(g.cr3(), kPageSize), kPageSize);
  return pml4;
}

struct Run {
  Rep rep;
  std::vector<std::uint64_t> end;  // values of the kStageEnd report
};

// Run the guest to its end. `on_exit(exit, timed)` answers every exit that is not a ucall and
// returns false for one it does not expect.
template <class OnExit>
Run drive(GuestVm& g, Vcpu& vcpu, OnExit&& on_exit) {
  Run r;
  bool timed = false, ended = false;
  Clock::time_point start{};
  for (;;) {
    const Exit e = vcpu.run();
    if (auto uc = g.decode_ucall(vcpu, e)) {
      const bool sync = uc->kind == guest::UcallKind::sync && !uc->values.empty();
      if (sync && uc->values[0] == kStageStart && !timed && !ended) {
        timed = true;
        start = Clock::now();
      } else if (sync && uc->values[0] == kStageEnd && timed) {
        r.rep.seconds = std::chrono::duration<double>(Clock::now() - start).count();
        r.end = uc->values;
        timed = false;
        ended = true;
      } else if (uc->kind == guest::UcallKind::done && ended) {
        return r;
      } else {
        // With the exits so far: the first thing to compare with what the guest saw.
        std::string exits;
        for (const auto& [name, count] : r.rep.exits) exits += " " + name + "=" + std::to_string(count);
        throw Wrong("the guest reported " + uc->describe() + "\n  userspace exits in the timed part so far:" +
                    (exits.empty() ? std::string(" none") : exits));
      }
      continue;
    }
    if (timed) ++r.rep.exits[exit_name(exit_reason(e))];
    if (!on_exit(e, timed)) throw Wrong("unexpected exit: " + describe(e));
  }
}

bool no_exits(const Exit&, bool) { return false; }

std::uint64_t exits_of(const Rep& rep, const std::string& name) {
  auto it = rep.exits.find(name);
  return it == rep.exits.end() ? 0 : it->second;
}

std::uint64_t end_value(const Run& r, std::size_t i) {
  if (r.end.size() <= i) throw Wrong("the guest's end report carries too few values");
  return r.end[i];
}

// ---------------------------------------------------------------- exit round trips

ExitParams exit_params(const Sizes& s) { return {s.exit_iterations, s.exit_warmup, kMmioGpa}; }

Rep cpuid_once(const System& sys, const Target& target, const Sizes& s, unsigned) {
  GuestVm g = make_guest(sys, target, kBaseMemory, false);
  Vcpu vcpu = g.add_vcpu(bench_guest_cpuid, {put_params(g, exit_params(s))});
  Run r = drive(g, vcpu, no_exits);
  expect_eq("CPUID results that differ from the first", 0, end_value(r, 1));
  // The vendor string is what the VMM set with KVM_SET_CPUID2 (the framework sets the supported list).
  if (sys.try_check_extension(KVM_CAP_EXT_CPUID).value_or(0) > 0) {
    const Cpuid cpuid = sys.supported_cpuid();
    if (const kvm_cpuid_entry2* leaf0 = cpuid.find(0)) {
      expect_eq("CPUID.0 EBX", leaf0->ebx, end_value(r, 3));
      expect_eq("CPUID.0 ECX", leaf0->ecx, end_value(r, 4));
      expect_eq("CPUID.0 EDX", leaf0->edx, end_value(r, 5));
    }
  }
  r.rep.iterations = s.exit_iterations;
  return r.rep;
}

// What the host answers to the n-th read.
std::uint32_t answer(std::uint64_t n) { return static_cast<std::uint32_t>((n * kMul) >> 32); }

Rep pio_once(const System& sys, const Target& target, const Sizes& s, unsigned rep) {
  GuestVm g = make_guest(sys, target, kBaseMemory, false);
  Vcpu vcpu = g.add_vcpu(bench_guest_pio, {put_params(g, exit_params(s))});
  std::uint64_t n = rep * 1000003ull, sum = 0;
  Run r = drive(g, vcpu, [&](const Exit& e, bool timed) {
    const auto* in = std::get_if<exit::IoIn>(&e);
    if (!in || in->port != kPioPort || in->size != 4 || in->count != 1) return false;
    const std::uint32_t v = answer(n++);
    in->set_value(v);
    if (timed) sum += v;
    return true;
  });
  expect_eq("sum of the values read from the port", sum, end_value(r, 1));
  expect_eq("port-I/O exits", s.exit_iterations, exits_of(r.rep, "io"));
  r.rep.iterations = s.exit_iterations;
  return r.rep;
}

Rep mmio_once(const System& sys, const Target& target, const Sizes& s, unsigned rep) {
  GuestVm g = make_guest(sys, target, kBaseMemory, false);
  g.map(kMmioGpa, kMmioGpa);
  Vcpu vcpu = g.add_vcpu(bench_guest_mmio, {put_params(g, exit_params(s))});
  std::uint64_t n = rep * 1000003ull, sum = 0;
  Run r = drive(g, vcpu, [&](const Exit& e, bool timed) {
    const auto* mmio = std::get_if<exit::Mmio>(&e);
    if (!mmio || mmio->addr != kMmioGpa || mmio->is_write || mmio->data.size() != 4) return false;
    const std::uint32_t v = answer(n++);
    mmio->set_value(v);
    if (timed) sum += v;
    return true;
  });
  expect_eq("sum of the values read from MMIO", sum, end_value(r, 1));
  expect_eq("MMIO exits", s.exit_iterations, exits_of(r.rep, "mmio"));
  r.rep.iterations = s.exit_iterations;
  return r.rep;
}

// HLT exits to userspace (no in-kernel irqchip); the host wakes the vCPU with KVM_INTERRUPT,
// which both KVM and kvmx deliver through the guest's IDT once interrupts are open.
Rep hlt_once(const System& sys, const Target& target, const Sizes& s, unsigned) {
  GuestVm g = make_guest(sys, target, kBaseMemory, false);
  g.set_exception_handler(kWakeVector, bench_guest_wake_handler);
  Vcpu vcpu = g.add_vcpu(bench_guest_hlt, {put_params(g, exit_params(s))});
  kvm_run& run = vcpu.run_struct();
  bool waiting = false;
  Run r = drive(g, vcpu, [&](const Exit& e, bool) {
    if (std::holds_alternative<exit::Hlt>(e) && !waiting) {
      if (run.ready_for_interrupt_injection) {
        vcpu.interrupt(kWakeVector);
      } else {
        waiting = true;
        run.request_interrupt_window = 1;
      }
      return true;
    }
    if (std::holds_alternative<exit::IrqWindowOpen>(e) && waiting) {
      waiting = false;
      run.request_interrupt_window = 0;
      vcpu.interrupt(kWakeVector);
      return true;
    }
    return false;
  });
  expect_eq("wake-ups the guest counted", s.exit_iterations, end_value(r, 1));
  expect_eq("HLT exits", s.exit_iterations, exits_of(r.rep, "hlt"));
  r.rep.iterations = s.exit_iterations;
  return r.rep;
}

// ---------------------------------------------------------------- memory

Rep touch_once(const System& sys, const Target& target, const Sizes& s, unsigned) {
  const std::uint64_t size = s.touch_mib * kMiB;
  GuestVm g = make_guest(sys, target, kBaseMemory + size + 2 * kMiB, false);
  const std::uint64_t base = g.alloc(size, 2 * kMiB);  // never touched by the host
  const TouchParams params{base, size / kPageSize};
  Vcpu vcpu = g.add_vcpu(bench_guest_touch, {put_params(g, params)});
  Run r = drive(g, vcpu, no_exits);
  expect_eq("pages the guest touched", params.pages, end_value(r, 1));
  for (std::uint64_t i = 0; i < params.pages; ++i) {
    std::uint64_t v;
    std::memcpy(&v, g.host_ptr(base + i * kPageSize, 8), 8);
    expect_eq("a touched page seen from the host", kTag ^ i, v);
  }
  r.rep.iterations = params.pages;
  return r.rep;
}

Rep random_once(const System& sys, const Target& target, const Sizes& s, unsigned rep, bool huge) {
  const std::uint64_t size = s.random_mib * kMiB;
  // Host memory is THP-backed in both variants: only the guest's page size differs.
  GuestVm g = make_guest(sys, target, kBaseMemory + size + 2 * kMiB, true);
  const std::uint64_t base = g.alloc(size, 2 * kMiB);
  const std::uint64_t elements = size / 8;
  auto* array = reinterpret_cast<std::uint64_t*>(g.host_ptr(base, size));
  for (std::uint64_t i = 0; i < elements; ++i) array[i] = i * kMul;
  std::uint64_t gva = base;  // the framework's identity map: 4 KiB pages
  if (huge) {
    gva = kWindow2M;
    for (std::uint64_t off = 0; off < size; off += 2 * kMiB) {
      const std::uint64_t pd = table_for(g, g.cr3(), kWindow2M + off, 2);
      entry_at(g, pd, ((kWindow2M + off) >> 21) & 511) =
          (base + off) | x86::kPtePresent | x86::kPteWritable | x86::kPteLarge;
    }
  }
  const RandomParams params{gva, elements, s.random_reads, 0x1234567ull + rep};
  Vcpu vcpu = g.add_vcpu(bench_guest_random, {put_params(g, params)});
  Run r = drive(g, vcpu, no_exits);
  std::uint64_t x = params.seed, sum = 0;
  for (std::uint64_t i = 0; i < params.reads; ++i) {
    const std::uint64_t v = walk_index(x, elements) * kMul;
    sum += v;
    x = walk_next(x, v);
  }
  expect_eq("sum of the values read", sum, end_value(r, 1));
  expect_eq("final walk state", x, end_value(r, 2));
  r.rep.iterations = params.reads;
  return r.rep;
}

Rep random4k_once(const System& sys, const Target& t, const Sizes& s, unsigned rep) {
  return random_once(sys, t, s, rep, false);
}
Rep random2m_once(const System& sys, const Target& t, const Sizes& s, unsigned rep) {
  return random_once(sys, t, s, rep, true);
}

// ---------------------------------------------------------------- page tables

Rep churn_once(const System& sys, const Target& target, const Sizes& s, unsigned) {
  GuestVm g = make_guest(sys, target, kBaseMemory, false);
  constexpr std::uint64_t kSlots = 64, kPoolPages = 61;
  const std::uint64_t pt = table_for(g, g.cr3(), kWindowChurn, 1);
  const std::uint64_t pool = g.alloc(kPoolPages * kPageSize);
  for (std::uint64_t j = 0; j < kPoolPages; ++j) {
    const std::uint64_t page = pool + j * kPageSize;
    const std::uint64_t tag = kTag ^ page;
    std::memcpy(g.host_ptr(page, 8), &tag, 8);
  }
  const ChurnParams params{pt, kSlots, pool, kPoolPages, s.churn_iterations};
  Vcpu vcpu = g.add_vcpu(bench_guest_churn, {put_params(g, params)});
  Run r = drive(g, vcpu, no_exits);
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < params.iterations; ++i) sum += kTag ^ (pool + ((i * 13 + 7) % kPoolPages) * kPageSize);
  expect_eq("sum of the tags read through the window", sum, end_value(r, 1));
  r.rep.iterations = params.iterations;
  return r.rep;
}

Rep cr3_once(const System& sys, const Target& target, const Sizes& s, unsigned) {
  GuestVm g = make_guest(sys, target, kBaseMemory, false);
  const std::uint64_t spaces = s.cr3_spaces;
  const std::uint64_t list = g.alloc(8 * spaces, 8);
  for (std::uint64_t k = 0; k < spaces; ++k) {
    const std::uint64_t pml4 = copy_pml4(g);
    const std::uint64_t page = g.alloc(kPageSize);
    const std::uint64_t tag = kTag ^ k;
    std::memcpy(g.host_ptr(page, 8), &tag, 8);
    entry_at(g, table_for(g, pml4, kWindowCr3, 1), 0) = page | x86::kPtePresent | x86::kPteWritable;
    entry_at(g, list, k) = pml4;
  }
  const Cr3Params params{list, spaces, s.cr3_iterations};
  Vcpu vcpu = g.add_vcpu(bench_guest_cr3, {put_params(g, params)});
  Run r = drive(g, vcpu, no_exits);
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < params.iterations; ++i) sum += kTag ^ (i % spaces);
  expect_eq("sum of the tags read in each address space", sum, end_value(r, 1));
  r.rep.iterations = params.iterations;
  return r.rep;
}

Rep fork_once(const System& sys, const Target& target, const Sizes& s, unsigned) {
  GuestVm g = make_guest(sys, target, kBaseMemory, false);
  const std::uint64_t pages = s.fork_pages;
  const std::uint64_t child_cr3 = copy_pml4(g);  // before the parent's window exists
  const std::uint64_t child_pt = table_for(g, child_cr3, kWindowFork, 1);
  const std::uint64_t parent_pt = table_for(g, g.cr3(), kWindowFork, 1);
  const std::uint64_t data = g.alloc(pages * kPageSize);
  const std::uint64_t pool = g.alloc(pages * kPageSize);
  for (std::uint64_t i = 0; i < pages; ++i) {
    const std::uint64_t tag = kTag ^ i;
    std::memcpy(g.host_ptr(data + i * kPageSize, 8), &tag, 8);
    entry_at(g, parent_pt, i) = (data + i * kPageSize) | x86::kPtePresent | x86::kPteWritable;
  }
  g.set_exception_handler(x86::kPf, bench_guest_cow_handler);
  const ForkParams params{parent_pt, child_pt, child_cr3, pages, pool};
  Vcpu vcpu = g.add_vcpu(bench_guest_fork, {put_params(g, params)});
  Run r = drive(g, vcpu, no_exits);
  expect_eq("copy-on-write faults", pages, end_value(r, 1));
  for (std::uint64_t i = 0; i < pages; ++i) {
    std::uint64_t copy[2], orig[2];
    std::memcpy(copy, g.host_ptr(pool + i * kPageSize, 16), 16);
    std::memcpy(orig, g.host_ptr(data + i * kPageSize, 16), 16);
    expect_eq("the child's copy, word 0", kTag ^ i, copy[0]);
    expect_eq("the child's copy, word 1", kChildTag ^ i, copy[1]);
    expect_eq("the parent's page, word 1", 0, orig[1]);
  }
  r.rep.iterations = pages;
  return r.rep;
}

const std::vector<Workload> kWorkloads = {
    {"cpuid", "exit", "CPUID round trips (handled in the kernel)", cpuid_once},
    {"pio", "exit", "port-I/O reads answered by userspace", pio_once},
    {"mmio", "exit", "MMIO reads answered by userspace", mmio_once},
    {"hlt", "exit", "HLT to userspace, woken by KVM_INTERRUPT", hlt_once},
    {"touch", "page", "first touch of untouched guest memory, per 4 KiB page", touch_once},
    {"random-4k", "read", "dependent random reads over the working set, 4 KiB guest pages", random4k_once},
    {"random-2m", "read", "dependent random reads over the working set, 2 MiB guest pages", random2m_once},
    {"pt-churn", "map", "map, read, unmap a page with INVLPG (one iteration = one map/unmap)", churn_once},
    {"cr3-switch", "switch", "MOV to CR3 among address spaces, one read in each", cr3_once},
    {"fork-cow", "page", "copy the page tables, write-protect, one copy-on-write fault per page", fork_once},
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

std::optional<Sizes> Sizes::for_scale(std::string_view scale) {
  Sizes s;
  s.scale = std::string(scale);
  if (scale == "check") {
    s.exit_iterations = 64, s.exit_warmup = 4, s.touch_mib = 2, s.random_mib = 4, s.random_reads = 4096;
    s.churn_iterations = 256, s.cr3_spaces = 4, s.cr3_iterations = 256, s.fork_pages = 32, s.reps = 1;
  } else if (scale == "small") {
    s.exit_iterations = 2000, s.exit_warmup = 100, s.touch_mib = 32, s.random_mib = 64, s.random_reads = 200000;
    s.churn_iterations = 20000, s.cr3_spaces = 8, s.cr3_iterations = 20000, s.fork_pages = 256, s.reps = 5;
  } else if (scale == "full") {
    s.exit_iterations = 200000, s.exit_warmup = 1000, s.touch_mib = 1024, s.random_mib = 1024;
    s.random_reads = 20000000, s.churn_iterations = 2000000, s.cr3_spaces = 16, s.cr3_iterations = 2000000;
    s.fork_pages = 512, s.reps = 7;
  } else {
    return std::nullopt;
  }
  return s;
}

const std::vector<Workload>& workloads() { return kWorkloads; }

const Workload* find_workload(std::string_view name) {
  for (const Workload& w : kWorkloads) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

Result run(const Workload& w, const System& sys, const Target& target, const Sizes& sizes) {
  Result result;
  result.workload = std::string(w.name);
  result.unit = std::string(w.unit);
  try {
    for (unsigned rep = 0; rep < sizes.reps; ++rep) result.reps.push_back(w.run_once(sys, target, sizes, rep));
  } catch (const std::exception& e) {
    result.failure = e.what();
    return result;
  }
  std::vector<double> ns;
  for (const Rep& r : result.reps) ns.push_back(r.iterations ? r.seconds * 1e9 / r.iterations : 0);
  if (!ns.empty()) {
    result.median_ns = median(ns);
    result.min_ns = *std::min_element(ns.begin(), ns.end());
    result.max_ns = *std::max_element(ns.begin(), ns.end());
  }
  return result;
}

}  // namespace kvmx::bench
