// regs: register state through KVM_GET/SET_{REGS,SREGS,FPU,XSAVE,XCRS,MSRS,CPUID2}, both as
// round trips and as what the guest observes.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "kvmx/guest/x86.h"
#include "kvmx/test/guest.hpp"
#include "regs_guest.hpp"

namespace {

using namespace regs_suite;
using kvmx::test::GuestTest;
using kvmx::test::HostUcall;
namespace exit = kvmx::exit;
namespace op = kvmx::op;
namespace x86 = kvmx::x86;

using Regs = GuestTest;

constexpr std::uint32_t kSysenterCs = 0x174, kSysenterEsp = 0x175, kSysenterEip = 0x176;
constexpr std::uint32_t kStar = 0xc0000081, kLstar = 0xc0000082, kCstar = 0xc0000083, kSfmask = 0xc0000084;
constexpr std::uint32_t kKernelGsBase = 0xc0000102, kTsc = 0x10;

__u64* gpr(kvm_regs& r, int i) {
  __u64* const all[] = {&r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi, &r.rsp, &r.rbp,
                        &r.r8,  &r.r9,  &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15};
  return all[i];
}

// Guards: KVM_SET_REGS then KVM_GET_REGS gives back every field.
TEST_F(Regs, RegsRoundTrip) {
  auto vcpu = guest().add_vcpu(regs_guest_report_gprs);
  kvm_regs set{};
  for (int i = 0; i < 16; ++i) *gpr(set, i) = 0x0101010101010101ull * (i + 1);
  set.rip = 0x401000;
  set.rflags = x86::kRflagsFixed | 0x8d5;  // CF PF AF ZF SF OF
  vcpu.set_regs(set);
  const kvm_regs got = vcpu.get_regs();
  EXPECT_EQ(std::memcmp(&set, &got, sizeof set), 0);
}

// Guards: the guest starts with exactly the RAX..R15 and RFLAGS the host set (RIP is the entry).
TEST_F(Regs, GuestSeesRegsSetByHost) {
  auto vcpu = guest().add_vcpu(regs_guest_report_gprs);
  kvm_regs regs = vcpu.get_regs();
  const std::uint64_t rsp = regs.rsp;
  for (int i = 0; i < 16; ++i) *gpr(regs, i) = 0xfedcba9800000000ull | (i * 0x111);
  regs.rsp = rsp;
  regs.rflags = x86::kRflagsFixed | 0x8d5;
  vcpu.set_regs(regs);
  KVMX_ASSERT_SYNC(guest().run(vcpu), 1);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(guest().read_global(g_gprs[i]), *gpr(regs, i)) << "GPR " << i;
  }
  EXPECT_EQ(guest().read_global(g_gprs[16]) & 0xfff, x86::kRflagsFixed | 0x8d5) << "RFLAGS";
}

// Guards: registers the guest wrote are what KVM_GET_REGS reports after its HLT exit, with RIP
// past the HLT.
TEST_F(Regs, HostSeesRegsWrittenByGuest) {
  auto vcpu = guest().add_vcpu(regs_guest_load_gprs);
  KVMX_ASSERT_EXIT(vcpu.run(), exit::Hlt);
  kvm_regs regs = vcpu.get_regs();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(*gpr(regs, i), 0x1000u * (i + 1) + 0xab) << "GPR " << i;
}

