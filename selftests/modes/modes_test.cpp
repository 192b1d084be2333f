// modes: the CPU modes a guest can start in or switch to, judged from inside the guest (CR0, CR4,
// EFER, CS, operand size, addressing) and from the host (KVM_GET_SREGS after each stage). Tests
// that run with CR0.PE clear skip where the VM does not run real mode (KVMX_CAP_REAL_MODE); there,
// the WithoutRealMode tests check that KVM_RUN refuses it as uapi/linux/kvmx.h says.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>

#include "kvmx/guest/x86.h"
#include "kvmx/test/guest.hpp"

extern "C" {
extern const char modes_real_start[], modes_real_end[];
extern const char modes_prot16_start[], modes_prot16_end[];
extern const char modes_prot32[], modes_prot32_null_read[];
extern const char modes_toggle_paging[];
extern const char modes_clear_pe[], modes_clear_pe_done[];
extern const char modes_switch_start[], modes_switch_end[];
extern const char modes_int_real_start[], modes_int_real_end[], modes_int_real_ret[];
extern const char modes_gate16_start[], modes_gate16_end[], modes_gate16_ret1[], modes_gate16_ret2[];
extern const char modes_gate16_gp[], modes_gate16_int_handler[], modes_gate16_trap_handler[];
extern const char modes_gate16_gp_handler[];
}

namespace modes_suite {
void guest_long_mode(volatile std::uint64_t* alias);
}

namespace {

using kvmx::test::GuestTest;
using kvmx::test::SystemTest;
using kvmx::test::HostUcall;
using kvmx::test::Paging;
namespace exit = kvmx::exit;
namespace x86 = kvmx::x86;
namespace sel = kvmx::test::legacy_selector;

using Modes = GuestTest;

std::uint16_t read16(kvmx::test::GuestVm& g, std::uint64_t gpa) {
  std::uint16_t v;
  std::memcpy(&v, g.host_ptr(gpa, 2), 2);
  return v;
}

// Guards: a vCPU set up in real mode runs there: CR0.PE clear, CS = base >> 4, 16-bit operand
// size, DS-relative addressing within the segment; KVM_GET_SREGS reports the same, and an
// exception (#DE) goes through the real-mode IVT (no error code, IP of the faulting instruction).
TEST_F(Modes, RealMode) {
  KVMX_REQUIRE_REAL_MODE(guest().vm());
  auto vcpu = guest().add_real_mode_vcpu(modes_real_start, modes_real_end);
  const std::uint64_t base = guest().segment16();
  const std::uint16_t host_word = 0x1234;
  std::memcpy(guest().host_ptr(base + 0x8002, 2), &host_word, 2);

  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1] & x86::kCr0Pe, 0u) << "CR0 " << std::hex << uc.values[1];
  EXPECT_EQ(uc.values[2], base >> 4) << "CS";
  EXPECT_EQ(uc.values[3], 2u) << "bytes pushed by CALL";
  EXPECT_EQ(uc.values[4], 0x1234u) << "word read at DS:0x8002";
  EXPECT_EQ(read16(guest(), base + 0x8000), 0xbeef) << "word written at DS:0x8000";

  const kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_EQ(sregs.cr0 & x86::kCr0Pe, 0u);
  EXPECT_EQ(sregs.cs.selector, base >> 4);
  EXPECT_EQ(sregs.cs.base, base);
  EXPECT_EQ(sregs.efer & x86::kEferLma, 0u);

  KVMX_ASSERT_EXIT(vcpu.run(), exit::Hlt);
  const HostUcall de = guest().run(vcpu);
  KVMX_ASSERT_GUEST_EXCEPTION(de, x86::kDe);
  EXPECT_EQ(de.values[1], 0u) << "real mode pushes no error code";
  EXPECT_EQ(de.values[2], static_cast<std::uint64_t>(modes_real_end - modes_real_start - 2)) << "IP of the DIV";
}

// Guards: 16-bit protected mode (CS.D = 0 through a GDT descriptor): CR0.PE set, 16-bit operand
// size, segment base from the descriptor; KVM_GET_SREGS reports CS.db = 0; exceptions go through
// the 32-bit IDT.
TEST_F(Modes, Protected16) {
  auto vcpu = guest().add_protected16_vcpu(modes_prot16_start, modes_prot16_end);
  const std::uint64_t base = guest().segment16();
  const std::uint16_t host_word = 0x4321;
  std::memcpy(guest().host_ptr(base + 0x8002, 2), &host_word, 2);

  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1] & (x86::kCr0Pe | x86::kCr0Pg), x86::kCr0Pe) << "CR0 " << std::hex << uc.values[1];
  EXPECT_EQ(uc.values[2], sel::kCode16) << "CS";
  EXPECT_EQ(uc.values[3], 2u) << "bytes pushed by CALL";
  EXPECT_EQ(uc.values[4], 0x4321u);
  EXPECT_EQ(read16(guest(), base + 0x8000), 0xbeef);

  const kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_EQ(sregs.cs.selector, sel::kCode16);
  EXPECT_EQ(sregs.cs.db, 0);
  EXPECT_EQ(sregs.cs.l, 0);
  EXPECT_EQ(sregs.cs.base, base);
  EXPECT_TRUE(sregs.cr0 & x86::kCr0Pe);

  KVMX_ASSERT_EXIT(vcpu.run(), exit::Hlt);
  const HostUcall de = guest().run(vcpu);
  KVMX_ASSERT_GUEST_EXCEPTION(de, x86::kDe);
  EXPECT_EQ(de.values[2], static_cast<std::uint64_t>(modes_prot16_end - modes_prot16_start - 2)) << "IP of the DIV";
}

