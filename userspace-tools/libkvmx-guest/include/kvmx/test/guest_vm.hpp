// A VM that runs guest code compiled into this executable, in 64-bit mode.
//
// At construction the host copies every loaded segment of this (static, non-PIE) executable into
// guest memory at the same addresses, so a guest function's host address is also its guest
// address; builds 4-level page tables identity-mapping all of guest memory except page 0 (so a
// null dereference faults); and lays out a GDT (64-bit code, data, TSS), an IDT pointing at the
// runtime's exception stubs (guest/entry.S) and a TSS. add_vcpu() then sets long-mode state and
// starts the vCPU at a guest function with its own stack.
//
// Legacy modes: add_real_mode_vcpu(), add_protected16_vcpu() and add_protected32_vcpu() start a
// vCPU in real mode or 16/32-bit protected mode (paging off, 2-level or PAE paging) on assembly
// code, with a second GDT (legacy_selector), a 32-bit IDT / real-mode IVT whose stubs report
// exceptions (HostUcall kind exception), and KVM_SET_TSS_ADDR done (VMX without unrestricted
// guest emulates real mode with vm86 and needs it). Assembly guests report with kvmx_sync
// (kvmx/guest/asm.h). Whether a VM runs real mode at all: vm().runs_real_mode().
//
// Guest memory is a copy: host writes after construction are not seen by the guest unless made
// through write_global() or host_ptr().
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "kvmx/guest/abi.h"
#include "kvmx/kvmx.hpp"

namespace kvmx::test {

// Paging of a 32-bit protected-mode vCPU; every table identity-maps guest memory except page 0.
enum class Paging { none, two_level, pae };

// Selectors of the legacy GDT, loaded in GDTR by every legacy-mode vCPU so that guest code can
// switch modes without building its own.
namespace legacy_selector {
inline constexpr std::uint16_t kCode32 = 0x08;  // flat, D=1
inline constexpr std::uint16_t kData32 = 0x10;  // flat, B=1
inline constexpr std::uint16_t kCode16 = 0x18;  // the 16-bit segment (GuestVm::segment16()), D=0
inline constexpr std::uint16_t kData16 = 0x20;  // the 16-bit segment, B=0
inline constexpr std::uint16_t kCode64 = 0x28;  // L=1
inline constexpr std::uint16_t kTss32 = 0x30;   // 32-bit TSS, busy
}  // namespace legacy_selector

struct GuestOptions {
  std::uint64_t memory_size = 64u << 20;  // slot 0, at GPA 0
  bool huge_pages = false;                // back guest memory with THP (page tables stay 4 KiB)
};

// What a vCPU stopped for, decoded on the host.
struct HostUcall {
  guest::UcallKind kind = guest::UcallKind::none;
  std::string file;  // basename of the guest source file
  std::uint32_t line = 0;
  std::string text;
  std::string value_text;
  std::uint32_t flags = 0;
  std::vector<std::uint64_t> values;
  std::uint32_t exit_reason = 0;  // for kind none
  std::string exit;               // for kind none: describe() of the exit

  // "SYNC 3 at guest.cpp:42", "guest assertion failed at guest.cpp:42: x == 3 ...", ...
  std::string describe() const;
};

class GuestVm {
 public:
  static constexpr std::uint64_t kStackSize = 16 * 1024;

  // Throws Failure when the device refuses any step (the message names the ioctl).
  explicit GuestVm(const System& sys, GuestOptions options = {});

  Vm& vm() { return vm_; }

  // vCPU 0, 1, ... in 64-bit mode at `entry` (a function of this executable; arguments in RDI, RSI, RDX,
  // RCX, R8, R9) with its own stack; returning from `entry` reports DONE.
  template <class... Args>
  Vcpu add_vcpu(void (*entry)(Args...), std::initializer_list<std::uint64_t> args = {}) {
    return add_vcpu_at(reinterpret_cast<std::uint64_t>(entry), args);
  }
  Vcpu add_vcpu_at(std::uint64_t rip, std::initializer_list<std::uint64_t> args);

