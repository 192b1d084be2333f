#include "access.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "access_matrix.hpp"  // mm/tests: the rights oracle shared with the walker's unit tests
#include "kvmx/guest/x86.h"

namespace mmu_suite {
namespace {

using namespace kvmx::x86;

constexpr std::uint64_t kTableFlags = kPtePresent | kPteWritable | kPteUser;
constexpr std::uint64_t kOffset2m = 0x7000;  // the page accessed inside the 2 MiB page

std::uint64_t bits(unsigned from, unsigned to) {  // bits from..to inclusive
  return ((to == 63 ? 0 : 1ull << (to + 1)) - (1ull << from));
}

// Put the fetch code and the marker at the start of the page at `gpa`.
void fill_target(MmuGuest& mmu, std::uint64_t gpa) {
  std::memcpy(mmu.guest().host_ptr(gpa, sizeof kFetchCode), kFetchCode, sizeof kFetchCode);
  std::memcpy(mmu.guest().host_ptr(gpa + kDataOffset, 8), &kMarker, 8);
}

std::vector<std::uint8_t> cpu_configs(const Features& f) {
  std::vector<std::uint8_t> configs;
  for (std::uint8_t cpu = 0; cpu < 16; ++cpu) {
    if ((cpu & kCpuSmep) && !f.smep) continue;
    if ((cpu & kCpuSmap) && !f.smap) continue;
    if ((cpu & kCpuNxe) && !f.nx) continue;
    configs.push_back(cpu);
  }
  return configs;
}

struct AccessKind {
  std::uint8_t op, user, ac;
};

// RFLAGS.AC matters only to supervisor data accesses under SMAP.
std::vector<AccessKind> access_kinds(std::uint8_t cpu) {
  std::vector<AccessKind> kinds;
  for (std::uint8_t user : {1, 0}) {
    for (std::uint8_t op : {kRead, kWrite, kFetch}) kinds.push_back({op, user, 0});
  }
  if (cpu & kCpuSmap) {
    kinds.push_back({kRead, 0, 1});
    kinds.push_back({kWrite, 0, 1});
  }
  return kinds;
}

// The bits of entry `i` of `walk` that must be zero (SDM "Reserved Bits"): physical-address bits
// at and above MAXPHYADDR, XD unless EFER.NXE, PS in a PML4E, and the bits between the PAT bit and
// the frame of a large page.
std::uint64_t reserved_bits(const TestWalk& walk, unsigned i, const Features& f, bool nxe) {
  std::uint64_t reserved = f.maxphyaddr < 52 ? bits(f.maxphyaddr, 51) : 0;
  if (!nxe) reserved |= kPteNx;
  if (i == 0) reserved |= kPteLarge;
  if (i == walk.leaf && walk.size == PageSize::k2M) reserved |= bits(13, 20);
  if (i == walk.leaf && walk.size == PageSize::k1G) reserved |= bits(13, 29);
  return reserved;
}

struct Expected {
  bool fault;
  std::uint32_t error_code;
};

// Walk the entries top down: the first not-present entry faults with P = 0, the first entry with
// a reserved bit set faults with P = 1 and RSVD = 1; a complete walk is judged on its rights by
// the oracle of mm/tests/access_matrix.hpp. W/R and U/S describe the access; I/D is set for a
// fetch when SMEP or NX (EFER.NXE with PAE paging) is in use.
Expected expected_outcome(const TestWalk& walk, const AccessCase& c, const Features& f) {
  const bool nxe = c.cpu & kCpuNxe, smep = c.cpu & kCpuSmep;
  const std::uint32_t access = (c.op == kWrite ? kPfWrite : 0) | (c.user ? kPfUser : 0) |
                               (c.op == kFetch && (smep || nxe) ? kPfFetch : 0);
  for (unsigned i = 0; i < c.nentries; ++i) {
    if (!(c.entry[i] & kPtePresent)) return {true, access};
    if (c.entry[i] & reserved_bits(walk, i, f, nxe)) return {true, access | kPfPresent | kPfRsvd};
  }
  std::vector<kvmx_access::Entry> rights;
  for (unsigned i = 0; i < c.nentries; ++i) {
    rights.push_back({.user = (c.entry[i] & kPteUser) != 0,
                      .writable = (c.entry[i] & kPteWritable) != 0,
                      .xd = (c.entry[i] & kPteNx) != 0});
  }
  const kvmx_access::Cpu cpu{.wp = (c.cpu & kCpuWp) != 0, .smep = smep, .smap = (c.cpu & kCpuSmap) != 0,
                             .ac = c.ac != 0, .nxe = nxe};
  constexpr kvmx_access::Op kOps[] = {kvmx_access::Op::Read, kvmx_access::Op::Write, kvmx_access::Op::Fetch};
  const kvmx_access::Access a{kOps[c.op], c.user ? kvmx_access::Mode::User : kvmx_access::Mode::Supervisor};
  const kvmx_access::Outcome o = kvmx_access::Expected(rights.begin(), rights.end(), true, cpu, a);
  return {o.fault, o.error_code};
}

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string flag_names(std::uint64_t e, std::uint64_t address_bits) {
  std::string s;
  const auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += '|';
    s += name;
  };
  add(e & kPtePresent, "P");
  add(e & kPteWritable, "W");
  add(e & kPteUser, "U");
  add(e & kPteAccessed, "A");
  add(e & kPteDirty, "D");
  add(e & kPteLarge, "PS");
  add(e & kPteNx, "NX");
  const std::uint64_t other = e & ~(address_bits | kPtePresent | kPteWritable | kPteUser | kPteAccessed | kPteDirty |
                                    kPteLarge | kPteNx);
  if (other) add(true, ("bits " + hex(other)).c_str());
  return s.empty() ? "0" : s;
}

std::string error_code_names(std::uint32_t ec) {
  std::string s = hex(ec) + " (";
  s += ec & kPfPresent ? "P" : "!P";
  if (ec & kPfWrite) s += " W";
  if (ec & kPfUser) s += " U";
  if (ec & kPfRsvd) s += " RSVD";
  if (ec & kPfFetch) s += " I/D";
  return s + ")";
}

const char* size_name(PageSize s) { return s == PageSize::k4K ? "4K" : s == PageSize::k2M ? "2M" : "1G"; }

}  // namespace

