#include "kvmx/test/guest_vm.hpp"

#include <link.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "kvmx/guest/x86.h"

namespace kvmx::test {
namespace {

using namespace kvmx::x86;

constexpr std::uint16_t kCodeSelector = 0x08;
constexpr std::uint16_t kDataSelector = 0x10;
constexpr std::uint16_t kTssSelector = 0x18;  // 16-byte descriptor: GDT entries 3 and 4
constexpr std::size_t kGdtEntries = 5;
constexpr std::size_t kIdtEntries = 256;
constexpr std::uint32_t kTssLimit = 0x67;  // the 104-byte 64-bit TSS, no I/O bitmap

struct Segment {
  std::uint64_t start;
  std::uint64_t end;
};

Error framework_error(const std::string& what, const std::string& hint) { return Error{EINVAL, what, hint}; }

std::vector<Segment> loaded_segments() {
  struct Found {
    std::vector<Segment> segments;
    std::uint64_t load_bias = 0;
    bool seen = false;
  } found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto* f = static_cast<Found*>(data);
        if (f->seen) return 1;  // the executable comes first
        f->seen = true;
        f->load_bias = info->dlpi_addr;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
          const std::uint64_t start = (info->dlpi_addr + ph.p_vaddr) & ~std::uint64_t{kPageSize - 1};
          const std::uint64_t end = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz + kPageSize - 1) & ~std::uint64_t{kPageSize - 1};
          f->segments.push_back({start, end});
        }
        return 1;
      },
      &found);
  if (found.load_bias != 0) {
    throw Failure(framework_error("loading the guest image",
                                  "the executable is position independent; link it static and non-PIE"));
  }
  return found.segments;
}

// A GDT code/data descriptor (SDM "Segment Descriptors"): flat, 4 GiB limit.
std::uint64_t flat_descriptor(std::uint8_t type, bool long_mode, bool db) {
  const std::uint64_t access = type | (1u << 4) /* S */ | (1u << 7) /* P */;
  const std::uint64_t flags = (long_mode ? 1u << 1 : 0) | (db ? 1u << 2 : 0) | (1u << 3) /* G */;
  return 0xffffull | (access << 40) | (0xfull << 48) | (flags << 52);
}

// Any GDT code/data descriptor: 16-bit segments have a base, a byte-granular limit and D/B clear.
std::uint64_t descriptor(std::uint32_t base, std::uint32_t limit, std::uint8_t type, bool db, bool g) {
  const std::uint64_t access = type | (1u << 4) /* S */ | (1u << 7) /* P */;
  const std::uint64_t flags = (db ? 1u << 2 : 0) | (g ? 1u << 3 : 0);
  return (limit & 0xffffull) | (std::uint64_t{base & 0xffffff} << 16) | (access << 40) |
         (std::uint64_t{limit >> 16 & 0xf} << 48) | (flags << 52) | (std::uint64_t{base >> 24} << 56);
}

// A 16-bit segment register in real mode (selector = base >> 4) or through a descriptor.
kvm_segment segment16_register(std::uint16_t selector, std::uint64_t base, std::uint8_t type) {
  kvm_segment s{};
  s.base = base;
  s.limit = 0xffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.s = 1;
  return s;
}

// Where KVM_SET_TSS_ADDR puts VMX's three private pages for vm86 real-mode emulation: below the
// 4 GiB boundary and outside every memslot the framework creates (QEMU uses the same address).
constexpr std::uint64_t kVmxTssAddress = 0xfffbd000;
constexpr std::uint32_t kTss32Limit = 0x67;

kvm_segment flat_segment(std::uint16_t selector, std::uint8_t type, bool long_mode, bool db) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = db;
  s.s = 1;
  s.l = long_mode;
  s.g = 1;
  return s;
}

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string hex_and_decimal(std::uint64_t v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64 " (%" PRId64 ")", v, static_cast<std::int64_t>(v));
  return buf;
}

std::string vector_name(std::uint64_t vector) {
  static constexpr const char* kNames[] = {"DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "CSO", "TS",
                                           "NP", "SS", "GP",  "PF", "15", "MF", "AC", "MC", "XM", "VE", "CP"};
  char buf[32];
  if (vector < std::size(kNames)) {
    std::snprintf(buf, sizeof buf, "#%s (%" PRIu64 ")", kNames[vector], vector);
  } else {
    std::snprintf(buf, sizeof buf, "vector %" PRIu64, vector);
  }
  return buf;
}

}  // namespace

