// exits: what userspace sees in kvm_run for port I/O, MMIO, HLT, triple faults, failed VM entry
// and writes to read-only memory, and what the guest sees after userspace answers.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "exits_guest.hpp"
#include "kvmx/guest/x86.h"
#include "kvmx/test/guest.hpp"

namespace {

using namespace exits_suite;
using kvmx::test::Cpu;
using kvmx::test::env;
using kvmx::test::GuestTest;
using kvmx::test::HostUcall;
namespace exit = kvmx::exit;

class Exits : public GuestTest {
 protected:
  void SetUp() override {
    GuestTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    guest().map(kMmio, kMmio);
  }

  // Run to the next exit; it must be an MMIO access of `len` bytes at kMmio in direction
  // `write`. A read is answered with `supply`; returns the data of a write.
  std::uint64_t expect_mmio(kvmx::Vcpu& vcpu, bool write, unsigned len, std::uint64_t supply = 0) {
    const kvmx::Exit e = vcpu.run();
    const auto* mmio = std::get_if<exit::Mmio>(&e);
    EXPECT_TRUE(mmio) << "wanted MMIO, got " << kvmx::describe(e);
    if (!mmio) return 0;
    EXPECT_EQ(mmio->addr, kMmio);
    EXPECT_EQ(mmio->is_write, write);
    EXPECT_EQ(mmio->data.size(), len);
    if (!write) mmio->set_value(supply);
    return write ? mmio->value() : 0;
  }
};

// Guards: OUT of 1, 2 and 4 bytes exits with direction out, port, size, count 1 and the data at
// io.data_offset.
TEST_F(Exits, PioOutEveryWidth) {
  auto vcpu = guest().add_vcpu(guest_pio_out);
  const std::pair<std::uint8_t, std::uint64_t> outs[] = {{1, 0x5a}, {2, 0x1234}, {4, 0xdeadbeef}};
  for (const auto& [size, value] : outs) {
    const kvmx::Exit e = vcpu.run();
    KVMX_ASSERT_EXIT(e, exit::IoOut);
    const auto& out = std::get<exit::IoOut>(e);
    EXPECT_EQ(out.port, kPort);
    EXPECT_EQ(out.size, size);
    EXPECT_EQ(out.count, 1u);
    EXPECT_EQ(out.value(), value);
    const kvm_run& run = vcpu.run_struct();
    EXPECT_EQ(run.io.direction, KVM_EXIT_IO_OUT);
  }
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: IN of 1, 2 and 4 bytes takes the data userspace wrote at io.data_offset, and the
// guest register follows the architecture: AL/AX merge into RAX, EAX zero-extends.
TEST_F(Exits, PioInEveryWidth) {
  auto vcpu = guest().add_vcpu(guest_pio_in);
  struct Case {
    std::uint8_t size;
    std::uint64_t supply, seen;
  };
  const Case cases[] = {{1, 0xa5, 0xffffffffffffffa5ull},
                        {2, 0xa5b6, 0xffffffffffffa5b6ull},
                        {4, 0xa5b6c7d8, 0x00000000a5b6c7d8ull}};
  std::uint64_t stage = 1;
  for (const Case& c : cases) {
    const kvmx::Exit e = vcpu.run();
    KVMX_ASSERT_EXIT(e, exit::IoIn);
    const auto& in = std::get<exit::IoIn>(e);
    EXPECT_EQ(in.port, kPort);
    EXPECT_EQ(in.size, c.size);
    EXPECT_EQ(in.count, 1u);
    EXPECT_EQ(vcpu.run_struct().io.direction, KVM_EXIT_IO_IN);
    in.set_value(c.supply);
    const HostUcall uc = guest().run(vcpu);
    KVMX_ASSERT_SYNC(uc, stage++);
    EXPECT_EQ(uc.values[1], c.seen) << "RAX after IN of size " << unsigned{c.size};
  }
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

class StringPio : public Exits, public ::testing::WithParamInterface<unsigned> {};

// Guards: REP OUTS hands userspace every element in order with the instruction's size; RSI
// advances and RCX reaches 0. How many elements one exit carries (io.count) is the hypervisor's
// choice: KVM's emulator sends OUTS one element per exit and batches INS up to a page, so the test
// accepts any count and checks the concatenated data.
TEST_P(StringPio, RepOuts) {
  const unsigned size = GetParam();
  constexpr std::uint64_t kCount = 6;
  const std::uint64_t buffer = guest().alloc(kCount * size);
  auto* bytes = reinterpret_cast<std::uint8_t*>(guest().host_ptr(buffer, kCount * size));
  for (unsigned i = 0; i < kCount * size; ++i) bytes[i] = static_cast<std::uint8_t>(0x40 + i);
  auto vcpu = guest().add_vcpu(guest_rep_outs, {buffer, kCount, size});
  std::vector<std::uint8_t> seen;
  while (seen.size() < kCount * size) {
    const kvmx::Exit e = vcpu.run();
    KVMX_ASSERT_EXIT(e, exit::IoOut);
    const auto& out = std::get<exit::IoOut>(e);
    ASSERT_EQ(out.port, kPort);
    ASSERT_EQ(out.size, size);
    ASSERT_GE(out.count, 1u);
    ASSERT_EQ(out.data.size(), std::size_t{out.size} * out.count);
    for (std::byte b : out.data) seen.push_back(static_cast<std::uint8_t>(b));
  }
  EXPECT_EQ(seen, std::vector<std::uint8_t>(bytes, bytes + kCount * size));
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], kCount * size) << "RSI advance";
  EXPECT_EQ(uc.values[2], 0u) << "RCX";
}

// Guards: REP INS stores what userspace wrote at io.data_offset (size * count bytes per exit)
// into consecutive guest memory; RDI advances and RCX reaches 0.
TEST_P(StringPio, RepIns) {
  const unsigned size = GetParam();
  constexpr std::uint64_t kCount = 6;
  const std::uint64_t buffer = guest().alloc(kCount * size);
  auto vcpu = guest().add_vcpu(guest_rep_ins, {buffer, kCount, size});
  std::vector<std::uint8_t> supplied;
  while (supplied.size() < kCount * size) {
    const kvmx::Exit e = vcpu.run();
    KVMX_ASSERT_EXIT(e, exit::IoIn);
    const auto& in = std::get<exit::IoIn>(e);
    ASSERT_EQ(in.port, kPort);
    ASSERT_EQ(in.size, size);
    ASSERT_GE(in.count, 1u);
    ASSERT_LE(supplied.size() + in.data.size(), kCount * size) << "more elements than RCX asked for";
    for (std::byte& b : in.data) {
      const auto v = static_cast<std::uint8_t>(0x90 + supplied.size());
      b = std::byte{v};
      supplied.push_back(v);
    }
  }
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], kCount * size) << "RDI advance";
  EXPECT_EQ(uc.values[2], 0u) << "RCX";
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(guest().host_ptr(buffer, kCount * size));
  EXPECT_EQ(std::vector<std::uint8_t>(bytes, bytes + kCount * size), supplied);
}