TestWalk build_test_walk(MmuGuest& mmu, PageSize size, const Features& f) {
  TestWalk w;
  w.size = size;
  const std::uint64_t pml4 = mmu.pml4();
  const auto gpa_of = [&](std::uint64_t table, unsigned index) { return table + 8 * index; };
  switch (size) {
    case PageSize::k4K: {
      const std::uint64_t pdpt = mmu.table_for(pml4, kVaTest, 3), pd = mmu.new_table(), pt = mmu.new_table();
      const std::uint64_t page = mmu.guest().alloc(kvmx::kPageSize);
      fill_target(mmu, page);
      w.page_va = kVaTest;
      w.entry_gpa = {gpa_of(pml4, 1), gpa_of(pdpt, 0), gpa_of(pd, 0), gpa_of(pt, 0)};
      w.base = {pdpt, pd, pt, page};
      w.upper = 2;
      w.leaf = 3;
      break;
    }
    case PageSize::k2M: {
      const std::uint64_t pdpt = mmu.table_for(pml4, kVaTest, 3), pd = mmu.new_table();
      const std::uint64_t large = mmu.guest().alloc(2u << 20, 2u << 20);
      fill_target(mmu, large + kOffset2m);
      w.page_va = kVaTest2m + kOffset2m;
      w.entry_gpa = {gpa_of(pml4, 1), gpa_of(pdpt, 1), gpa_of(pd, 0)};
      w.base = {pdpt, pd, large | kPteLarge};
      w.upper = 1;
      w.leaf = 2;
      break;
    }
    case PageSize::k1G: {
      // The 1 GiB page maps guest-physical 0..1 GiB; the page accessed is one of guest memory.
      const std::uint64_t pdpt = mmu.new_table(), page = mmu.guest().alloc(kvmx::kPageSize);
      fill_target(mmu, page);
      w.page_va = kVaTest1g + page;
      w.entry_gpa = {gpa_of(pml4, 3), gpa_of(pdpt, 0)};
      w.base = {pdpt, kPteLarge};
      w.upper = 0;
      w.leaf = 1;
      break;
    }
  }
  const std::uint64_t top = f.maxphyaddr - 1;
  for (unsigned i = 0; i < w.entry_gpa.size(); ++i) {
    const bool large_leaf = i == w.leaf && size != PageSize::k4K;
    w.address_mask.push_back(bits(large_leaf ? (size == PageSize::k2M ? 21 : 30) : 12, top));
  }
  return w;
}