// Guards: KVM_SET_SREGS then KVM_GET_SREGS keeps segment bases, CR2, CR8, descriptor tables and
// EFER, and a second GET is identical to the first.
TEST_F(Regs, SregsRoundTrip) {
  auto vcpu = guest().add_vcpu(regs_guest_report_gprs);
  kvm_sregs set = vcpu.get_sregs();
  set.fs.base = 0x123456000;
  set.gs.base = 0xffff800000001000ull;
  set.cr2 = 0xdead000;
  set.cr8 = 5;
  set.idt.limit = 0x7ff;
  vcpu.set_sregs(set);
  const kvm_sregs got = vcpu.get_sregs();
  EXPECT_EQ(got.fs.base, set.fs.base);
  EXPECT_EQ(got.gs.base, set.gs.base);
  EXPECT_EQ(got.cr2, set.cr2);
  EXPECT_EQ(got.cr8, set.cr8);
  EXPECT_EQ(got.idt.limit, set.idt.limit);
  EXPECT_EQ(got.idt.base, set.idt.base);
  EXPECT_EQ(got.gdt.base, set.gdt.base);
  EXPECT_EQ(got.efer, set.efer);
  EXPECT_EQ(got.cr0, set.cr0);
  EXPECT_EQ(got.cr3, set.cr3);
  EXPECT_EQ(got.cr4, set.cr4);
  EXPECT_EQ(got.cs.selector, set.cs.selector);
  EXPECT_EQ(got.cs.l, 1);
  const kvm_sregs again = vcpu.get_sregs();
  EXPECT_EQ(std::memcmp(&got, &again, sizeof got), 0);
}

// Guards: EFER set through KVM_SET_SREGS (NXE here) is what the guest reads with RDMSR.
TEST_F(Regs, EferFromSregsSeenByGuest) {
  const auto cpuid = sys().supported_cpuid();
  const kvm_cpuid_entry2* ext = cpuid.find(0x80000001);
  if (!ext || !(ext->edx & (1u << 20))) GTEST_SKIP() << "no NX in KVM_GET_SUPPORTED_CPUID";
  auto vcpu = guest().add_vcpu(guest_read_efer);
  kvm_sregs sregs = vcpu.get_sregs();
  sregs.efer |= x86::kEferNxe;
  vcpu.set_sregs(sregs);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1] & (x86::kEferNxe | x86::kEferLme | x86::kEferLma),
            x86::kEferNxe | x86::kEferLme | x86::kEferLma);
}

// Guards: EFER.LMA is the CPU's: KVM_SET_MSRS cannot clear it in long mode (KVM's set_efer() keeps
// LMA on host writes too), and the guest keeps running in long mode and reads LMA set.
TEST_F(Regs, HostEferWriteCannotClearLma) {
  auto vcpu = guest().add_vcpu(guest_read_efer);
  const std::uint64_t efer = vcpu.get_msr(x86::kMsrEfer);
  ASSERT_TRUE(efer & x86::kEferLma);
  vcpu.set_msr(x86::kMsrEfer, efer & ~x86::kEferLma);
  EXPECT_EQ(vcpu.get_msr(x86::kMsrEfer), efer);
  EXPECT_TRUE(vcpu.get_sregs().efer & x86::kEferLma);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1] & (x86::kEferLme | x86::kEferLma), x86::kEferLme | x86::kEferLma);
}

// The legacy (FXSAVE) area of the XSAVE buffer: MXCSR at 24, XMM0-15 from 160, XSTATE_BV at 512.
constexpr std::size_t kXsaveMxcsr = 24, kXsaveXmm = 160, kXsaveXstateBv = 512;

std::uint32_t xsave_mxcsr(const kvm_xsave& xsave) {
  std::uint32_t v;
  std::memcpy(&v, reinterpret_cast<const std::uint8_t*>(xsave.region) + kXsaveMxcsr, 4);
  return v;
}