// Built with += only: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string temporaries.
std::string HostUcall::describe() const {
  std::string s;
  const auto where = [&] {
    s += " at ";
    s += file;
    s += ':';
    s += std::to_string(line);
  };
  switch (kind) {
    case guest::UcallKind::none:
      s += "exit ";
      s += exit;
      return s;
    case guest::UcallKind::sync:
      s += "SYNC ";
      s += values.empty() ? std::string("?") : std::to_string(values[0]);
      where();
      for (std::size_t i = 1; i < values.size(); ++i) {
        s += i == 1 ? ", values " : " ";
        s += hex(values[i]);
      }
      return s;
    case guest::UcallKind::done:
      s += "DONE";
      where();
      if (!text.empty()) {
        s += " (";
        s += text;
        s += ')';
      }
      return s;
    case guest::UcallKind::assert_failed:
      s += "guest assertion failed";
      where();
      s += ": ";
      s += text;
      if (flags & guest::kUcallFlagEq && values.size() == 2) {
        s += " == ";
        s += value_text;
        s += "\n  expected ";
        s += text;
        s += " = ";
        s += hex_and_decimal(values[0]);
        s += "\n    actual ";
        s += value_text;
        s += " = ";
        s += hex_and_decimal(values[1]);
      } else if (!values.empty()) {
        s += "\n  values (";
        s += value_text;
        s += "):";
        for (std::uint64_t v : values) {
          s += ' ';
          s += hex_and_decimal(v);
        }
      }
      return s;
    case guest::UcallKind::exception:
      s += "guest exception";
      if (values.size() < 4) {
        where();
        s += " (truncated report)";
        return s;
      }
      s += ' ';
      s += vector_name(values[0]);
      s += ", error code ";
      s += hex(values[1]);
      s += ", rip ";
      s += hex(values[2]);
      s += ", cr2 ";
      s += hex(values[3]);
      return s;
  }
  s += "unknown ucall kind ";
  s += std::to_string(static_cast<std::uint32_t>(kind));
  where();
  return s;
}

GuestVm::GuestVm(const System& sys, GuestOptions options)
    : vm_(sys.create_vm()), memory_size_(options.memory_size) {
  vm_.add_memory(0, 0, memory_size_, {.huge_pages = options.huge_pages});
  // CPUID for the vCPUs: what the hypervisor supports, as a VMM would set it.
  if (sys.try_check_extension(KVM_CAP_EXT_CPUID).value_or(0) > 0) {
    if (auto cpuid = sys.try_supported_cpuid()) cpuid_ = std::move(cpuid).value();
  }
  load_image();
  build_page_tables();
  build_descriptor_tables();
}

void GuestVm::load_image() {
  const std::vector<Segment> segments = loaded_segments();
  if (segments.empty()) throw Failure(framework_error("loading the guest image", "no PT_LOAD segments"));
  std::uint64_t lowest = segments.front().start, highest = 0;
  for (const Segment& s : segments) {
    lowest = std::min(lowest, s.start);
    highest = std::max(highest, s.end);
  }
  if (highest + kStackSize > memory_size_) {
    throw Failure(framework_error("loading the guest image",
                                  "the executable ends at " + hex(highest) + ", beyond guest memory of " +
                                      hex(memory_size_) + "; raise GuestOptions::memory_size"));
  }
  for (const Segment& s : segments) {
    std::memcpy(host_ptr(s.start, s.end - s.start), reinterpret_cast<const void*>(s.start), s.end - s.start);
  }
  low_end_ = lowest;
  high_next_ = highest;
}

std::uint64_t GuestVm::alloc(std::uint64_t size, std::uint64_t align) {
  const auto round_up = [&](std::uint64_t v) { return (v + align - 1) & ~(align - 1); };
  if (size == 0 || (align & (align - 1)) != 0) throw Failure(framework_error("GuestVm::alloc", "bad size or alignment"));
  std::uint64_t at = round_up(low_next_);
  if (at + size <= low_end_) {
    low_next_ = at + size;
    return at;
  }
  at = round_up(high_next_);
  if (at + size <= memory_size_) {
    high_next_ = at + size;
    return at;
  }
  throw Failure(Error{ENOMEM, "GuestVm::alloc(" + std::to_string(size) + ")", "guest memory is exhausted"});
}