constexpr std::uint64_t kIf = 0x200;        // RFLAGS.IF
constexpr std::uint64_t kStackTop16 = 0xfff0;  // SP of a 16-bit vCPU at start

// Offset of `label` in the 16-bit blob that starts at `start`.
std::uint64_t offset16(const char* start, const char* label) { return static_cast<std::uint64_t>(label - start); }

// Guards: a real-mode INT n goes through the IVT entry the guest wrote: the handler runs at that
// CS:IP with FLAGS, CS and the return IP pushed as 16-bit words (6 bytes) and IF cleared, and
// IRET returns after the INT with FLAGS (IF) and SP restored. Only IF is compared in FLAGS: VMX
// without unrestricted guest (ept=0) runs real mode in vm86 with IOPL 3, which a PUSHF shows.
TEST_F(Modes, RealModeIntThroughIvt) {
  KVMX_REQUIRE_REAL_MODE(guest().vm());
  auto vcpu = guest().add_real_mode_vcpu(modes_int_real_start, modes_int_real_end);
  const std::uint64_t base = guest().segment16();

  const HostUcall in = guest().run(vcpu);
  KVMX_ASSERT_SYNC(in, 1);
  EXPECT_EQ(in.values[1], offset16(modes_int_real_start, modes_int_real_ret)) << "pushed IP";
  EXPECT_EQ(in.values[2], base >> 4) << "pushed CS";
  EXPECT_EQ(in.values[3] & kIf, kIf) << "pushed FLAGS " << std::hex << in.values[3];
  EXPECT_EQ(in.values[4] & kIf, 0u) << "FLAGS in the handler " << std::hex << in.values[4];
  EXPECT_EQ(in.values[5], kStackTop16 - 6) << "SP in the handler";
  const kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_EQ(sregs.cs.selector, base >> 4);
  EXPECT_EQ(sregs.cr0 & x86::kCr0Pe, 0u);

  const HostUcall back = guest().run(vcpu);
  KVMX_ASSERT_SYNC(back, 2);
  EXPECT_EQ(back.values[1] & kIf, kIf) << "FLAGS after IRET " << std::hex << back.values[1];
  EXPECT_EQ(back.values[2], kStackTop16) << "SP after IRET";
  KVMX_EXPECT_EXIT(vcpu.run(), exit::Hlt);
}