// Guards: KVM_SET_FPU then KVM_GET_FPU keeps the x87 registers, FCW/FSW/FTW, last opcode/IP/DP
// and XMM0-15; MXCSR is not part of the transfer in either direction.
TEST_F(Regs, FpuRoundTrip) {
  auto vcpu = guest().add_vcpu(regs_guest_report_gprs);
  kvm_fpu fpu = vcpu.get_fpu();
  fpu.fcw = 0x27f;
  fpu.fsw = 0x3800;  // TOP = 7
  fpu.ftwx = 0x80;   // abridged tag: ST(7) valid
  fpu.last_opcode = 0x5d9;
  fpu.last_ip = 0x401234;
  fpu.last_dp = 0x602468;
  for (int i = 0; i < 8; ++i) {
    for (int b = 0; b < 10; ++b) fpu.fpr[i][b] = static_cast<__u8>(0xa0 + i * 10 + b);
  }
  for (int i = 0; i < 16; ++i) {
    for (int b = 0; b < 16; ++b) fpu.xmm[i][b] = static_cast<__u8>(i * 16 + b);
  }
  // KVM copies neither way between kvm_fpu.mxcsr and the guest's MXCSR:
  // kvm_arch_vcpu_ioctl_set_fpu/get_fpu (x86.c, 6.1 and 6.12) move only the fields above, and
  // KVM_GET_FPU returns a kzalloc'ed struct, so MXCSR reads back as 0. Hence a value with reserved
  // bits set is accepted, and the guest's MXCSR stays as KVM_SET_XSAVE left it.
  fpu.mxcsr = 0xffff7fc0;
  // Prime through KVM_SET_XSAVE first, as a VMM restoring with both ioctls does: KVM_GET_XSAVE
  // reports a component whose XSTATE_BV bit is clear from the initial state rather than from the
  // buffer, so only with x87/SSE marked present does it show what KVM_SET_FPU left there.
  constexpr std::uint32_t kPrimedMxcsr = 0x1f80 | 0x6000;  // round toward zero
  const bool xsave = has_cap(KVM_CAP_XSAVE);
  if (xsave) {
    auto buf = std::make_unique<kvm_xsave>();
    vcpu.ioctl(op::get_xsave, buf.get());
    auto* bytes = reinterpret_cast<std::uint8_t*>(buf->region);
    std::memcpy(bytes + kXsaveMxcsr, &kPrimedMxcsr, 4);
    bytes[kXsaveXstateBv] |= 0x3;
    vcpu.ioctl(op::set_xsave, buf.get());
  }
  vcpu.set_fpu(fpu);
  kvm_fpu got;
  std::memset(&got, 0x5a, sizeof got);  // KVM overwrites all of it, MXCSR and padding included
  vcpu.ioctl(op::get_fpu, &got);
  EXPECT_EQ(got.fcw, fpu.fcw);
  EXPECT_EQ(got.fsw, fpu.fsw);
  EXPECT_EQ(got.ftwx, fpu.ftwx);
  EXPECT_EQ(got.last_opcode, fpu.last_opcode);
  EXPECT_EQ(got.last_ip, fpu.last_ip);
  EXPECT_EQ(got.last_dp, fpu.last_dp);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(std::memcmp(got.fpr[i], fpu.fpr[i], 10), 0) << "ST" << i;
  EXPECT_EQ(std::memcmp(got.xmm, fpu.xmm, sizeof fpu.xmm), 0);
  EXPECT_EQ(got.mxcsr, 0u) << "KVM_GET_FPU does not report MXCSR";
  if (xsave) {
    auto buf = std::make_unique<kvm_xsave>();
    vcpu.ioctl(op::get_xsave, buf.get());
    EXPECT_EQ(xsave_mxcsr(*buf), kPrimedMxcsr) << "KVM_SET_FPU does not write MXCSR";
    EXPECT_EQ(std::memcmp(reinterpret_cast<const std::uint8_t*>(buf->region) + kXsaveXmm, fpu.xmm,
                          sizeof fpu.xmm),
              0)
        << "KVM_GET_XSAVE sees the XMM registers KVM_SET_FPU wrote";
  }
}