Variants rights_variants() {
  Variants v;
  for (unsigned r = 0; r < 8; ++r) {
    const std::uint64_t flags =
        kPtePresent | (r & 1 ? kPteWritable : 0) | (r & 2 ? kPteUser : 0) | (r & 4 ? kPteNx : 0);
    v.upper.push_back(flags);
    v.leaf.push_back(flags);
  }
  return v;
}

Variants not_present_variants() {
  const std::vector<std::uint64_t> flags = {kTableFlags, 0, kPteWritable | kPteUser | kPteNx};
  return {flags, flags, false};
}

Variants reserved_variants(const TestWalk& walk, const Features& f) {
  Variants v{{kTableFlags}, {kTableFlags}, false};
  if (f.maxphyaddr < 52) {
    const std::uint64_t high = 1ull << f.maxphyaddr;
    for (auto* list : {&v.upper, &v.leaf}) {
      list->push_back(kTableFlags | high);
      list->push_back((kTableFlags & ~kPtePresent) | high);  // ignored: not present
    }
  }
  if (walk.size != PageSize::k4K) v.leaf.push_back(kTableFlags | (1ull << 13));
  if (v.upper.size() == 1 && v.leaf.size() == 1) return {};
  return v;
}

void add_cases(CaseSet& set, const TestWalk& walk, const Variants& variants, const Features& f) {
  for (std::uint8_t cpu : cpu_configs(f)) {
    for (std::uint64_t upper : variants.upper) {
      for (std::uint64_t leaf : variants.leaf) {
        if (!variants.with_clean_pair && upper == kTableFlags && leaf == kTableFlags) continue;
        for (const AccessKind& k : access_kinds(cpu)) {
          AccessCase c{};
          c.va = walk.page_va + (k.op == kFetch ? 0 : kDataOffset);
          c.nentries = static_cast<std::uint32_t>(walk.entry_gpa.size());
          for (unsigned i = 0; i < c.nentries; ++i) {
            c.entry_gpa[i] = walk.entry_gpa[i];
            const std::uint64_t flags = i == walk.upper ? upper : i == walk.leaf ? leaf : kTableFlags;
            c.entry[i] = walk.base[i] | flags;
          }
          c.op = k.op;
          c.user = k.user;
          c.ac = k.ac;
          c.cpu = cpu;
          set.cases.push_back(c);
          set.walks.push_back(&walk);
        }
      }
    }
  }
}

::testing::AssertionResult run_cases(MmuGuest& mmu, const CaseSet& set, std::vector<AccessResult>& results) {
  const std::size_t n = set.cases.size();
  kvmx::test::GuestVm& g = mmu.guest();
  const std::uint64_t cases = g.alloc(n * sizeof(AccessCase), 64);
  const std::uint64_t out = g.alloc(n * sizeof(AccessResult), 64);
  std::memcpy(g.host_ptr(cases, n * sizeof(AccessCase)), set.cases.data(), n * sizeof(AccessCase));
  kvmx::Vcpu vcpu = mmu.add_vcpu(guest_access_cases, {cases, n, out});
  const kvmx::test::HostUcall uc = g.run(vcpu);
  if (uc.kind != kvmx::guest::UcallKind::done) {
    return ::testing::AssertionFailure() << "the guest did not finish the " << n << " cases: " << uc.describe();
  }
  results.resize(n);
  std::memcpy(results.data(), g.host_ptr(out, n * sizeof(AccessResult)), n * sizeof(AccessResult));
  return ::testing::AssertionSuccess();
}