std::byte* GuestVm::host_ptr(std::uint64_t gva, std::uint64_t len) {
  std::byte* p = vm_.host_address(gva, len);
  if (!p) throw Failure(Error{EFAULT, "guest address " + hex(gva) + "+" + std::to_string(len), "not in guest memory"});
  return p;
}

void GuestVm::map_page(std::uint64_t gva, std::uint64_t gpa) {
  std::uint64_t table = pml4_;
  for (int level = 3; level >= 1; --level) {
    const std::uint64_t index = (gva >> (12 + 9 * level)) & 511;
    auto* entry = reinterpret_cast<std::uint64_t*>(host_ptr(table + 8 * index, 8));
    if (!(*entry & kPtePresent)) *entry = alloc(kPageSize) | kPtePresent | kPteWritable;
    table = *entry & kPteAddrMask;
  }
  auto* leaf = reinterpret_cast<std::uint64_t*>(host_ptr(table + 8 * ((gva >> 12) & 511), 8));
  *leaf = gpa | kPtePresent | kPteWritable;
}

std::uint64_t* GuestVm::pte(std::uint64_t gva) {
  std::uint64_t table = pml4_;
  for (int level = 3; level >= 1; --level) {
    const std::uint64_t entry = *reinterpret_cast<std::uint64_t*>(host_ptr(table + 8 * ((gva >> (12 + 9 * level)) & 511), 8));
    if (!(entry & kPtePresent) || (entry & kPteLarge)) return nullptr;
    table = entry & kPteAddrMask;
  }
  return reinterpret_cast<std::uint64_t*>(host_ptr(table + 8 * ((gva >> 12) & 511), 8));
}

void GuestVm::build_page_tables() {
  pml4_ = alloc(kPageSize);
  // Page 0 stays unmapped so that null pointers fault in the guest.
  for (std::uint64_t addr = kPageSize; addr < memory_size_; addr += kPageSize) map_page(addr, addr);
}

void GuestVm::build_descriptor_tables() {
  gdt_ = alloc(kGdtEntries * 8, 8);
  idt_ = alloc(kIdtEntries * 16, 16);
  tss_ = alloc(kTssLimit + 1, 16);

  auto* gdt = reinterpret_cast<std::uint64_t*>(host_ptr(gdt_, kGdtEntries * 8));
  gdt[kCodeSelector / 8] = flat_descriptor(kSegCodeExecReadAccessed, true, false);
  gdt[kDataSelector / 8] = flat_descriptor(kSegDataReadWriteAccessed, false, true);
  // 64-bit TSS descriptor (SDM "TSS Descriptor in 64-bit mode"), marked busy as after LTR.
  const std::uint64_t access = kSegTss64Busy | (1u << 7);
  gdt[kTssSelector / 8] = (kTssLimit & 0xffff) | ((tss_ & 0xffffff) << 16) | (access << 40) |
                          ((tss_ >> 24 & 0xff) << 56);
  gdt[kTssSelector / 8 + 1] = tss_ >> 32;

  // No I/O permission bitmap: its base points past the limit.
  auto* tss = host_ptr(tss_, kTssLimit + 1);
  const std::uint16_t iomap_base = kTssLimit + 1;
  std::memcpy(tss + 102, &iomap_base, sizeof iomap_base);

  // IDT: interrupt gates to the runtime's stubs, 16 bytes apart (guest/entry.S).
  auto* idt = reinterpret_cast<std::uint64_t*>(host_ptr(idt_, kIdtEntries * 16));
  const auto stubs = reinterpret_cast<std::uint64_t>(kvmx_guest_vectors);
  for (std::size_t v = 0; v < kIdtEntries; ++v) {
    const std::uint64_t handler = stubs + 16 * v;
    const std::uint64_t gate_access = kSegInterruptGate64 | (1u << 7);
    idt[2 * v] = (handler & 0xffff) | (std::uint64_t{kCodeSelector} << 16) | (gate_access << 40) |
                 ((handler >> 16 & 0xffff) << 48);
    idt[2 * v + 1] = handler >> 32;
  }
}