// Guards: in protected mode, 16-bit (286) IDT gates push a 16-bit frame: INT n through a 16-bit
// interrupt gate pushes FLAGS, CS and IP as words (6 bytes) and clears IF; a 16-bit trap gate
// leaves IF set; an exception with an error code (#GP for a selector past the GDT limit) pushes
// the error code as a word too (8 bytes), with the IP of the faulting instruction; IRET (16-bit)
// returns after the INT.
TEST_F(Modes, Protected16IdtGates) {
  auto vcpu = guest().add_protected16_vcpu(modes_gate16_start, modes_gate16_end);
  const std::uint64_t base = guest().segment16();
  // An IDT of our own in the 16-bit segment: a copy of the framework's (its stubs report any
  // other vector) with three 16-bit gates to this blob's handlers.
  constexpr std::uint64_t kIdtOffset = 0x9000;
  kvm_sregs sregs = vcpu.get_sregs();
  auto* idt = reinterpret_cast<std::uint64_t*>(guest().host_ptr(base + kIdtOffset, 256 * 8));
  std::memcpy(idt, guest().host_ptr(sregs.idt.base, 256 * 8), 256 * 8);
  const auto gate16 = [&](const char* handler, std::uint64_t type) {
    return offset16(modes_gate16_start, handler) | (std::uint64_t{sel::kCode16} << 16) | (type << 40);
  };
  idt[0x43] = gate16(modes_gate16_int_handler, 0x86);   // P, DPL 0, 16-bit interrupt gate
  idt[0x44] = gate16(modes_gate16_trap_handler, 0x87);  // P, DPL 0, 16-bit trap gate
  idt[x86::kGp] = gate16(modes_gate16_gp_handler, 0x86);
  sregs.idt.base = base + kIdtOffset;
  sregs.idt.limit = 256 * 8 - 1;
  vcpu.set_sregs(sregs);

  const HostUcall in = guest().run(vcpu);
  KVMX_ASSERT_SYNC(in, 1);
  EXPECT_EQ(in.values[1], offset16(modes_gate16_start, modes_gate16_ret1)) << "pushed IP";
  EXPECT_EQ(in.values[2], sel::kCode16) << "pushed CS";
  EXPECT_EQ(in.values[3] & kIf, kIf) << "pushed FLAGS " << std::hex << in.values[3];
  EXPECT_EQ(in.values[4] & kIf, 0u) << "interrupt gate: FLAGS in the handler " << std::hex << in.values[4];
  EXPECT_EQ(in.values[5], kStackTop16 - 6) << "SP in the handler: a 6-byte frame";

  const HostUcall back = guest().run(vcpu);
  KVMX_ASSERT_SYNC(back, 2);
  EXPECT_EQ(back.values[1] & kIf, kIf) << "FLAGS after IRET " << std::hex << back.values[1];
  EXPECT_EQ(back.values[2], kStackTop16) << "SP after IRET";

  const HostUcall trap = guest().run(vcpu);
  KVMX_ASSERT_SYNC(trap, 3);
  EXPECT_EQ(trap.values[1], offset16(modes_gate16_start, modes_gate16_ret2)) << "pushed IP";
  EXPECT_EQ(trap.values[2], sel::kCode16) << "pushed CS";
  EXPECT_EQ(trap.values[4] & kIf, kIf) << "trap gate: FLAGS in the handler " << std::hex << trap.values[4];
  EXPECT_EQ(trap.values[5], kStackTop16 - 6) << "SP in the handler";
  KVMX_ASSERT_SYNC(guest().run(vcpu), 4);

  const HostUcall gp = guest().run(vcpu);
  KVMX_ASSERT_SYNC(gp, 5);
  EXPECT_EQ(gp.values[1], 0x78u) << "error code: the selector without its RPL";
  EXPECT_EQ(gp.values[2], offset16(modes_gate16_start, modes_gate16_gp)) << "pushed IP: the faulting MOV";
  EXPECT_EQ(gp.values[3], sel::kCode16) << "pushed CS";
  EXPECT_EQ(gp.values[4] & kIf, kIf) << "pushed FLAGS " << std::hex << gp.values[4];
  EXPECT_EQ(gp.values[5], kStackTop16 - 8) << "SP in the handler: an 8-byte frame";
  KVMX_EXPECT_EXIT(vcpu.run(), exit::Hlt);
}

struct Prot32Case {
  Paging paging;
  const char* name;
};

class Protected32 : public GuestTest, public ::testing::WithParamInterface<Prot32Case> {};

// Guards: 32-bit protected mode with paging off, 2-level paging and PAE: CR0.PG/CR4.PAE as set,
// 32-bit operand size, CR3 as set, linear addresses above 1 MiB reach the identity-mapped memory,
// and address 0 is memory without paging but a not-present #PF (CR2 0, error code 0, EIP of the
// load) with paging; KVM_GET_SREGS agrees and EFER.LMA stays clear.
TEST_P(Protected32, StateAndAddressing) {
  const Paging paging = GetParam().paging;
  auto vcpu = guest().add_protected32_vcpu(modes_prot32, paging);
  const std::uint64_t word = guest().alloc(8);
  const std::uint32_t host_word = 0xc0ffee11;
  std::memcpy(guest().host_ptr(word, 4), &host_word, 4);
  kvm_regs regs = vcpu.get_regs();
  regs.rdi = word;
  vcpu.set_regs(regs);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  const std::uint64_t cr0 = uc.values[1], cr4 = uc.values[2];
  EXPECT_TRUE(cr0 & x86::kCr0Pe);
  EXPECT_EQ(bool(cr0 & x86::kCr0Pg), paging != Paging::none) << std::hex << cr0;
  EXPECT_EQ(bool(cr4 & x86::kCr4Pae), paging == Paging::pae) << std::hex << cr4;
  EXPECT_EQ(uc.values[3], 4u) << "bytes pushed by CALL";
  EXPECT_EQ(uc.values[4], sel::kCode32) << "CS";

  kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_EQ(sregs.cs.db, 1);
  EXPECT_EQ(sregs.cs.l, 0);
  EXPECT_EQ(bool(sregs.cr0 & x86::kCr0Pg), paging != Paging::none);
  EXPECT_EQ(bool(sregs.cr4 & x86::kCr4Pae), paging == Paging::pae);
  EXPECT_EQ(sregs.efer & (x86::kEferLma | x86::kEferLme), 0u);

  const HostUcall second = guest().run(vcpu);
  KVMX_ASSERT_SYNC(second, 2);
  if (paging != Paging::none) {
    EXPECT_EQ(second.values[1], guest().legacy_cr3(paging)) << "CR3";
  }
  EXPECT_EQ(second.values[2], host_word) << "dword read through the address in EDI";
  std::uint32_t guest_word;
  std::memcpy(&guest_word, guest().host_ptr(word + 4, 4), 4);
  EXPECT_EQ(guest_word, 0x5a5a5a5au);

  const HostUcall third = guest().run(vcpu);
  if (paging == Paging::none) {
    KVMX_ASSERT_SYNC(third, 3);
    KVMX_EXPECT_EXIT(vcpu.run(), exit::Hlt);
  } else {
    KVMX_ASSERT_GUEST_EXCEPTION(third, x86::kPf);
    EXPECT_EQ(third.values[1], 0u) << "error code: read of a not-present page";
    EXPECT_EQ(third.values[2], reinterpret_cast<std::uint64_t>(modes_prot32_null_read)) << "EIP";
    EXPECT_EQ(third.values[3], 0u) << "CR2";
  }
}