std::string describe_case(const CaseSet& set, std::size_t n) {
  const AccessCase& c = set.cases[n];
  const TestWalk& w = *set.walks[n];
  static const char* const kOpNames[] = {"read", "write", "fetch"};
  std::string s = size_name(w.size);
  s += " upper ";
  s += flag_names(c.entry[w.upper], w.address_mask[w.upper]);
  s += " leaf ";
  s += flag_names(c.entry[w.leaf], w.address_mask[w.leaf]);
  s += c.user ? ", user " : ", supervisor ";
  s += kOpNames[c.op];
  s += c.ac ? " with AC" : "";
  s += ", CPU";
  s += c.cpu & kCpuWp ? " WP" : " !WP";
  s += c.cpu & kCpuSmep ? " SMEP" : "";
  s += c.cpu & kCpuSmap ? " SMAP" : "";
  s += c.cpu & kCpuNxe ? " NXE" : " !NXE";
  return s;
}

bool error_code_matches(std::uint32_t expected, std::uint64_t actual, bool cpu_walks) {
  if (actual == expected) return true;
  return cpu_walks && (expected & kPfRsvd) && actual == (expected & ~kPfPresent);
}

std::vector<std::string> mismatches(const CaseSet& set, const std::vector<AccessResult>& results, const Features& f,
                                    bool cpu_walks) {
  std::vector<std::string> out;
  for (std::size_t n = 0; n < set.cases.size(); ++n) {
    const AccessCase& c = set.cases[n];
    const AccessResult& r = results[n];
    const TestWalk& w = *set.walks[n];
    const Expected e = expected_outcome(w, c, f);
    std::string why;
    if (r.faulted > 1) why += "; " + std::to_string(r.faulted) + " #PFs for one access";
    if (e.fault && !r.faulted) why += "; wanted #PF " + error_code_names(e.error_code) + ", the access succeeded";
    if (!e.fault && r.faulted) why += "; wanted success, got #PF " + error_code_names(static_cast<std::uint32_t>(r.error_code));
    if (e.fault && r.faulted) {
      if (!error_code_matches(e.error_code, r.error_code, cpu_walks)) {
        why += "; wanted error code " + error_code_names(e.error_code) + ", got " +
               error_code_names(static_cast<std::uint32_t>(r.error_code));
      }
      if (r.cr2 != c.va) why += "; wanted CR2 " + hex(c.va) + ", got " + hex(r.cr2);
    }
    if (!e.fault && !r.faulted && c.op == kRead && r.value != kMarker) {
      why += "; read " + hex(r.value) + ", wanted " + hex(kMarker);
    }
    // Accessed/dirty: a successful access sets A in every entry of the walk and, for a write, D in
    // the leaf, and nothing else. A faulting access sets no D and leaves a 4 KiB or 2 MiB leaf
    // alone. Whether the CPU sets A in the entries it read above the leaf is not architecturally
    // fixed (kvm-unit-tests' access.c ignores it too), and QEMU's walker treats a PDPTE as a table
    // entry, setting A before it sees PS: with TDP a 1 GiB leaf may gain A as well. A shadow MMU
    // walks in software and, like KVM's, sets nothing when the access faults.
    for (unsigned i = 0; i < c.nentries; ++i) {
      const std::uint64_t before = c.entry[i], after = r.entry[i];
      const bool leaf = i == w.leaf;
      const bool may_gain_a = cpu_walks && (!leaf || w.size == PageSize::k1G);
      bool ok;
      if (!r.faulted) {
        ok = after == (before | kPteAccessed | (leaf && c.op == kWrite ? kPteDirty : 0));
      } else {
        ok = after == before || (may_gain_a && after == (before | kPteAccessed));
      }
      if (!ok) {
        why += "; entry " + std::to_string(i) + (leaf ? " (leaf)" : "") + " was " +
               flag_names(before, w.address_mask[i]) + ", became " + flag_names(after, w.address_mask[i]);
      }
    }
    if (!why.empty()) out.push_back(describe_case(set, n) + ":" + why.substr(1));
  }
  return out;
}

}  // namespace mmu_suite