Vcpu GuestVm::add_vcpu_at(std::uint64_t rip, std::initializer_list<std::uint64_t> args) {
  if (args.size() > 6) throw Failure(framework_error("GuestVm::add_vcpu", "at most 6 arguments"));
  Vcpu vcpu = vm_.create_vcpu(next_vcpu_id_++);
  if (cpuid_) vcpu.set_cpuid(*cpuid_);

  kvm_sregs sregs = vcpu.get_sregs();
  sregs.cs = flat_segment(kCodeSelector, kSegCodeExecReadAccessed, true, false);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
      flat_segment(kDataSelector, kSegDataReadWriteAccessed, false, true);
  sregs.tr = kvm_segment{};
  sregs.tr.base = tss_;
  sregs.tr.limit = kTssLimit;
  sregs.tr.selector = kTssSelector;
  sregs.tr.type = kSegTss64Busy;
  sregs.tr.present = 1;
  sregs.ldt = kvm_segment{};
  sregs.ldt.unusable = 1;
  sregs.ldt.type = 2;  // LDT; ignored while unusable
  sregs.gdt.base = gdt_;
  sregs.gdt.limit = kGdtEntries * 8 - 1;
  sregs.idt.base = idt_;
  sregs.idt.limit = kIdtEntries * 16 - 1;
  sregs.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Pg;
  sregs.cr3 = pml4_;
  sregs.cr4 = kCr4Pae | kCr4Osfxsr | kCr4Osxmmexcpt;
  sregs.efer = kEferLme | kEferLma;
  vcpu.set_sregs(sregs);

  // The stack starts as if `entry` had been called from kvmx_guest_return.
  const std::uint64_t stack = alloc(kStackSize, 16);
  const std::uint64_t rsp = stack + kStackSize - 8;
  const auto return_address = reinterpret_cast<std::uint64_t>(&kvmx_guest_return);
  std::memcpy(host_ptr(rsp, 8), &return_address, 8);

  kvm_regs regs{};
  regs.rip = rip;
  regs.rsp = rsp;
  regs.rflags = kRflagsFixed;
  __u64* const arg_regs[] = {&regs.rdi, &regs.rsi, &regs.rdx, &regs.rcx, &regs.r8, &regs.r9};
  std::size_t i = 0;
  for (std::uint64_t a : args) *arg_regs[i++] = a;
  vcpu.set_regs(regs);
  return vcpu;
}

std::uint64_t GuestVm::segment16() {
  build_legacy_tables();
  return segment16_;
}

std::uint64_t GuestVm::legacy_gdt() {
  build_legacy_tables();
  return legacy_gdt_;
}

std::uint64_t GuestVm::legacy_cr3(Paging paging) {
  build_legacy_tables();
  switch (paging) {
    case Paging::none:
      return 0;
    case Paging::two_level:
      return page_dir32_;
    case Paging::pae:
      return pdpt_;
  }
  return 0;
}