INSTANTIATE_TEST_SUITE_P(Paging, Protected32,
                         ::testing::Values(Prot32Case{Paging::none, "NoPaging"}, Prot32Case{Paging::two_level, "TwoLevel"},
                                           Prot32Case{Paging::pae, "Pae"}),
                         [](const auto& info) { return std::string(info.param.name); });

// Guards: EFER.LMA is the CPU's: KVM_SET_MSRS cannot set it while paging is off (KVM's set_efer()
// keeps LMA on host writes too; only KVM_SET_SREGS sets it, with CR0.PG and CR4.PAE). A shadow MMU
// that believed such an LMA would enter IA-32e mode on a legacy root. The guest then runs in
// 32-bit protected mode as before. (LME stays clear here: in-tree kvm_amd under QEMU TCG hangs
// the test host's CPU running this 32-bit guest with EFER.LME set and paging off.)
TEST_F(Modes, HostEferWriteCannotSetLma) {
  auto vcpu = guest().add_protected32_vcpu(modes_prot32, Paging::none);
  const std::uint64_t word = guest().alloc(8);
  kvm_regs regs = vcpu.get_regs();
  regs.rdi = word;
  vcpu.set_regs(regs);
  vcpu.set_msr(x86::kMsrEfer, x86::kEferLma);
  EXPECT_EQ(vcpu.get_msr(x86::kMsrEfer) & (x86::kEferLme | x86::kEferLma), 0u);
  EXPECT_EQ(vcpu.get_sregs().efer & x86::kEferLma, 0u);

  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_TRUE(uc.values[1] & x86::kCr0Pe);
  EXPECT_FALSE(uc.values[1] & x86::kCr0Pg);
  EXPECT_EQ(uc.values[4], sel::kCode32) << "CS";
  KVMX_ASSERT_SYNC(guest().run(vcpu), 2);
  KVMX_ASSERT_SYNC(guest().run(vcpu), 3);
  KVMX_EXPECT_EXIT(vcpu.run(), exit::Hlt);
}

// Guards: the guest turning CR0.PG on and off in 32-bit protected mode (a CR0 write KVM must
// track: it switches the MMU between paging and non-paging contexts) is seen by guest and host.
TEST_F(Modes, GuestTogglesPaging) {
  auto vcpu = guest().add_protected32_vcpu(modes_toggle_paging, Paging::none);
  kvm_regs regs = vcpu.get_regs();
  regs.rdi = guest().legacy_cr3(Paging::two_level);
  vcpu.set_regs(regs);
  const HostUcall on = guest().run(vcpu);
  KVMX_ASSERT_SYNC(on, 1);
  EXPECT_TRUE(on.values[1] & x86::kCr0Pg);
  kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_TRUE(sregs.cr0 & x86::kCr0Pg);
  EXPECT_EQ(sregs.cr3, guest().legacy_cr3(Paging::two_level));
  const HostUcall off = guest().run(vcpu);
  KVMX_ASSERT_SYNC(off, 2);
  EXPECT_FALSE(off.values[1] & x86::kCr0Pg);
  sregs = vcpu.get_sregs();
  EXPECT_FALSE(sregs.cr0 & x86::kCr0Pg);
  KVMX_EXPECT_EXIT(vcpu.run(), exit::Hlt);
}

