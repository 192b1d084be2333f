// guest: the guest framework itself, judged on a hypervisor that runs vCPUs.
#include <gtest/gtest.h>

#include <cinttypes>

#include "guest_code.hpp"
#include "kvmx/guest/x86.h"
#include "kvmx/test/guest.hpp"

namespace {

using namespace guest_suite;
using kvmx::test::GuestTest;
using kvmx::test::HostUcall;
using kvmx::guest::UcallKind;
namespace exit = kvmx::exit;
namespace x86 = kvmx::x86;

using Guest = GuestTest;

// Guards: the simplest guest reaches DONE, so image copy, paging and long-mode entry work.
TEST_F(Guest, Done) {
  auto vcpu = guest().add_vcpu(guest_done);
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: returning from the entry function reports DONE through the return trampoline.
TEST_F(Guest, ReturnFromEntryIsDone) {
  auto vcpu = guest().add_vcpu(guest_returns);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_DONE(uc);
  EXPECT_EQ(uc.text, "the entry function returned");
}

// Guards: SYNC stages arrive in order with their values, and the vCPU resumes after each.
TEST_F(Guest, SyncStagesInOrder) {
  auto vcpu = guest().add_vcpu(guest_sync_stages);
  KVMX_ASSERT_SYNC(guest().run(vcpu), 1);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 2);
  EXPECT_EQ(uc.values, (std::vector<std::uint64_t>{2, 0xabc, 0xdef}));
  EXPECT_EQ(uc.file, "guest_code.cpp");
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: add_vcpu passes up to six arguments in the System V registers.
TEST_F(Guest, EntryArguments) {
  auto vcpu = guest().add_vcpu(guest_args, {11, 22, 33, 44, 55, 66});
  const HostUcall first = guest().run(vcpu);
  KVMX_ASSERT_SYNC(first, 1);
  EXPECT_EQ(first.values, (std::vector<std::uint64_t>{1, 11, 22, 33, 44, 55}));
  const HostUcall second = guest().run(vcpu);
  KVMX_ASSERT_SYNC(second, 2);
  EXPECT_EQ(second.values.at(1), 66u);
}

// Guards: the guest runs in 64-bit mode with the host-built CR0/CR3/CR4/EFER and code segment.
TEST_F(Guest, LongModeState) {
  auto vcpu = guest().add_vcpu(guest_long_mode_state);
  const HostUcall regs = guest().run(vcpu);
  KVMX_ASSERT_SYNC(regs, 1);
  ASSERT_EQ(regs.values.size(), 5u);
  const std::uint64_t cr0 = regs.values[1], cr3 = regs.values[2], cr4 = regs.values[3], efer = regs.values[4];
  EXPECT_TRUE(cr0 & x86::kCr0Pg);
  EXPECT_TRUE(cr0 & x86::kCr0Pe);
  EXPECT_EQ(cr3 & x86::kPteAddrMask, guest().cr3());
  EXPECT_TRUE(cr4 & x86::kCr4Pae);
  EXPECT_TRUE(efer & x86::kEferLma);
  EXPECT_TRUE(efer & x86::kEferLme);
  const HostUcall cs = guest().run(vcpu);
  KVMX_ASSERT_SYNC(cs, 2);
  EXPECT_EQ(cs.values.at(1), 0x08u);
}

// Guards: GUEST_ASSERT_EQ reports file, line, both expressions and both values.
TEST_F(Guest, AssertEqCarriesExpectedAndActual) {
  auto vcpu = guest().add_vcpu(guest_assert_eq, {7});
  const HostUcall uc = guest().run(vcpu);
  ASSERT_EQ(uc.kind, UcallKind::assert_failed) << uc.describe();
  EXPECT_EQ(uc.file, "guest_code.cpp");
  EXPECT_GT(uc.line, 0u);
  EXPECT_EQ(uc.text, "42u");
  EXPECT_EQ(uc.value_text, "actual");
  EXPECT_EQ(uc.values, (std::vector<std::uint64_t>{42, 7}));
  const std::string text = uc.describe();
  EXPECT_NE(text.find("expected 42u = 0x2a (42)"), std::string::npos) << text;
  EXPECT_NE(text.find("actual actual = 0x7 (7)"), std::string::npos) << text;
  // A passing assertion lets the guest go on.
  auto ok = guest().add_vcpu(guest_assert_eq, {42});
  KVMX_EXPECT_DONE(guest().run(ok));
}

// Guards: GUEST_ASSERT reports its condition and the listed values.
TEST_F(Guest, AssertCarriesValues) {
  auto vcpu = guest().add_vcpu(guest_assert_values, {9, 3});
  const HostUcall uc = guest().run(vcpu);
  ASSERT_EQ(uc.kind, UcallKind::assert_failed) << uc.describe();
  EXPECT_EQ(uc.text, "x < y");
  EXPECT_EQ(uc.value_text, "x, y");
  EXPECT_EQ(uc.values, (std::vector<std::uint64_t>{9, 3}));
  // Resuming a failed guest reports the failure again rather than running on.
  EXPECT_EQ(guest().run(vcpu).kind, UcallKind::assert_failed);
}

// Guards: write_global() reaches the guest's copy of a global; the host's copy is untouched.
TEST_F(Guest, HostWritesGuestGlobal) {
  guest().write_global(g_value_from_host, 0x1234567890ull);
  auto vcpu = guest().add_vcpu(guest_reads_global);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values.at(1), 0x1234567890u);
  EXPECT_EQ(g_value_from_host, 0u);
}

// Guards: guest writes land in the memory the host sees through host_ptr().
TEST_F(Guest, GuestWritesMemory) {
  constexpr std::uint64_t kCount = 1024;  // two pages
  const std::uint64_t buffer = guest().alloc(kCount * 8);
  auto vcpu = guest().add_vcpu(guest_writes_memory, {buffer, kCount});
  KVMX_ASSERT_SYNC(guest().run(vcpu), 1);
  const auto* words = reinterpret_cast<const std::uint64_t*>(guest().host_ptr(buffer, kCount * 8));
  for (std::uint64_t i = 0; i < kCount; ++i) ASSERT_EQ(words[i], 0x5a5a000000000000ull | i) << "word " << i;
}

// Guards: an unhandled guest exception reaches the host with vector, error code and CR2
// (page 0 is not mapped, so a null read is a #PF with CR2 0 and a read, not-present error code).
TEST_F(Guest, UnhandledPageFaultIsReported) {
  auto vcpu = guest().add_vcpu(guest_null_dereference);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_GUEST_EXCEPTION(uc, x86::kPf);
  ASSERT_EQ(uc.values.size(), 4u);
  EXPECT_EQ(uc.values[1], 0u) << "error code";
  EXPECT_EQ(uc.values[3], 0u) << "cr2";
  EXPECT_NE(uc.describe().find("#PF (14)"), std::string::npos) << uc.describe();
}

// Guards: a handler installed from the host runs for its vector and can resume the guest.
TEST_F(Guest, ExceptionHandlerResumes) {
  guest().set_exception_handler(x86::kUd, skip_ud2);
  auto vcpu = guest().add_vcpu(guest_ud_then_sync);
  const HostUcall uc = guest().run(vcpu);
  KVMX_ASSERT_SYNC(uc, 1);
  EXPECT_EQ(uc.values.at(1), 2u) << "#UD handler calls";
}

// Guards: port I/O of each width exits to userspace with the right port, size and data, and
// IN data written by the host reaches the guest.
TEST_F(Guest, PortIo) {
  auto vcpu = guest().add_vcpu(guest_port_io);
  const std::pair<std::uint8_t, std::uint64_t> outs[] = {{1, 0x5a}, {2, 0x1234}, {4, 0xdeadbeef}};
  for (const auto& [size, value] : outs) {
    const kvmx::Exit e = vcpu.run();
    KVMX_ASSERT_EXIT(e, exit::IoOut);
    const auto& out = std::get<exit::IoOut>(e);
    EXPECT_EQ(out.port, kPortOut);
    EXPECT_EQ(out.size, size);
    EXPECT_EQ(out.value(), value);
  }
  const std::pair<std::uint8_t, std::uint64_t> ins[] = {{1, 0xa5}, {4, 0xcafef00d}};
  for (const auto& [size, value] : ins) {
    const kvmx::Exit e = vcpu.run();
    KVMX_ASSERT_EXIT(e, exit::IoIn);
    const auto& in = std::get<exit::IoIn>(e);
    EXPECT_EQ(in.port, kPortIn);
    EXPECT_EQ(in.size, size);
    in.set_value(value);
  }
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: accesses to a GPA without a memslot exit as MMIO with address, width and data, and a
// read is completed with what the host puts in the exit.
TEST_F(Guest, Mmio) {
  guest().map(kMmioAddress, kMmioAddress);
  auto vcpu = guest().add_vcpu(guest_mmio);
  kvmx::Exit e = vcpu.run();
  KVMX_ASSERT_EXIT(e, exit::Mmio);
  const auto& write = std::get<exit::Mmio>(e);
  EXPECT_TRUE(write.is_write);
  EXPECT_EQ(write.addr, kMmioAddress);
  EXPECT_EQ(write.data.size(), 4u);
  EXPECT_EQ(write.value(), 0x11223344u);
  e = vcpu.run();
  KVMX_ASSERT_EXIT(e, exit::Mmio);
  const auto& read = std::get<exit::Mmio>(e);
  EXPECT_FALSE(read.is_write);
  EXPECT_EQ(read.data.size(), 4u);
  read.set_value(0x55667788);
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

// Guards: HLT without an in-kernel local APIC exits to userspace, and the guest resumes after it.
TEST_F(Guest, Hlt) {
  auto vcpu = guest().add_vcpu(guest_hlt);
  KVMX_ASSERT_EXIT(vcpu.run(), exit::Hlt);
  KVMX_EXPECT_DONE(guest().run(vcpu));
}

using RunLoop = kvmx::test::VcpuTest;

// Guards: kvm_run is mapped at the size KVM_GET_VCPU_MMAP_SIZE reports.
TEST_F(RunLoop, KvmRunMappingHasTheReportedSize) {
  EXPECT_EQ(vcpu().run_mapping().size(), static_cast<std::size_t>(sys().vcpu_mmap_size()));
}

// Guards: with immediate_exit set, KVM_RUN returns EINTR without entering the guest (the exit
// reason is not specified: KVM leaves it as it was), and the asserting tier gives exit::Intr.
TEST_F(RunLoop, ImmediateExitGivesIntr) {
  vcpu().set_immediate_exit(true);
  KVMX_EXPECT_ERRNO(vcpu().try_run(), EINTR);
  KVMX_EXPECT_EXIT(vcpu().run(), exit::Intr);
  vcpu().set_immediate_exit(false);
  EXPECT_EQ(vcpu().run_struct().immediate_exit, 0);
}

}  // namespace
