// Access permutations, in the spirit of kvm-unit-tests' x86/access.c: the host enumerates cases
// (paging-entry flags at the leaf and one upper level, access type, privilege, CR0.WP, CR4.SMEP/SMAP,
// RFLAGS.AC, EFER.NXE), the guest runs them all in one go (guest_access_cases), and the host
// compares every result with the architectural rule: fault or not, #PF error code, CR2, the value
// read, and the accessed/dirty bits left in each entry of the walk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmu_fixture.hpp"

namespace mmu_suite {

enum class PageSize { k4K, k2M, k1G };

// The walk of a page size's test address: its entries (top level first) and which of them the
// cases vary. The entries not varied hold their next table with P|W|U.
struct TestWalk {
  PageSize size = PageSize::k4K;
  std::uint64_t page_va = 0;  // the page accessed: fetches at +0, reads and writes at +kDataOffset
  std::vector<std::uint64_t> entry_gpa;
  std::vector<std::uint64_t> base;  // what each entry holds besides the flags under test
  unsigned upper = 0, leaf = 0;     // indices into entry_gpa
  std::vector<std::uint64_t> address_mask;  // of each entry, below MAXPHYADDR (for messages)
};

// Builds the tables and the page behind the walk (4 KiB in PML4 slot 1, PDPT entry 0; 2 MiB in
// slot 1, PDPT entry 1; 1 GiB in slot 3).
TestWalk build_test_walk(MmuGuest& mmu, PageSize size, const Features& f);

// Flag bits to try in the upper and the leaf entry; every pair is tried.
struct Variants {
  std::vector<std::uint64_t> upper, leaf;
  bool with_clean_pair = true;  // include upper = leaf = P|W|U
};
Variants rights_variants();  // P with every combination of R/W, U/S and NX
Variants not_present_variants();
Variants reserved_variants(const TestWalk& walk, const Features& f);  // empty if none applies

// The cases of `variants` on `walk` times every access and CPU configuration the features allow,
// grouped by CPU configuration.
struct CaseSet {
  std::vector<AccessCase> cases;
  std::vector<const TestWalk*> walks;  // the walk of each case
};
void add_cases(CaseSet& set, const TestWalk& walk, const Variants& variants, const Features& f);

// Run every case in one guest call on a new vCPU. Fails if the guest does not finish.
::testing::AssertionResult run_cases(MmuGuest& mmu, const CaseSet& set, std::vector<AccessResult>& results);

// Whether a #PF error code is the expected one. With TDP the guest's walk runs on the CPU and
// the error code is the CPU's own: QEMU TCG (the AMD test host) reports a reserved-bit fault with
// P = 0, where the SDM and the APM give P = 1 (target/i386 mmu_translate(), do_fault_rsvd). With
// `cpu_walks` that is accepted too; a shadow MMU builds the error code itself and must set P.
// Likewise only a CPU walk may leave accessed bits behind a faulting access (see mismatches()).
bool error_code_matches(std::uint32_t expected, std::uint64_t actual, bool cpu_walks);

// One line per case whose result breaks the rule, naming the whole combination.
std::vector<std::string> mismatches(const CaseSet& set, const std::vector<AccessResult>& results, const Features& f,
                                    bool cpu_walks);

// The description of case n of a set, e.g. "4K upper P|U leaf P|W|NX, user write, CPU WP NXE".
std::string describe_case(const CaseSet& set, std::size_t n);

}  // namespace mmu_suite