// Guards: 64-bit mode as the host sets it up: CR0.PG, CR4.PAE, EFER.LME|LMA, CS.L = 1 seen by
// the guest and by KVM_GET_SREGS, and a virtual address above 4 GiB translated by the 4-level
// tables onto ordinary memory.
TEST_F(Modes, LongMode) {
  constexpr std::uint64_t kAlias = 0x12345678000ull;
  const std::uint64_t target = guest().alloc(kvmx::kPageSize);
  guest().map(kAlias, target);
  auto vcpu = guest().add_vcpu(modes_suite::guest_long_mode, {kAlias + 0x10});
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_TRUE(uc.values[1] & x86::kCr0Pg);
  EXPECT_TRUE(uc.values[2] & x86::kCr4Pae);
  EXPECT_EQ(uc.values[3] & (x86::kEferLme | x86::kEferLma), x86::kEferLme | x86::kEferLma);
  const kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_EQ(sregs.cs.l, 1);
  EXPECT_EQ(sregs.cs.db, 0);
  EXPECT_EQ(sregs.efer & (x86::kEferLme | x86::kEferLma), x86::kEferLme | x86::kEferLma);
  const HostUcall wrote = guest().run(vcpu);
  KVMX_ASSERT_SYNC(wrote, 2);
  EXPECT_EQ(wrote.values[1], 0x0123456789abcdefull);
  std::uint64_t seen;
  std::memcpy(&seen, guest().host_ptr(target + 0x10, 8), 8);
  EXPECT_EQ(seen, 0x0123456789abcdefull);
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: the guest switching itself real mode -> 32-bit protected mode (CR0.PE, far jump) ->
// IA-32e compatibility mode (CR4.PAE, EFER.LME, CR0.PG: EFER.LMA set by the CPU) -> 64-bit mode
// (far jump to an L=1 segment), with KVM_GET_SREGS following each step.
TEST_F(Modes, GuestSwitchesRealToProtectedToLong) {
  KVMX_REQUIRE_REAL_MODE(guest().vm());
  auto vcpu = guest().add_real_mode_vcpu(modes_switch_start, modes_switch_end);
  kvm_regs regs = vcpu.get_regs();
  regs.rdi = guest().cr3();
  vcpu.set_regs(regs);

  const HostUcall real = guest().run(vcpu);
  KVMX_ASSERT_SYNC(real, 1);
  EXPECT_FALSE(real.values[1] & x86::kCr0Pe);
  kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_FALSE(sregs.cr0 & x86::kCr0Pe);

  const HostUcall prot = guest().run(vcpu);
  KVMX_ASSERT_SYNC(prot, 2);
  EXPECT_TRUE(prot.values[1] & x86::kCr0Pe);
  EXPECT_EQ(prot.values[2], sel::kCode32);
  sregs = vcpu.get_sregs();
  EXPECT_TRUE(sregs.cr0 & x86::kCr0Pe);
  EXPECT_EQ(sregs.cs.selector, sel::kCode32);
  EXPECT_EQ(sregs.cs.db, 1);
  EXPECT_EQ(sregs.ds.selector, sel::kData32);
  EXPECT_EQ(sregs.efer & x86::kEferLma, 0u);

  const HostUcall compat = guest().run(vcpu);
  KVMX_ASSERT_SYNC(compat, 3);
  EXPECT_EQ(compat.values[1] & (x86::kEferLme | x86::kEferLma), x86::kEferLme | x86::kEferLma) << "EFER";
  EXPECT_EQ(compat.values[2], sel::kCode32) << "still in the 32-bit code segment";
  sregs = vcpu.get_sregs();
  EXPECT_EQ(sregs.efer & (x86::kEferLme | x86::kEferLma), x86::kEferLme | x86::kEferLma);
  EXPECT_EQ(sregs.cs.l, 0) << "compatibility mode";
  EXPECT_TRUE(sregs.cr0 & x86::kCr0Pg);

  const HostUcall longm = guest().run(vcpu);
  KVMX_ASSERT_SYNC(longm, 4);
  EXPECT_EQ(longm.values[2], sel::kCode64);
  EXPECT_TRUE(longm.values[3] & x86::kCr4Pae);
  EXPECT_EQ(longm.values[4], 0x123456789abcdef0ull) << "RDI after a 64-bit MOVABS";
  sregs = vcpu.get_sregs();
  EXPECT_EQ(sregs.cs.selector, sel::kCode64);
  EXPECT_EQ(sregs.cs.l, 1);
  EXPECT_EQ(sregs.cr3, guest().cr3());
  KVMX_EXPECT_EXIT(vcpu.run(), exit::Hlt);
}

// Real mode as a VM offers it (KVMX_CAP_REAL_MODE, uapi/linux/kvmx.h). The reset state's first
// instruction is at CS base 0xffff0000 (selector 0xf000), IP 0xfff0.
constexpr std::uint64_t kResetCsBase = 0xffff0000;
constexpr std::uint16_t kResetCsSelector = 0xf000;
constexpr std::uint64_t kResetIp = 0xfff0;
constexpr std::uint16_t kResetPort = 0x7e8;
// At the reset vector: mov $0x7e8, %dx; mov $0x1234, %ax; out %ax, %dx; hlt. Decoded with 16-bit
// operands (real mode) that is 8 bytes and a 2-byte OUT; with 32-bit operands both MOVs would take
// 4-byte immediates.
constexpr std::uint8_t kResetCode[] = {0xba, kResetPort & 0xff, kResetPort >> 8, 0xb8, 0x34, 0x12, 0xef, 0xf4};

// Memory (slot 1) for the 64 KiB below 4 GiB, with kResetCode at the reset vector.
void map_reset_vector(kvmx::test::GuestVm& g) {
  auto& slot = g.vm().add_memory(1, kResetCsBase, 0x10000);
  std::memcpy(slot.host() + kResetIp, kResetCode, sizeof kResetCode);
}

// The fields of two KVM_GET_REGS / KVM_GET_SREGS results that differ, by name; empty if none.
std::string differences(const kvm_regs& a, const kvm_regs& b) {
  static constexpr std::pair<const char*, __u64 kvm_regs::*> kFields[] = {
      {"rax", &kvm_regs::rax}, {"rbx", &kvm_regs::rbx}, {"rcx", &kvm_regs::rcx}, {"rdx", &kvm_regs::rdx},
      {"rsi", &kvm_regs::rsi}, {"rdi", &kvm_regs::rdi}, {"rsp", &kvm_regs::rsp}, {"rbp", &kvm_regs::rbp},
      {"r8", &kvm_regs::r8},   {"r9", &kvm_regs::r9},   {"r10", &kvm_regs::r10}, {"r11", &kvm_regs::r11},
      {"r12", &kvm_regs::r12}, {"r13", &kvm_regs::r13}, {"r14", &kvm_regs::r14}, {"r15", &kvm_regs::r15},
      {"rip", &kvm_regs::rip}, {"rflags", &kvm_regs::rflags}};
  std::string out;
  for (const auto& [name, field] : kFields) {
    if (a.*field != b.*field) out += std::string(" ") + name;
  }
  return out;
}

std::string differences(const kvm_sregs& a, const kvm_sregs& b) {
  std::string out;
  const auto differ = [&](const char* name, const auto& x, const auto& y) {
    if (std::memcmp(&x, &y, sizeof x) != 0) out += std::string(" ") + name;
  };
  differ("cs", a.cs, b.cs);
  differ("ds", a.ds, b.ds);
  differ("es", a.es, b.es);
  differ("fs", a.fs, b.fs);
  differ("gs", a.gs, b.gs);
  differ("ss", a.ss, b.ss);
  differ("tr", a.tr, b.tr);
  differ("ldt", a.ldt, b.ldt);
  differ("gdt", a.gdt, b.gdt);
  differ("idt", a.idt, b.idt);
  differ("cr0", a.cr0, b.cr0);
  differ("cr2", a.cr2, b.cr2);
  differ("cr3", a.cr3, b.cr3);
  differ("cr4", a.cr4, b.cr4);
  differ("cr8", a.cr8, b.cr8);
  differ("efer", a.efer, b.efer);
  differ("apic_base", a.apic_base, b.apic_base);
  differ("interrupt_bitmap", a.interrupt_bitmap, b.interrupt_bitmap);
  return out;
}

// KVM_EXIT_FAIL_ENTRY's hardware_entry_failure_reason for a state VMX refuses: basic exit reason
// 33 (invalid guest state) with bit 31 (VM-entry failure).
constexpr std::uint64_t kInvalidGuestState = 0x80000021;

// kvmx only: in-tree KVM answers 0 to every KVMX_CAP_*.
class RealModeCap : public SystemTest {
 protected:
  void SetUp() override {
    SystemTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    if (!has_cap(KVMX_CAP_KVMX)) {
      GTEST_SKIP() << "needs KVMX_CAP_KVMX: in-tree KVM has no KVMX_CAP_REAL_MODE and always runs real mode";
    }
  }
};

// A guest VM whose vCPUs do not run real mode: the default VM if it does not, else one set (before
// its first vCPU) to an offered MMU mode without real mode. Skips where every VM runs real mode.
class WithoutRealMode : public GuestTest {
 protected:
  void SetUp() override {
    GuestTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    if (!guest().vm().runs_real_mode()) return;
    if (!has_cap(KVMX_CAP_KVMX)) GTEST_SKIP() << "in-tree KVM runs real mode in every VM (KVMX_CAP_KVMX is 0)";
    const int offered = sys().check_extension(KVMX_CAP_MMU_MODE);
    const int real_mode = sys().check_extension(KVMX_CAP_REAL_MODE);
    const int without = offered & ~real_mode;
    if (without == 0) {
      GTEST_SKIP() << "every MMU mode offered runs real mode (KVMX_CAP_MMU_MODE mask " << offered
                   << ", KVMX_CAP_REAL_MODE mask " << real_mode << ")";
    }
    const std::uint32_t mode = (without & KVMX_MMU_MODE_TDP) ? KVMX_MMU_MODE_TDP : KVMX_MMU_MODE_SHADOW;
    KVMX_ASSERT_OK(guest().vm().try_enable_cap(KVMX_CAP_MMU_MODE, mode)) << "mode " << mode;
    ASSERT_FALSE(guest().vm().runs_real_mode())
        << "mode " << mode << " is not in KVMX_CAP_REAL_MODE mask " << real_mode;
  }
};

// Guards: a vCPU in its reset state runs real mode from the reset vector: the first instructions
// (at CS base 0xffff0000, IP 0xfff0) decode with 16-bit operands (a 2-byte OUT of AX to the port
// in DX), and HLT exits with IP 0xfff8 and CR0.PE still clear.
TEST_F(Modes, ResetStateRunsRealMode) {
  KVMX_REQUIRE_REAL_MODE(guest().vm());
  map_reset_vector(guest());
  auto vcpu = guest().add_reset_vcpu();
  const kvm_sregs reset = vcpu.get_sregs();
  ASSERT_EQ(reset.cr0 & x86::kCr0Pe, 0u) << "CR0 " << std::hex << reset.cr0;
  EXPECT_EQ(reset.cs.base, kResetCsBase);
  EXPECT_EQ(reset.cs.selector, kResetCsSelector);
  EXPECT_EQ(vcpu.get_regs().rip, kResetIp);

  const kvmx::Exit e = vcpu.run();
  KVMX_ASSERT_EXIT(e, exit::IoOut);
  const auto& out = std::get<exit::IoOut>(e);
  EXPECT_EQ(out.port, kResetPort);
  EXPECT_EQ(out.size, 2u) << "OUT with 16-bit operands";
  EXPECT_EQ(out.value(), 0x1234u);
  KVMX_ASSERT_EXIT(vcpu.run(), exit::Hlt);
  EXPECT_EQ(vcpu.get_regs().rip, kResetIp + sizeof kResetCode) << "IP after the HLT";
  const kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_EQ(sregs.cr0 & x86::kCr0Pe, 0u);
  EXPECT_EQ(sregs.cs.base, kResetCsBase);
}

// Guards: a guest in 32-bit protected mode that clears CR0.PE itself goes on in real mode: the
// code after the MOV to CR0 runs (still as 32-bit code: no segment was reloaded) and sees PE
// clear, as KVM_GET_SREGS does.
TEST_F(Modes, GuestClearsPe) {
  KVMX_REQUIRE_REAL_MODE(guest().vm());
  auto vcpu = guest().add_protected32_vcpu(modes_clear_pe, Paging::none);
  const HostUcall prot = guest().run(vcpu);
  KVMX_ASSERT_SYNC(prot, 1);
  EXPECT_TRUE(prot.values[1] & x86::kCr0Pe) << "CR0 " << std::hex << prot.values[1];
  const HostUcall real = guest().run(vcpu);
  KVMX_ASSERT_SYNC(real, 2);
  EXPECT_FALSE(real.values[1] & x86::kCr0Pe) << "CR0 " << std::hex << real.values[1];
  const kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_FALSE(sregs.cr0 & x86::kCr0Pe);
  EXPECT_EQ(sregs.cs.selector, sel::kCode32) << "CS is not reloaded";
  KVMX_EXPECT_EXIT(vcpu.run(), exit::Hlt);
}

// Guards: KVMX_CAP_REAL_MODE agrees with KVMX_CAP_MMU_MODE. On /dev/kvmx its mask holds only
// offered MMU modes; on a VM fd it is 1 exactly when the VM's mode is in that mask, for a new VM
// (the module default, which may be a mode without vCPUs) and for a VM set to each offered mode;
// Vm::runs_real_mode() gives the same answer.
TEST_F(RealModeCap, ConsistentWithMmuModes) {
  const int offered = sys().check_extension(KVMX_CAP_MMU_MODE);
  const int real_mode = sys().check_extension(KVMX_CAP_REAL_MODE);
  EXPECT_GE(real_mode, 0);
  EXPECT_EQ(real_mode & ~offered, 0) << "KVMX_CAP_REAL_MODE mask " << real_mode << ", KVMX_CAP_MMU_MODE mask "
                                     << offered;
  const auto check_vm = [&](const kvmx::Vm& vm, const std::string& what) {
    const int mode = vm.check_extension(KVMX_CAP_MMU_MODE);
    const int answer = vm.check_extension(KVMX_CAP_REAL_MODE);
    EXPECT_EQ(answer, (real_mode & mode) ? 1 : 0)
        << what << ": MMU mode " << mode << ", KVMX_CAP_REAL_MODE mask " << real_mode;
    EXPECT_EQ(vm.runs_real_mode(), answer == 1) << what;
  };
  check_vm(sys().create_vm(), "a new VM");
  for (std::uint32_t mode : {KVMX_MMU_MODE_TDP, KVMX_MMU_MODE_SHADOW}) {
    if (!(offered & mode)) continue;
    kvmx::Vm vm = sys().create_vm();
    KVMX_ASSERT_OK(vm.try_enable_cap(KVMX_CAP_MMU_MODE, mode)) << "mode " << mode;
    ASSERT_EQ(vm.check_extension(KVMX_CAP_MMU_MODE), int(mode));
    check_vm(vm, "a VM set to mode " + std::to_string(mode));
  }
}

// Guards: a vCPU in its reset state (CR0.PE clear) in a VM without real mode: KVM_RUN exits
// KVM_EXIT_FAIL_ENTRY with 0x80000021 (VM-entry failure, invalid guest state) and changes nothing
// of KVM_GET_REGS/SREGS, again on a second try; after KVM_SET_SREGS to 32-bit protected mode the
// same vCPU runs a guest to its end.
TEST_F(WithoutRealMode, ResetStateFailsEntryUntilProtectedMode) {
  map_reset_vector(guest());  // so that an entry that should have failed halts instead
  auto vcpu = guest().add_reset_vcpu();
  const kvm_regs regs = vcpu.get_regs();
  const kvm_sregs sregs = vcpu.get_sregs();
  ASSERT_EQ(sregs.cr0 & x86::kCr0Pe, 0u) << "CR0 " << std::hex << sregs.cr0;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    SCOPED_TRACE("KVM_RUN " + std::to_string(attempt));
    const kvmx::Exit e = vcpu.run();
    KVMX_ASSERT_EXIT(e, exit::FailEntry);
    EXPECT_EQ(std::get<exit::FailEntry>(e).hardware_reason, kInvalidGuestState);
    EXPECT_EQ(differences(regs, vcpu.get_regs()), "") << "KVM_GET_REGS changed";
    EXPECT_EQ(differences(sregs, vcpu.get_sregs()), "") << "KVM_GET_SREGS changed";
  }

  guest().enter_protected32(vcpu, modes_prot32, Paging::none);
  const std::uint64_t word = guest().alloc(8);
  const std::uint32_t host_word = 0x600d600d;
  std::memcpy(guest().host_ptr(word, 4), &host_word, 4);
  kvm_regs prot = vcpu.get_regs();
  prot.rdi = word;
  vcpu.set_regs(prot);
  const HostUcall first = guest().run(vcpu);
  KVMX_ASSERT_SYNC(first, 1);
  EXPECT_TRUE(first.values[1] & x86::kCr0Pe) << "CR0 " << std::hex << first.values[1];
  EXPECT_EQ(first.values[4], sel::kCode32) << "CS";
  const HostUcall second = guest().run(vcpu);
  KVMX_ASSERT_SYNC(second, 2);
  EXPECT_EQ(second.values[2], host_word) << "dword read through the address in EDI";
  KVMX_ASSERT_SYNC(guest().run(vcpu), 3);
  KVMX_EXPECT_EXIT(vcpu.run(), exit::Hlt);
}