// Guards: XMM0 and MXCSR given through KVM_SET_XSAVE are what the guest sees at entry, and the
// XMM1 and MXCSR the guest loads are what KVM_GET_FPU and KVM_GET_XSAVE report after its HLT.
TEST_F(Regs, GuestXmmAndMxcsrFromXsave) {
  // KVM_SET_XSAVE, not KVM_SET_FPU: KVM_SET_FPU writes the legacy area but not XSTATE_BV, which is
  // 0 on a fresh vCPU, so on an XSAVE host the XRSTOR at KVM_RUN puts x87/SSE in their initial
  // state and the guest sees zeroed XMM registers (seen with KVM 6.1 on SVM). That is why VMMs
  // restore with KVM_SET_XSAVE when they have it.
  KVMX_REQUIRE_CAP(KVM_CAP_XSAVE);
  auto vcpu = guest().add_vcpu(guest_xmm);
  auto xsave = std::make_unique<kvm_xsave>();
  vcpu.ioctl(op::get_xsave, xsave.get());
  auto* bytes = reinterpret_cast<std::uint8_t*>(xsave->region);
  std::uint8_t xmm[16][16];
  for (int i = 0; i < 16; ++i) {
    for (int b = 0; b < 16; ++b) xmm[i][b] = static_cast<std::uint8_t>(0x30 + i * 16 + b);
  }
  std::memcpy(bytes + kXsaveXmm, xmm, sizeof xmm);
  const std::uint32_t mxcsr = 0x1f80 | 0x6000;  // all exceptions masked, round toward zero
  std::memcpy(bytes + kXsaveMxcsr, &mxcsr, 4);
  bytes[kXsaveXstateBv] |= 0x3;  // x87 and SSE present, else XRSTOR ignores their bytes
  vcpu.ioctl(op::set_xsave, xsave.get());

  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  std::uint64_t lo, hi;
  std::memcpy(&lo, xmm[0], 8);
  std::memcpy(&hi, xmm[0] + 8, 8);
  EXPECT_EQ(uc.values[1], lo) << "XMM0 low";
  EXPECT_EQ(uc.values[2], hi) << "XMM0 high";
  EXPECT_EQ(uc.values[3], mxcsr) << "MXCSR";

  KVMX_ASSERT_EXIT(vcpu.run(), exit::Hlt);
  const kvm_fpu after = vcpu.get_fpu();
  std::uint64_t xmm1_lo, xmm1_hi;
  std::memcpy(&xmm1_lo, after.xmm[1], 8);
  std::memcpy(&xmm1_hi, after.xmm[1] + 8, 8);
  EXPECT_EQ(xmm1_lo, kGuestXmm1);
  EXPECT_EQ(xmm1_hi, 0u) << "MOVQ to XMM zeroes the high half";
  vcpu.ioctl(op::get_xsave, xsave.get());
  EXPECT_EQ(xsave_mxcsr(*xsave), kGuestMxcsr);
  EXPECT_EQ(std::memcmp(bytes + kXsaveXmm + 16, after.xmm[1], 16), 0) << "XMM1 in KVM_GET_XSAVE";
}

// Guards: KVM_SET_XSAVE then KVM_GET_XSAVE keeps the legacy-area XMM registers and MXCSR.
TEST_F(Regs, XsaveRoundTrip) {
  KVMX_REQUIRE_CAP(KVM_CAP_XSAVE);
  auto vcpu = guest().add_vcpu(regs_guest_report_gprs);
  auto xsave = std::make_unique<kvm_xsave>();
  vcpu.ioctl(op::get_xsave, xsave.get());
  auto* bytes = reinterpret_cast<std::uint8_t*>(xsave->region);
  for (int i = 0; i < 16 * 16; ++i) bytes[kXsaveXmm + i] = static_cast<std::uint8_t>(0x55 ^ i);  // XMM0-15
  const std::uint32_t mxcsr = 0x1f80 | 0x40;  // DAZ
  std::memcpy(bytes + kXsaveMxcsr, &mxcsr, 4);
  // XSTATE_BV (XSAVE header, offset 512): components whose bit is clear are in their initial
  // state and their bytes are ignored, so mark x87 and SSE as present.
  bytes[kXsaveXstateBv] |= 0x3;
  vcpu.ioctl(op::set_xsave, xsave.get());
  auto got = std::make_unique<kvm_xsave>();
  vcpu.ioctl(op::get_xsave, got.get());
  const auto* got_bytes = reinterpret_cast<const std::uint8_t*>(got->region);
  EXPECT_EQ(std::memcmp(got_bytes + kXsaveXmm, bytes + kXsaveXmm, 256), 0);
  std::uint32_t got_mxcsr;
  std::memcpy(&got_mxcsr, got_bytes + kXsaveMxcsr, 4);
  EXPECT_EQ(got_mxcsr, mxcsr);
  const kvm_fpu fpu = vcpu.get_fpu();
  EXPECT_EQ(std::memcmp(fpu.xmm, bytes + kXsaveXmm, 256), 0) << "KVM_GET_FPU sees the same XMM registers";
}