  // Real mode: copy [start, end) to the start of the 64 KiB 16-bit segment below 1 MiB
  // (segment16()) and run it with CS = DS = ES = SS = FS = GS = that segment, IP 0, SP 0xfff0.
  // Labels inside the blob are offsets from `start`. One 16-bit blob per VM.
  Vcpu add_real_mode_vcpu(const char* start, const char* end);
  // 16-bit protected mode: the same blob layout through the kCode16/kData16 descriptors.
  Vcpu add_protected16_vcpu(const char* start, const char* end);
  // 32-bit protected mode with flat segments at `entry` (a .code32 label of this executable),
  // with its own stack.
  Vcpu add_protected32_vcpu(const void* entry, Paging paging);
  // The same state set on an existing vCPU of this VM (KVM_SET_SREGS, KVM_SET_REGS).
  void enter_protected32(Vcpu& vcpu, const void* entry, Paging paging);
  // A vCPU left in its reset state (real mode, CS:IP F000:FFF0, linear 0xfffffff0, which no
  // memslot of the framework covers), with only the guest CPUID set: for tests of what KVM_RUN
  // does with that state (KVMX_CAP_REAL_MODE).
  Vcpu add_reset_vcpu();

  // Base of the 16-bit segment (a multiple of 64 KiB below 1 MiB).
  std::uint64_t segment16();
  // CR3 for each kind of 32-bit paging (built on first use of a legacy mode).
  std::uint64_t legacy_cr3(Paging paging);
  std::uint64_t legacy_gdt();

  // Run until the guest makes a ucall (or stops for anything else: kind none, with the exit).
  HostUcall run(Vcpu& vcpu);
  // The ucall (or assembly report) behind an exit `vcpu.run()` returned, or nullopt for any
  // other exit, which the caller handles itself (kvmx-bench answers port I/O and MMIO this way
  // without formatting a description of every exit).
  std::optional<HostUcall> decode_ucall(Vcpu& vcpu, const Exit& e);

  // Zeroed, identity-mapped guest memory (GVA == GPA), `align` a power of two.
  std::uint64_t alloc(std::uint64_t size, std::uint64_t align = kPageSize);

  // Host address of guest [gva, gva + len); throws Failure if not all of it is guest memory.
  // GVA == GPA for everything the framework maps.
  std::byte* host_ptr(std::uint64_t gva, std::uint64_t len = 1);
  template <class T>
  T* host_ptr_to(const T* guest_object) {
    return reinterpret_cast<T*>(host_ptr(reinterpret_cast<std::uint64_t>(guest_object), sizeof(T)));
  }

  // The guest's copy of a global of this executable.
  template <class T>
  void write_global(const T& global, const std::type_identity_t<std::remove_cv_t<T>>& value) {
    *host_ptr_to(&global) = value;
  }
  template <class T>
  std::remove_cv_t<T> read_global(const T& global) {
    return *host_ptr_to(&global);
  }

  void set_exception_handler(std::uint8_t vector, guest::ExceptionHandler handler);

  // Map the 4 KiB page at `gva` to `gpa` (which need not be memory: MMIO), writable.
  void map(std::uint64_t gva, std::uint64_t gpa) { map_page(gva, gpa); }

  // The 4 KiB leaf entry mapping `gva`, for tests that change a mapping; null if none.
  std::uint64_t* pte(std::uint64_t gva);

  // Where the framework put its tables (for tests checking what the guest sees).
  std::uint64_t cr3() const { return pml4_; }
  std::uint64_t gdt() const { return gdt_; }
  std::uint64_t idt() const { return idt_; }
  std::uint64_t tss() const { return tss_; }

 private:
  void load_image();
  void build_page_tables();
  void build_descriptor_tables();
  void map_page(std::uint64_t gva, std::uint64_t gpa);
  std::string read_string(std::uint64_t gva);
  void build_legacy_tables();
  Vcpu add_vcpu16(const char* start, const char* end, bool protected_mode);
  void set_legacy_sregs(kvm_sregs& sregs);
  bool decode_asm_report(Vcpu& vcpu, const exit::IoOut& out, HostUcall& uc);

  Vm vm_;
  std::optional<Cpuid> cpuid_;
  std::uint64_t memory_size_;
  // Two bump ranges around the executable's image: [low_next_, low_end_) and [high_next_, memory_size_).
  std::uint64_t low_next_ = kPageSize;
  std::uint64_t low_end_ = 0;
  std::uint64_t high_next_ = 0;
  std::uint64_t pml4_ = 0, gdt_ = 0, idt_ = 0, tss_ = 0;
  // Legacy-mode tables, 0 until built.
  std::uint64_t segment16_ = 0, legacy_gdt_ = 0, idt32_ = 0, tss32_ = 0, page_dir32_ = 0, pdpt_ = 0;
  bool segment16_used_ = false;
  unsigned next_vcpu_id_ = 0;
};

}  // namespace kvmx::test