INSTANTIATE_TEST_SUITE_P(Size, StringPio, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return "Bytes" + std::to_string(info.param); });

// Guards: MMIO loads of every width through MOV, MOVZX, MOVSX and MOVSXD exit with the access
// width, and the register the guest sees is the host's data merged (8/16-bit MOV), zero-extended
// (32-bit destinations, MOVZX) or sign-extended (MOVSX, MOVSXD) as the instruction defines.
TEST_F(Exits, MmioLoadsExtendLikeTheInstruction) {
  auto vcpu = guest().add_vcpu(guest_mmio_loads);
  struct Case {
    const char* insn;
    unsigned len;
    std::uint64_t supply, seen;
  };
  const Case cases[] = {
      {"movb", 1, 0x81, 0x1111111111111181ull},
      {"movw", 2, 0x8182, 0x1111111111118182ull},
      {"movl", 4, 0x82838485, 0x0000000082838485ull},
      {"movq", 8, 0x8182838485868788ull, 0x8182838485868788ull},
      {"movzbl", 1, 0x81, 0x81},
      {"movzwq", 2, 0x8182, 0x8182},
      {"movsbq", 1, 0x81, 0xffffffffffffff81ull},
      {"movswl", 2, 0x8182, 0x00000000ffff8182ull},
      {"movslq (MOVSXD)", 4, 0x82838485, 0xffffffff82838485ull},
      {"movsbw", 1, 0x81, 0x111111111111ff81ull},
  };
  std::uint64_t stage = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.insn);
    expect_mmio(vcpu, false, c.len, c.supply);
    if (HasFailure()) return;
    const HostUcall uc = guest().run(vcpu);
    KVMX_ASSERT_SYNC(uc, stage++);
    EXPECT_EQ(uc.values[1], c.seen);
  }
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: MMIO stores of every width, from a register and from an immediate (MOV imm to memory;
// the 64-bit form sign-extends its imm32), exit with the width and the data.
TEST_F(Exits, MmioStoresEveryWidth) {
  auto vcpu = guest().add_vcpu(guest_mmio_stores);
  const std::pair<unsigned, std::uint64_t> cases[] = {
      {1, 0x81}, {2, 0x8182}, {4, 0x82838485}, {8, 0x8182838485868788ull},
      {1, 0x91}, {2, 0x9192}, {4, 0x92939495}, {8, 0xffffffff92939495ull},
  };
  for (const auto& [len, value] : cases) {
    EXPECT_EQ(expect_mmio(vcpu, true, len), value) << "store of " << len << " bytes";
    if (HasFailure()) return;
  }
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: string MOVS with MMIO as destination (a write exit with the RAM source's data) and as
// source (a read exit whose data lands in RAM), which KVM emulates.
TEST_F(Exits, MovsToAndFromMmio) {
  auto vcpu = guest().add_vcpu(guest_mmio_movs);
  EXPECT_EQ(expect_mmio(vcpu, true, 4), 0xa1a2a3a4u);
  expect_mmio(vcpu, false, 4, 0xb1b2b3b4);
  if (HasFailure()) return;
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], 0xb1b2b3b4u);
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

class RepMovsMmio : public Exits, public ::testing::WithParamInterface<unsigned> {
 protected:
  static constexpr std::uint64_t kCount = 4;

  // Run to the next exit; it must be one MMIO access of `size` bytes at `addr`, direction
  // `write`. A read is answered with `supply`; returns the data of a write.
  std::uint64_t expect_element(kvmx::Vcpu& vcpu, std::uint64_t addr, bool write, unsigned size,
                               std::uint64_t supply = 0) {
    const kvmx::Exit e = vcpu.run();
    const auto* mmio = std::get_if<exit::Mmio>(&e);
    EXPECT_TRUE(mmio) << "wanted MMIO, got " << kvmx::describe(e);
    if (!mmio) return 0;
    EXPECT_EQ(mmio->addr, addr);
    EXPECT_EQ(mmio->is_write, write);
    EXPECT_EQ(mmio->data.size(), size);
    if (!write) mmio->set_value(supply);
    return write ? mmio->value() : 0;
  }

  static std::uint64_t element(unsigned size, std::uint64_t i) {
    const std::uint64_t v = 0x8877665544332211ull + i * 0x0101010101010101ull;
    return size == 8 ? v : v & ((1ull << (8 * size)) - 1);
  }
};

// Guards: REP MOVS from RAM to MMIO is one write exit per element, in order, each of the
// element's size at the next address with that element's data; RSI/RDI advance by count * size
// and RCX reaches 0.
TEST_P(RepMovsMmio, RamToMmio) {
  const unsigned size = GetParam();
  const std::uint64_t buffer = guest().alloc(kCount * size);
  for (std::uint64_t i = 0; i < kCount; ++i) {
    const std::uint64_t v = element(size, i);
    std::memcpy(guest().host_ptr(buffer + i * size, size), &v, size);
  }
  auto vcpu = guest().add_vcpu(guest_rep_movs, {buffer, kMmio, kCount, size, 0});
  for (std::uint64_t i = 0; i < kCount; ++i) {
    SCOPED_TRACE("element " + std::to_string(i));
    EXPECT_EQ(expect_element(vcpu, kMmio + i * size, true, size), element(size, i));
    if (HasFailure()) return;
  }
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], buffer + kCount * size) << "RSI";
  EXPECT_EQ(uc.values[2], kMmio + kCount * size) << "RDI";
  EXPECT_EQ(uc.values[3], 0u) << "RCX";
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: REP MOVS from MMIO to RAM is one read exit per element, in order, and what userspace
// supplied for each lands in RAM at the matching offset.
TEST_P(RepMovsMmio, MmioToRam) {
  const unsigned size = GetParam();
  const std::uint64_t buffer = guest().alloc(kCount * size);
  auto vcpu = guest().add_vcpu(guest_rep_movs, {kMmio, buffer, kCount, size, 0});
  for (std::uint64_t i = 0; i < kCount; ++i) {
    SCOPED_TRACE("element " + std::to_string(i));
    expect_element(vcpu, kMmio + i * size, false, size, element(size, i));
    if (HasFailure()) return;
  }
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], kMmio + kCount * size) << "RSI";
  EXPECT_EQ(uc.values[2], buffer + kCount * size) << "RDI";
  EXPECT_EQ(uc.values[3], 0u) << "RCX";
  for (std::uint64_t i = 0; i < kCount; ++i) {
    std::uint64_t v = 0;
    std::memcpy(&v, guest().host_ptr(buffer + i * size, size), size);
    EXPECT_EQ(v, element(size, i)) << "element " << i;
  }
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: with EFLAGS.DF set, REP MOVS to MMIO walks downwards: the write exits come at
// decreasing addresses, starting with the last element, and RSI/RDI end below the start.
TEST_P(RepMovsMmio, RamToMmioBackwards) {
  const unsigned size = GetParam();
  const std::uint64_t buffer = guest().alloc(kCount * size);
  for (std::uint64_t i = 0; i < kCount; ++i) {
    const std::uint64_t v = element(size, i);
    std::memcpy(guest().host_ptr(buffer + i * size, size), &v, size);
  }
  const std::uint64_t last = (kCount - 1) * size;
  auto vcpu = guest().add_vcpu(guest_rep_movs, {buffer + last, kMmio + last, kCount, size, 1});
  for (std::uint64_t i = kCount; i-- > 0;) {
    SCOPED_TRACE("element " + std::to_string(i));
    EXPECT_EQ(expect_element(vcpu, kMmio + i * size, true, size), element(size, i));
    if (HasFailure()) return;
  }
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], buffer - size) << "RSI";
  EXPECT_EQ(uc.values[2], kMmio - size) << "RDI";
  EXPECT_EQ(uc.values[3], 0u) << "RCX";
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