void GuestVm::build_legacy_tables() {
  if (legacy_gdt_) return;
  namespace sel = legacy_selector;
  // The 16-bit segment first, while low memory is still free: real mode reaches only 1 MiB.
  segment16_ = alloc(0x10000, 0x10000);
  if (segment16_ + 0x10000 > 0x100000) {
    throw Failure(framework_error("GuestVm: the 16-bit segment", "no 64 KiB below 1 MiB is free"));
  }
  // VMX without unrestricted guest (e.g. ept=0) runs real mode in vm86 and needs a TSS outside
  // guest memory; SVM and unrestricted guests accept the call and ignore it.
  vm_.ioctl(op::set_tss_addr, kVmxTssAddress);

  legacy_gdt_ = alloc(8 * 8, 8);
  tss32_ = alloc(kTss32Limit + 1, 16);
  auto* gdt = reinterpret_cast<std::uint64_t*>(host_ptr(legacy_gdt_, 8 * 8));
  const auto base16 = static_cast<std::uint32_t>(segment16_);
  gdt[sel::kCode32 / 8] = descriptor(0, 0xfffff, kSegCodeExecReadAccessed, true, true);
  gdt[sel::kData32 / 8] = descriptor(0, 0xfffff, kSegDataReadWriteAccessed, true, true);
  gdt[sel::kCode16 / 8] = descriptor(base16, 0xffff, kSegCodeExecReadAccessed, false, false);
  gdt[sel::kData16 / 8] = descriptor(base16, 0xffff, kSegDataReadWriteAccessed, false, false);
  gdt[sel::kCode64 / 8] = flat_descriptor(kSegCodeExecReadAccessed, true, false);
  // A 32-bit busy TSS (system descriptor: S clear), as after LTR.
  const auto tss_base = static_cast<std::uint32_t>(tss32_);
  gdt[sel::kTss32 / 8] = (kTss32Limit & 0xffff) | (std::uint64_t{tss_base & 0xffffff} << 16) |
                         (std::uint64_t{0x8b} << 40) | (std::uint64_t{tss_base >> 24} << 56);
  const std::uint16_t iomap_base = kTss32Limit + 1;
  std::memcpy(host_ptr(tss32_ + 102, 2), &iomap_base, 2);

  // 32-bit IDT: interrupt gates (type 0xe, P) to the stubs of guest/legacy.S.
  idt32_ = alloc(256 * 8, 8);
  auto* idt = reinterpret_cast<std::uint64_t*>(host_ptr(idt32_, 256 * 8));
  const auto stubs32 = reinterpret_cast<std::uint64_t>(kvmx_guest_vectors32);
  for (std::uint64_t v = 0; v < 256; ++v) {
    const std::uint64_t handler = stubs32 + 16 * v;
    idt[v] = (handler & 0xffff) | (std::uint64_t{sel::kCode32} << 16) | (std::uint64_t{0x8e} << 40) |
             ((handler >> 16 & 0xffff) << 48);
  }

  // Real-mode IVT at 0 (page 0 is memory, only unmapped in the paging modes) pointing at a copy of
  // the 16-bit stubs.
  const std::uint64_t stubs16_size = kvmx_guest_vectors16_end - kvmx_guest_vectors16;
  const std::uint64_t stubs16 = alloc(stubs16_size, 16);
  std::memcpy(host_ptr(stubs16, stubs16_size), kvmx_guest_vectors16, stubs16_size);
  auto* ivt = reinterpret_cast<std::uint16_t*>(host_ptr(0, 256 * 4));
  for (std::uint64_t v = 0; v < 256; ++v) {
    ivt[2 * v] = static_cast<std::uint16_t>(8 * v);
    ivt[2 * v + 1] = static_cast<std::uint16_t>(stubs16 >> 4);
  }

  // 2-level paging (4 KiB pages; the guest memory must lie below 4 GiB) and PAE (PDPT, PDs, PTs).
  const std::uint64_t pages = memory_size_ / kPageSize;
  page_dir32_ = alloc(kPageSize);
  auto* pd32 = reinterpret_cast<std::uint32_t*>(host_ptr(page_dir32_, kPageSize));
  pdpt_ = alloc(32, 32);
  auto* pdpt = reinterpret_cast<std::uint64_t*>(host_ptr(pdpt_, 32));
  for (std::uint64_t page = 1; page < pages; ++page) {
    const std::uint64_t addr = page * kPageSize;
    std::uint32_t& pde32 = pd32[addr >> 22];
    if (!(pde32 & kPtePresent)) pde32 = static_cast<std::uint32_t>(alloc(kPageSize) | kPtePresent | kPteWritable);
    reinterpret_cast<std::uint32_t*>(host_ptr(pde32 & ~0xfffu, kPageSize))[addr >> 12 & 1023] =
        static_cast<std::uint32_t>(addr | kPtePresent | kPteWritable);

    // PDPTEs have no R/W bit (reserved in PAE mode): present only.
    std::uint64_t& pdpte = pdpt[addr >> 30 & 3];
    if (!(pdpte & kPtePresent)) pdpte = alloc(kPageSize) | kPtePresent;
    std::uint64_t& pde = reinterpret_cast<std::uint64_t*>(host_ptr(pdpte & kPteAddrMask, kPageSize))[addr >> 21 & 511];
    if (!(pde & kPtePresent)) pde = alloc(kPageSize) | kPtePresent | kPteWritable;
    reinterpret_cast<std::uint64_t*>(host_ptr(pde & kPteAddrMask, kPageSize))[addr >> 12 & 511] =
        addr | kPtePresent | kPteWritable;
  }
}