// Guards: in a VM without real mode, a guest in 32-bit protected mode that clears CR0.PE itself
// gets KVM_EXIT_FAIL_ENTRY with 0x80000021 at the next entry, with RIP after the MOV to CR0 and
// CR0.PE clear in KVM_GET_SREGS; KVM_SET_SREGS with PE set again lets it run on from there.
TEST_F(WithoutRealMode, GuestClearingPeFailsEntry) {
  auto vcpu = guest().add_protected32_vcpu(modes_clear_pe, Paging::none);
  const HostUcall prot = guest().run(vcpu);
  KVMX_ASSERT_SYNC(prot, 1);
  EXPECT_TRUE(prot.values[1] & x86::kCr0Pe) << "CR0 " << std::hex << prot.values[1];

  const kvmx::Exit e = vcpu.run();
  KVMX_ASSERT_EXIT(e, exit::FailEntry);
  EXPECT_EQ(std::get<exit::FailEntry>(e).hardware_reason, kInvalidGuestState);
  const kvm_regs regs = vcpu.get_regs();
  EXPECT_EQ(regs.rip, reinterpret_cast<std::uint64_t>(modes_clear_pe_done)) << "RIP after the MOV to CR0";
  kvm_sregs sregs = vcpu.get_sregs();
  EXPECT_EQ(sregs.cr0 & x86::kCr0Pe, 0u) << "CR0 " << std::hex << sregs.cr0;
  EXPECT_EQ(sregs.cs.selector, sel::kCode32);

  sregs.cr0 |= x86::kCr0Pe;
  vcpu.set_sregs(sregs);
  const HostUcall again = guest().run(vcpu);
  KVMX_ASSERT_SYNC(again, 2);
  EXPECT_TRUE(again.values[1] & x86::kCr0Pe) << "CR0 " << std::hex << again.values[1];
  KVMX_EXPECT_EXIT(vcpu.run(), exit::Hlt);
}

}  // namespace
