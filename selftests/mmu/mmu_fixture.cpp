#include "mmu_fixture.hpp"

#include <cstring>

#include "kvmx/guest/x86.h"

namespace mmu_suite {
namespace {

using namespace kvmx::x86;

constexpr unsigned kFrameworkGdtEntries = 5;  // null, code, data, 64-bit TSS (two entries)
constexpr unsigned kGdtEntries = 7;           // + user data, user code
constexpr std::uint64_t kTableFlags = kPtePresent | kPteWritable | kPteUser;

// A flat DPL-3 code (64-bit) or data descriptor (SDM "Segment Descriptors").
std::uint64_t user_descriptor(bool code) {
  const std::uint64_t type = code ? kSegCodeExecReadAccessed : kSegDataReadWriteAccessed;
  const std::uint64_t access = type | (1u << 4) /* S */ | (3u << 5) /* DPL 3 */ | (1u << 7) /* P */;
  const std::uint64_t flags = (code ? 1u << 1 /* L */ : 1u << 2 /* B */) | (1u << 3) /* G */;
  return 0xffffull | (access << 40) | (0xfull << 48) | (flags << 52);
}

}  // namespace

Features features_of(const kvmx::System& sys) {
  Features f;
  auto cpuid = sys.try_supported_cpuid();
  if (!cpuid) return f;
  if (const auto* leaf7 = cpuid->find(7, 0)) {
    f.smep = leaf7->ebx & (1u << 7);
    f.smap = leaf7->ebx & (1u << 20);
  }
  if (const auto* ext = cpuid->find(0x80000001)) {
    f.nx = ext->edx & (1u << 20);
    f.gbpages = ext->edx & (1u << 26);
  }
  if (const auto* sizes = cpuid->find(0x80000008)) f.maxphyaddr = sizes->eax & 0xff;
  return f;
}

MmuGuest::MmuGuest(kvmx::test::GuestVm& guest) : guest_(guest), pml4_(guest.cr3()) {
  // Ring 3: the framework's GDT plus user data and code, a DPL-3 gate for INT 0x80, and a ring-0
  // stack in the TSS for interrupts from ring 3.
  gdt_ = guest_.alloc(kGdtEntries * 8, 8);
  std::memcpy(guest_.host_ptr(gdt_, kFrameworkGdtEntries * 8), guest_.host_ptr(guest_.gdt(), kFrameworkGdtEntries * 8),
              kFrameworkGdtEntries * 8);
  auto* gdt = reinterpret_cast<std::uint64_t*>(guest_.host_ptr(gdt_, kGdtEntries * 8));
  gdt[kUserData >> 3] = user_descriptor(false);
  gdt[kUserCode >> 3] = user_descriptor(true);

  auto* gate = reinterpret_cast<std::uint64_t*>(guest_.host_ptr(guest_.idt() + 16 * kReturnVector, 8));
  *gate |= 3ull << 45;  // DPL 3

  const std::uint64_t rsp0 = guest_.alloc(kvmx::test::GuestVm::kStackSize, 16) + kvmx::test::GuestVm::kStackSize;
  std::memcpy(guest_.host_ptr(guest_.tss() + 4, 8), &rsp0, 8);  // TSS.RSP0

  // The ring-3 stub (read-only, executable) and its stack, user pages in PML4 slot 2.
  const std::uint64_t code = guest_.alloc(kvmx::kPageSize);
  const std::uint64_t stack = guest_.alloc(kvmx::kPageSize);
  std::memcpy(guest_.host_ptr(code, mmu_user_stub_end - mmu_user_stub), mmu_user_stub,
              mmu_user_stub_end - mmu_user_stub);
  const std::uint64_t pt = table_for(pml4_, kVaUser, 1);
  entry(pt, 0) = code | kPtePresent | kPteUser;
  entry(pt, 1) = stack | kPtePresent | kPteWritable | kPteUser;

  guest_.set_exception_handler(kPf, on_page_fault);
  guest_.set_exception_handler(kReturnVector, on_return_from_user);
}

std::uint64_t MmuGuest::new_table() { return guest_.alloc(kvmx::kPageSize); }

std::uint64_t& MmuGuest::entry(std::uint64_t table, unsigned index) {
  return *reinterpret_cast<std::uint64_t*>(guest_.host_ptr(table + 8 * index, 8));
}

std::uint64_t MmuGuest::table_for(std::uint64_t pml4, std::uint64_t va, int level) {
  std::uint64_t table = pml4;
  for (int l = 4; l > level; --l) {
    std::uint64_t& e = entry(table, (va >> (12 + 9 * (l - 1))) & 511);
    if (!(e & kPtePresent)) e = new_table() | kTableFlags;
    table = e & kPteAddrMask;
  }
  return table;
}

void MmuGuest::fill_tagged(std::uint64_t gpa, std::uint64_t tag) {
  auto* words = reinterpret_cast<std::uint64_t*>(guest_.host_ptr(gpa, kvmx::kPageSize));
  for (std::uint64_t i = 0; i < 512; ++i) words[i] = page_tag(tag, i);
}

void MmuGuest::use_suite_gdt(kvmx::Vcpu& vcpu) {
  kvm_sregs sregs = vcpu.get_sregs();
  sregs.gdt.base = gdt_;
  sregs.gdt.limit = kGdtEntries * 8 - 1;
  vcpu.set_sregs(sregs);
}

void MmuTest::SetUp() {
  GuestTest::SetUp();
  if (HasFatalFailure() || IsSkipped()) return;
  features_ = features_of(sys());
  try {
    mmu_.emplace(guest());
  } catch (const kvmx::Failure& f) {
    FAIL() << "setting up the mmu guest: " << f.what();
  }
}

}  // namespace mmu_suite