void GuestVm::set_legacy_sregs(kvm_sregs& sregs) {
  sregs.gdt.base = legacy_gdt_;
  sregs.gdt.limit = 8 * 8 - 1;
  sregs.efer = 0;
  sregs.cr4 = 0;
  sregs.cr3 = 0;
  sregs.cr0 = kCr0Pe | kCr0Et | kCr0Ne;
}

Vcpu GuestVm::add_vcpu16(const char* start, const char* end, bool protected_mode) {
  build_legacy_tables();
  const std::uint64_t size = end - start;
  if (segment16_used_) throw Failure(framework_error("GuestVm: 16-bit blob", "one 16-bit vCPU per VM"));
  if (size > 0x8000) throw Failure(framework_error("GuestVm: 16-bit blob", "larger than 32 KiB"));
  segment16_used_ = true;
  std::memcpy(host_ptr(segment16_, size), start, size);

  Vcpu vcpu = vm_.create_vcpu(next_vcpu_id_++);
  if (cpuid_) vcpu.set_cpuid(*cpuid_);
  kvm_sregs sregs = vcpu.get_sregs();  // reset state: real mode, TR and LDTR as after RESET
  namespace sel = legacy_selector;
  if (protected_mode) {
    set_legacy_sregs(sregs);
    sregs.cs = segment16_register(sel::kCode16, segment16_, kSegCodeExecReadAccessed);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
        segment16_register(sel::kData16, segment16_, kSegDataReadWriteAccessed);
    sregs.tr = kvm_segment{};
    sregs.tr.base = tss32_;
    sregs.tr.limit = kTss32Limit;
    sregs.tr.selector = sel::kTss32;
    sregs.tr.type = kSegTss64Busy;  // 0xb is also the 32-bit busy TSS
    sregs.tr.present = 1;
    sregs.idt.base = idt32_;
    sregs.idt.limit = 256 * 8 - 1;
  } else {
    const auto selector = static_cast<std::uint16_t>(segment16_ >> 4);
    sregs.cs = segment16_register(selector, segment16_, kSegCodeExecReadAccessed);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
        segment16_register(selector, segment16_, kSegDataReadWriteAccessed);
    sregs.idt.base = 0;
    sregs.idt.limit = 0x3ff;
    sregs.gdt.base = legacy_gdt_;  // so the guest can enter protected mode without LGDT
    sregs.gdt.limit = 8 * 8 - 1;
  }
  vcpu.set_sregs(sregs);
  kvm_regs regs{};
  regs.rip = 0;
  regs.rsp = 0xfff0;
  regs.rflags = kRflagsFixed;
  vcpu.set_regs(regs);
  return vcpu;
}

Vcpu GuestVm::add_real_mode_vcpu(const char* start, const char* end) { return add_vcpu16(start, end, false); }

Vcpu GuestVm::add_protected16_vcpu(const char* start, const char* end) { return add_vcpu16(start, end, true); }

Vcpu GuestVm::add_protected32_vcpu(const void* entry, Paging paging) {
  Vcpu vcpu = vm_.create_vcpu(next_vcpu_id_++);
  if (cpuid_) vcpu.set_cpuid(*cpuid_);
  enter_protected32(vcpu, entry, paging);
  return vcpu;
}

void GuestVm::enter_protected32(Vcpu& vcpu, const void* entry, Paging paging) {
  build_legacy_tables();
  namespace sel = legacy_selector;
  kvm_sregs sregs = vcpu.get_sregs();
  set_legacy_sregs(sregs);
  sregs.cs = flat_segment(sel::kCode32, kSegCodeExecReadAccessed, false, true);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(sel::kData32, kSegDataReadWriteAccessed, false, true);
  sregs.tr = kvm_segment{};
  sregs.tr.base = tss32_;
  sregs.tr.limit = kTss32Limit;
  sregs.tr.selector = sel::kTss32;
  sregs.tr.type = kSegTss64Busy;
  sregs.tr.present = 1;
  sregs.ldt = kvm_segment{};
  sregs.ldt.unusable = 1;
  sregs.ldt.type = 2;
  sregs.idt.base = idt32_;
  sregs.idt.limit = 256 * 8 - 1;
  if (paging != Paging::none) {
    sregs.cr0 |= kCr0Pg | kCr0Wp;
    sregs.cr3 = legacy_cr3(paging);
    if (paging == Paging::pae) sregs.cr4 = kCr4Pae;
  }
  vcpu.set_sregs(sregs);

  const std::uint64_t stack = alloc(kStackSize, 16);
  kvm_regs regs{};
  regs.rip = reinterpret_cast<std::uint64_t>(entry);
  regs.rsp = stack + kStackSize;
  regs.rflags = kRflagsFixed;
  vcpu.set_regs(regs);
}