// Guards: KVM_GET_XCRS reports XCR0 with x87 and SSE enabled, KVM_SET_XCRS takes it back, and
// an XCR0 without x87 (bit 0, architecturally required) is refused with EINVAL.
TEST_F(Regs, XcrsRoundTrip) {
  KVMX_REQUIRE_CAP(KVM_CAP_XCRS);
  auto vcpu = guest().add_vcpu(regs_guest_report_gprs);
  kvm_xcrs xcrs{};
  vcpu.ioctl(op::get_xcrs, &xcrs);
  ASSERT_GE(xcrs.nr_xcrs, 1u);
  EXPECT_EQ(xcrs.xcrs[0].xcr, 0u);
  EXPECT_TRUE(xcrs.xcrs[0].value & 1) << "x87";
  kvm_xcrs set{};
  set.nr_xcrs = 1;
  set.xcrs[0].xcr = 0;
  set.xcrs[0].value = 3;  // x87 | SSE
  KVMX_EXPECT_OK(vcpu.try_ioctl(op::set_xcrs, &set));
  kvm_xcrs got{};
  vcpu.ioctl(op::get_xcrs, &got);
  EXPECT_EQ(got.xcrs[0].value, 3u);
  set.xcrs[0].value = 2;  // SSE without x87
  KVMX_EXPECT_ERRNO(vcpu.try_ioctl(op::set_xcrs, &set), EINVAL);
}

// Guards: SYSENTER_* (32 bits on AMD, see below), STAR, LSTAR, CSTAR, SFMASK and KERNEL_GS_BASE round-trip through
// KVM_SET/GET_MSRS and are what the guest's RDMSR returns.
TEST_F(Regs, MsrsRoundTripAndGuestRdmsr) {
  auto vcpu = guest().add_vcpu(guest_rdmsrs, {kSysenterEsp, kLstar, kKernelGsBase});
  const std::pair<std::uint32_t, std::uint64_t> msrs[] = {
      {kSysenterCs, 0x10},         {kSysenterEsp, 0xffff880000123000ull}, {kSysenterEip, 0xffffffff81000000ull},
      {kStar, 0x0023001000000000ull}, {kLstar, 0xffffffff81800000ull},   {kCstar, 0xffffffff81800100ull},
      {kSfmask, 0x47700},          {kKernelGsBase, 0xffff888000000000ull},
  };
  for (const auto& [index, value] : msrs) vcpu.set_msr(index, value);
  // SYSENTER_ESP/EIP differ by vendor: AMD CPUs keep only 32 bits (the VMCB fields and the
  // instructions in legacy mode), and KVM on SVM keeps the upper halves only for a guest whose
  // CPUID vendor is Intel (svm.c, for cross-vendor migration). The guest's CPUID here is the
  // host's, so on AMD the upper 32 bits read back as 0.
  const bool sysenter32 = kvmx::test::env().cpu == kvmx::test::Cpu::amd;
  const auto expected = [&](std::uint32_t index, std::uint64_t value) {
    return sysenter32 && (index == kSysenterEsp || index == kSysenterEip) ? value & 0xffffffff : value;
  };
  for (const auto& [index, value] : msrs) {
    EXPECT_EQ(vcpu.get_msr(index), expected(index, value)) << "MSR " << std::hex << index;
  }
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], expected(kSysenterEsp, 0xffff880000123000ull)) << "SYSENTER_ESP";
  EXPECT_EQ(uc.values[2], 0xffffffff81800000ull) << "LSTAR";
  EXPECT_EQ(uc.values[3], 0xffff888000000000ull) << "KERNEL_GS_BASE";
}