INSTANTIATE_TEST_SUITE_P(Size, RepMovsMmio, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return "Bytes" + std::to_string(info.param); });

// Guards: HLT without an in-kernel local APIC exits to userspace with RIP already past the HLT,
// and KVM_RUN resumes after it.
TEST_F(Exits, Hlt) {
  auto vcpu = guest().add_vcpu(guest_hlt);
  KVMX_ASSERT_EXIT(vcpu.run(), exit::Hlt);
  EXPECT_EQ(vcpu.get_regs().rip, reinterpret_cast<std::uint64_t>(exits_after_hlt));
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: an exception that cannot be delivered (IDT limit 0: #DE -> #GP -> #DF) is a triple
// fault, which exits as KVM_EXIT_SHUTDOWN.
TEST_F(Exits, TripleFaultIsShutdown) {
  auto vcpu = guest().add_vcpu(guest_triple_fault);
  KVMX_EXPECT_EXIT(vcpu.run(), exit::Shutdown);
}

// Guards: guest state the CPU refuses at VM entry comes back as KVM_EXIT_FAIL_ENTRY with the
// vendor's reason. 64-bit mode with CS.L = 1 and CS.D = 1 is such a state on both vendors, and
// KVM_SET_SREGS does not reject it. It is picked because neither vendor path has KVM emulate it:
// on VMX, KVM emulates states that fail only its own real-mode/segment checks (without
// unrestricted guest, emulate_invalid_guest_state) instead of entering, and on SVM KVM lets the
// hardware check everything, so a state such as an unusable-but-bad segment would give
// FAIL_ENTRY on one vendor and emulation on the other. The reasons differ by vendor: SVM's
// VMRUN gives exit code SVM_EXIT_ERR (-1); VMX gives basic exit reason 33 (invalid guest state)
// with bit 31 (VM-entry failure) set. KVM's VMCB keeps EXITCODE as a 32-bit field, so SVM_EXIT_ERR
// reaches userspace as 0xffffffff; the upper half is not compared.
TEST_F(Exits, InvalidGuestStateIsFailEntry) {
  auto vcpu = guest().add_vcpu(guest_hlt);
  kvm_sregs sregs = vcpu.get_sregs();
  sregs.cs.db = 1;
  KVMX_ASSERT_OK(vcpu.try_set_sregs(sregs));
  const kvmx::Exit e = vcpu.run();
  KVMX_ASSERT_EXIT(e, exit::FailEntry);
  const auto& fail = std::get<exit::FailEntry>(e);
  if (env().cpu == Cpu::amd) {
    EXPECT_EQ(fail.hardware_reason & 0xffffffff, 0xffffffffull) << "SVM_EXIT_ERR";
  } else if (env().cpu == Cpu::intel) {
    EXPECT_EQ(fail.hardware_reason, 0x80000021ull) << "VMX_EXIT_REASONS_FAILED_VMENTRY | invalid guest state";
  }
}

// Guards: with KVM_MEM_READONLY, guest reads come from the slot's memory without an exit, and a
// write exits as an MMIO write (address, width, data) and leaves the memory unchanged.
TEST_F(Exits, ReadOnlySlotWritesAreMmio) {
  KVMX_REQUIRE_CAP(KVM_CAP_READONLY_MEM);
  auto& region = guest().vm().add_memory(1, kReadOnly, kvmx::kPageSize, {.read_only = true});
  const std::uint64_t original = 0x0123456789abcdefull;
  std::memcpy(region.host() + 0x18, &original, 8);
  guest().map(kReadOnly, kReadOnly);
  auto vcpu = guest().add_vcpu(guest_read_only, {kReadOnly + 0x18});
  const kvmx::Exit e = vcpu.run();
  KVMX_ASSERT_EXIT(e, exit::Mmio);
  const auto& mmio = std::get<exit::Mmio>(e);
  EXPECT_TRUE(mmio.is_write);
  EXPECT_EQ(mmio.addr, kReadOnly + 0x18);
  EXPECT_EQ(mmio.data.size(), 8u);
  EXPECT_EQ(mmio.value(), 0x7777777777777777ull);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values[1], original) << "read before the write";
  EXPECT_EQ(uc.values[2], original) << "read after the write";
  std::uint64_t now;
  std::memcpy(&now, region.host() + 0x18, 8);
  EXPECT_EQ(now, original);
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

}  // namespace