Vcpu GuestVm::add_reset_vcpu() {
  Vcpu vcpu = vm_.create_vcpu(next_vcpu_id_++);
  if (cpuid_) vcpu.set_cpuid(*cpuid_);
  return vcpu;
}

bool GuestVm::decode_asm_report(Vcpu& vcpu, const exit::IoOut& out, HostUcall& uc) {
  if (out.port != guest::kAsmSyncPort && out.port != guest::kAsmExceptionPort) return false;
  if (out.size != 4 || out.count != 1) return false;
  const kvm_regs regs = vcpu.get_regs();
  uc.file = "<assembly>";
  if (out.port == guest::kAsmSyncPort) {
    uc.kind = guest::UcallKind::sync;
    uc.values = {out.value(), regs.rbx, regs.rcx, regs.rsi, regs.rdi, regs.rbp};
  } else {
    uc.kind = guest::UcallKind::exception;
    uc.values = {out.value(), regs.rbx & 0xffffffff, regs.rcx & 0xffffffff, regs.rsi & 0xffffffff};
  }
  return true;
}

std::string GuestVm::read_string(std::uint64_t gva) {
  std::string s;
  if (gva == 0) return s;
  for (std::size_t i = 0; i < 512; ++i) {
    const std::byte* p = vm_.host_address(gva + i, 1);
    if (!p || *p == std::byte{0}) break;
    s.push_back(static_cast<char>(*p));
  }
  return s;
}

HostUcall GuestVm::run(Vcpu& vcpu) {
  const Exit e = vcpu.run();
  if (auto uc = decode_ucall(vcpu, e)) return std::move(*uc);
  HostUcall uc;
  uc.exit_reason = exit_reason(e);
  uc.exit = describe(e);
  const auto* out = std::get_if<exit::IoOut>(&e);
  if (out && out->port == guest::kUcallPort) {
    if (out->size != 4 || out->count != 1) {
      uc.exit += " (a ucall is a single 4-byte OUT)";
    } else {
      uc.exit += " (the ucall record is not in guest memory)";
    }
  }
  return uc;
}

std::optional<HostUcall> GuestVm::decode_ucall(Vcpu& vcpu, const Exit& e) {
  const auto* out = std::get_if<exit::IoOut>(&e);
  if (!out) return std::nullopt;
  HostUcall uc;
  uc.exit_reason = exit_reason(e);
  if (decode_asm_report(vcpu, *out, uc)) {
    uc.exit = describe(e);
    return uc;
  }
  if (out->port != guest::kUcallPort || out->size != 4 || out->count != 1) return std::nullopt;
  const std::byte* record = vm_.host_address(out->value(), sizeof(guest::Ucall));
  if (!record) return std::nullopt;
  uc.exit = describe(e);
  guest::Ucall raw;
  std::memcpy(&raw, record, sizeof raw);
  uc.kind = static_cast<guest::UcallKind>(raw.kind);
  uc.file = read_string(raw.file);
  uc.file = uc.file.substr(uc.file.rfind('/') + 1);
  uc.line = raw.line;
  uc.text = read_string(raw.text);
  uc.value_text = read_string(raw.value_text);
  uc.flags = raw.flags;
  uc.values.assign(raw.values, raw.values + std::min<std::uint32_t>(raw.nvalues, guest::kUcallMaxValues));
  return uc;
}

void GuestVm::set_exception_handler(std::uint8_t vector, guest::ExceptionHandler handler) {
  write_global(kvmx_guest_exception_handlers[vector], handler);
}

}  // namespace kvmx::test