// Guards: an MSR the guest writes with WRMSR is what KVM_GET_MSRS reports afterwards.
TEST_F(Regs, GuestWrmsrSeenByHost) {
  auto vcpu = guest().add_vcpu(guest_wrmsr, {kLstar, 0xffffffff81234560ull});
  KVMX_ASSERT_EXIT(vcpu.run(), exit::Hlt);
  EXPECT_EQ(vcpu.get_msr(kLstar), 0xffffffff81234560ull);
}

// Guards: KVM_GET_MSRS processes entries in order and stops at the first MSR it cannot read,
// returning how many it did (here 1 of 3).
TEST_F(Regs, GetMsrsStopsAtUnknownMsr) {
  auto vcpu = guest().add_vcpu(regs_guest_report_gprs);
  struct {
    kvm_msrs header;
    kvm_msr_entry entries[3];
  } buf{};
  buf.header.nmsrs = 3;
  buf.entries[0].index = kLstar;
  buf.entries[1].index = 0xdeadbeef;  // no such MSR
  buf.entries[2].index = kStar;
  const auto r = vcpu.try_ioctl(op::get_msrs, &buf.header);
  KVMX_ASSERT_OK(r);
  EXPECT_EQ(r.value(), 1);
}

// Guards: the TSC written with KVM_SET_MSRS (IA32_TSC) is where the guest's RDTSC continues.
TEST_F(Regs, TscSetByHostSeenByGuest) {
  auto vcpu = guest().add_vcpu(guest_rdtsc);
  constexpr std::uint64_t kTscValue = 1ull << 50;
  vcpu.set_msr(kTsc, kTscValue);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_GE(uc.values[1], kTscValue);
  EXPECT_LT(uc.values[1], kTscValue + (1ull << 42)) << "more than ~1 hour of TSC ticks after the write";
}

// Guards: KVM_SET_CPUID2 then KVM_GET_CPUID2 returns the table, and the guest's CPUID returns
// the entry the host set (a hypervisor leaf, which KVM returns as given); KVM_GET_CPUID2 with
// too small an array fails with E2BIG.
TEST_F(Regs, Cpuid2RoundTripAndGuestCpuid) {
  auto vcpu = guest().add_vcpu(guest_cpuid, {kCpuidLeaf});
  kvmx::Cpuid cpuid = sys().supported_cpuid();
  kvm_cpuid_entry2* leaf = cpuid.find(kCpuidLeaf);
  if (!leaf) {
    cpuid.entries.push_back(kvm_cpuid_entry2{});
    leaf = &cpuid.entries.back();
  }
  *leaf = kvm_cpuid_entry2{};
  leaf->function = kCpuidLeaf;
  leaf->eax = kCpuidLeaf;
  leaf->ebx = 0x786d766b;  // "kvmx"
  leaf->ecx = 0x74736574;  // "test"
  leaf->edx = 0x786d766b;
  vcpu.set_cpuid(cpuid);

  const std::size_t n = cpuid.entries.size();
  std::vector<std::uint8_t> buf(sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2));
  auto* got = reinterpret_cast<kvm_cpuid2*>(buf.data());
  got->nent = static_cast<__u32>(n);
  vcpu.ioctl(op::get_cpuid2, got);
  ASSERT_EQ(got->nent, n);
  bool found = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (got->entries[i].function != kCpuidLeaf) continue;
    found = true;
    EXPECT_EQ(got->entries[i].ebx, 0x786d766bu);
    EXPECT_EQ(got->entries[i].ecx, 0x74736574u);
  }
  EXPECT_TRUE(found) << "KVM_GET_CPUID2 lost the hypervisor leaf";
  got->nent = 1;
  KVMX_EXPECT_ERRNO(vcpu.try_ioctl(op::get_cpuid2, got), E2BIG);

  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], kCpuidLeaf);
  EXPECT_EQ(uc.values[2], 0x786d766bu);
  EXPECT_EQ(uc.values[3], 0x74736574u);
  EXPECT_EQ(uc.values[4], 0x786d766bu);
}

}  // namespace
