// vm: KVM's binary statistics (KVM_GET_STATS_FD) of VMs and vCPUs. The layout and read tests run
// against whatever the device offers, so in-tree KVM's own stats fds prove the reader; the MMU
// tests read the statistics kvmx adds (docs/abi.md), gated on KVMX_CAP_KVMX.
#include <gtest/gtest.h>
#include "kvmx/linux_kvm.h"
#include <linux/kvmx.h>

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kvmx/kvmx.hpp"
#include "kvmx/test/fixtures.hpp"
#include "kvmx/test/guest.hpp"
#include "vm_guest.hpp"

namespace {

using kvmx::kPageSize;
using kvmx::Stats;
using namespace vm_suite;

// A GPA above the framework's 64 MiB slot 0.
constexpr std::uint64_t kStatsGpa = 0x10000000;

class StatsVm : public kvmx::test::VmTest {
 protected:
  void SetUp() override {
    VmTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    KVMX_REQUIRE_CAP(KVM_CAP_BINARY_STATS_FD);
  }
};

class StatsVcpu : public kvmx::test::VcpuTest {
 protected:
  void SetUp() override {
    VcpuTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    KVMX_REQUIRE_CAP(KVM_CAP_BINARY_STATS_FD);
  }
};

class StatsGuest : public kvmx::test::GuestTest {
 protected:
  bool needs_vcpus() const override { return true; }
  void SetUp() override {
    GuestTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    KVMX_REQUIRE_CAP(KVM_CAP_BINARY_STATS_FD);
  }

  // Why the VM cannot be put in MMU `mode` (KVMX_MMU_MODE_*) here, or empty if it can.
  std::string mmu_mode_unavailable(std::uint32_t mode) {
    if (!has_cap(KVMX_CAP_KVMX)) return "needs KVMX_CAP_KVMX: per-VM MMU modes and their statistics are kvmx's";
    const int offered = sys().check_extension(KVMX_CAP_MMU_MODE);
    if (!(offered & mode)) {
      return "KVMX_CAP_MMU_MODE offers modes " + std::to_string(offered) + ", not " + std::to_string(mode);
    }
    return {};
  }

  // Run guest_sum_then_fill over four fresh pages, to its end.
  void touch_memory() {
    constexpr std::uint64_t kWords = 2 * kPageSize / 8;
    auto& slot = guest().vm().add_memory(1, kStatsGpa, 4 * kPageSize);
    for (std::uint64_t off = 0; off < slot.size(); off += kPageSize) guest().map(kStatsGpa + off, kStatsGpa + off);
    auto vcpu = guest().add_vcpu(guest_sum_then_fill, {kStatsGpa, kStatsGpa + 2 * kPageSize, kWords});
    KVMX_ASSERT_SYNC(guest().run(vcpu), 1);
    KVMX_ASSERT_SYNC(guest().run(vcpu), 2);
    KVMX_ASSERT_DONE(guest().run(vcpu));
  }
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The layout both KVM and kvmx produce: blocks back to back, every descriptor sane.
void expect_consistent(const Stats& stats) {
  const kvm_stats_header& h = stats.header();
  EXPECT_EQ(h.flags, 0u);
  EXPECT_GT(h.name_size, 0u);
  EXPECT_GT(h.num_desc, 0u);
  EXPECT_EQ(h.id_offset, sizeof(kvm_stats_header));
  EXPECT_EQ(h.desc_offset, h.id_offset + h.name_size);
  EXPECT_EQ(h.data_offset, h.desc_offset + h.num_desc * (sizeof(kvm_stats_desc) + h.name_size));
  for (const auto& d : stats.descs()) {
    EXPECT_LE(d.type(), std::uint32_t{KVM_STATS_TYPE_MAX}) << d.name;
    EXPECT_LE(d.unit(), std::uint32_t{KVM_STATS_UNIT_MAX}) << d.name;
    EXPECT_LE(d.base(), std::uint32_t{KVM_STATS_BASE_MAX}) << d.name;
    EXPECT_EQ(d.flags & ~(KVM_STATS_TYPE_MASK | KVM_STATS_UNIT_MASK | KVM_STATS_BASE_MASK), 0u) << d.name;
    if (d.type() == KVM_STATS_TYPE_LINEAR_HIST) {
      EXPECT_GT(d.bucket_size, 0u) << d.name;
    }
  }
  auto data = stats.try_read_data();
  EXPECT_TRUE(data.ok()) << data.error().message();
}

std::vector<std::byte> pread_bytes(int fd, std::size_t size, std::uint64_t offset) {
  std::vector<std::byte> buf(size);
  const ssize_t n = ::pread(fd, buf.data(), size, static_cast<off_t>(offset));
  buf.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return buf;
}

// Guards: a VM stats fd parses, its blocks follow each other, and the id names the process.
TEST_F(StatsVm, VmStatsHeaderIsConsistent) {
  const Stats stats = vm().stats();
  expect_consistent(stats);
  const std::string pid_suffix = std::string("-").append(std::to_string(::getpid()));
  EXPECT_TRUE(ends_with(stats.id(), pid_suffix)) << stats.id();
}

// Guards: reads at any offset and of any size return exactly those bytes of the file, a read
// crossing into the data returns all it asks for, and reads past the end return 0 bytes.
TEST_F(StatsVm, ReadsAtOddOffsetsAndSizes) {
  const Stats stats = vm().stats();
  const kvm_stats_header& h = stats.header();
  const auto prefix = pread_bytes(stats.fd(), h.data_offset, 0);
  ASSERT_EQ(prefix.size(), h.data_offset);
  const std::uint64_t offsets[] = {0,  1,  3,  23, 24, 25, std::uint64_t{h.desc_offset} - 1,
                                   std::uint64_t{h.desc_offset} + 17, std::uint64_t{h.data_offset} - 9};
  for (std::uint64_t off : offsets) {
    for (std::size_t len : {1u, 7u, 8u, 13u, 64u, 200u}) {
      if (off + len > h.data_offset) continue;
      const auto got = pread_bytes(stats.fd(), len, off);
      ASSERT_EQ(got.size(), len) << "pread(" << len << " @ " << off << ")";
      EXPECT_EQ(std::memcmp(got.data(), prefix.data() + off, len), 0) << "pread(" << len << " @ " << off << ")";
    }
  }
  const auto crossing = pread_bytes(stats.fd(), 16, h.data_offset - 8);
  ASSERT_EQ(crossing.size(), 16u);
  EXPECT_EQ(std::memcmp(crossing.data(), prefix.data() + h.data_offset - 8, 8), 0);
  EXPECT_EQ(pread_bytes(stats.fd(), 64, h.data_offset + stats.data_size() + 4096).size(), 0u);
  EXPECT_EQ(pread_bytes(stats.fd(), 64, 1ull << 40).size(), 0u);
  EXPECT_EQ(pread_bytes(stats.fd(), 0, 0).size(), 0u);
}

// Guards: read(2) moves the file position, so header and id can be read one after the other.
TEST_F(StatsVm, SequentialReadsFollowTheFilePosition) {
  const Stats stats = vm().stats();
  const kvm_stats_header& h = stats.header();
  kvm_stats_header header{};
  ASSERT_EQ(::read(stats.fd(), &header, sizeof(header)), static_cast<ssize_t>(sizeof(header)));
  EXPECT_EQ(std::memcmp(&header, &h, sizeof(header)), 0);
  std::vector<char> id(h.name_size);
  ASSERT_EQ(::read(stats.fd(), id.data(), id.size()), static_cast<ssize_t>(id.size()));
  EXPECT_EQ(std::string(id.data()), stats.id());
}

// Guards: a stats fd holds the VM: with the VM fd closed it still reads.
TEST_F(StatsVm, OutlivesTheVmFd) {
  const Stats stats = vm().stats();
  const auto before = stats.try_read_data();
  ASSERT_TRUE(before.ok()) << before.error().message();
  KVMX_ASSERT_OK(vm().try_close());
  const auto after = stats.try_read_data();
  ASSERT_TRUE(after.ok()) << after.error().message();
  EXPECT_EQ(after->size(), before->size());
}

// Guards: a vCPU stats fd parses, its id names the vCPU, and it has KVM's "exits" counter.
TEST_F(StatsVcpu, VcpuStatsHeaderIsConsistent) {
  const Stats stats = vcpu().stats();
  expect_consistent(stats);
  EXPECT_TRUE(ends_with(stats.id(), "/vcpu-0")) << stats.id();
  const auto* exits = stats.find("exits");
  ASSERT_NE(exits, nullptr) << "no \"exits\" in " << stats.id();
  EXPECT_EQ(exits->type(), std::uint32_t{KVM_STATS_TYPE_CUMULATIVE});
  EXPECT_EQ(stats.value("exits"), 0u) << "a vCPU that never ran";
}

// Guards: "exits" counts: every SYNC is at least one exit, and it only grows.
TEST_F(StatsGuest, VcpuExitsCountGuestExits) {
  constexpr std::uint64_t kWords = kPageSize / 8;
  auto& slot = guest().vm().add_memory(1, kStatsGpa, 2 * kPageSize);
  for (std::uint64_t off = 0; off < slot.size(); off += kPageSize) guest().map(kStatsGpa + off, kStatsGpa + off);
  auto vcpu = guest().add_vcpu(guest_sum_then_fill, {kStatsGpa, kStatsGpa + kPageSize, kWords});
  const Stats stats = vcpu.stats();
  KVMX_ASSERT_SYNC(guest().run(vcpu), 1);
  const std::uint64_t first = stats.value("exits");
  EXPECT_GE(first, 1u);
  KVMX_ASSERT_SYNC(guest().run(vcpu), 2);
  KVMX_ASSERT_DONE(guest().run(vcpu));
  EXPECT_GE(stats.value("exits"), first + 2);
}

// Guards: the VM's "mmu_mode" stat is what KVM_CHECK_EXTENSION(KVMX_CAP_MMU_MODE) says on the VM
// fd, before and after KVM_ENABLE_CAP switches it, read live through one stats fd.
TEST_F(StatsVm, MmuModeStatFollowsTheCapability) {
  KVMX_REQUIRE_CAP(KVMX_CAP_KVMX);
  const Stats stats = vm().stats();
  const auto* desc = stats.find("mmu_mode");
  ASSERT_NE(desc, nullptr) << "no \"mmu_mode\" in " << stats.id();
  EXPECT_EQ(desc->type(), std::uint32_t{KVM_STATS_TYPE_INSTANT});
  EXPECT_EQ(stats.value("mmu_mode"), static_cast<std::uint64_t>(vm().check_extension(KVMX_CAP_MMU_MODE)));
  const int offered = sys().check_extension(KVMX_CAP_MMU_MODE);
  int switched = 0;
  for (std::uint32_t mode : {KVMX_MMU_MODE_SHADOW, KVMX_MMU_MODE_TDP, KVMX_MMU_MODE_SHADOW}) {
    if (!(offered & mode)) continue;
    vm().enable_cap(KVMX_CAP_MMU_MODE, mode);
    ++switched;
    EXPECT_EQ(vm().check_extension(KVMX_CAP_MMU_MODE), static_cast<int>(mode));
    EXPECT_EQ(stats.value("mmu_mode"), mode);
  }
  if (!switched) GTEST_SKIP() << "KVMX_CAP_MMU_MODE offers no mode on this host (" << offered << ")";
}

// Guards: the kvmx VM stats are all there, of the documented types (docs/abi.md).
TEST_F(StatsVm, KvmxVmStatsAreDescribed) {
  KVMX_REQUIRE_CAP(KVMX_CAP_KVMX);
  const Stats stats = vm().stats();
  const struct {
    const char* name;
    std::uint32_t type;
  } expected[] = {
      {"mmu_mode", KVM_STATS_TYPE_INSTANT},           {"shadow_pages", KVM_STATS_TYPE_INSTANT},
      {"shadow_faults", KVM_STATS_TYPE_CUMULATIVE},   {"shadow_unprotects", KVM_STATS_TYPE_CUMULATIVE},
      {"shadow_zap_alls", KVM_STATS_TYPE_CUMULATIVE}, {"tdp_table_pages", KVM_STATS_TYPE_INSTANT},
  };
  for (const auto& e : expected) {
    const auto* d = stats.find(e.name);
    ASSERT_NE(d, nullptr) << e.name;
    EXPECT_EQ(d->type(), e.type) << e.name;
    EXPECT_EQ(d->size, 1u) << e.name;
    if (e.name != std::string("mmu_mode")) {
      EXPECT_EQ(stats.value(e.name), 0u) << e.name << " of a VM that never ran";
    }
  }
}

// Guards: a shadow-paging VM that touches memory takes shadow faults and builds shadow pages,
// and its NPT/EPT stays empty.
TEST_F(StatsGuest, ShadowGuestCountsFaultsAndPages) {
  if (const auto why = mmu_mode_unavailable(KVMX_MMU_MODE_SHADOW); !why.empty()) GTEST_SKIP() << why;
  guest().vm().enable_cap(KVMX_CAP_MMU_MODE, KVMX_MMU_MODE_SHADOW);
  const Stats stats = guest().vm().stats();
  EXPECT_EQ(stats.value("mmu_mode"), KVMX_MMU_MODE_SHADOW);
  touch_memory();
  if (HasFatalFailure()) return;
  EXPECT_GT(stats.value("shadow_faults"), 0u);
  EXPECT_GT(stats.value("shadow_pages"), 0u);
  EXPECT_EQ(stats.value("tdp_table_pages"), 0u);
}

// Guards: a TDP VM that touches memory builds NPT/EPT tables and never uses the shadow MMU.
TEST_F(StatsGuest, TdpGuestCountsTablePages) {
  if (const auto why = mmu_mode_unavailable(KVMX_MMU_MODE_TDP); !why.empty()) GTEST_SKIP() << why;
  guest().vm().enable_cap(KVMX_CAP_MMU_MODE, KVMX_MMU_MODE_TDP);
  const Stats stats = guest().vm().stats();
  EXPECT_EQ(stats.value("mmu_mode"), KVMX_MMU_MODE_TDP);
  touch_memory();
  if (HasFatalFailure()) return;
  EXPECT_GT(stats.value("tdp_table_pages"), 0u);
  EXPECT_EQ(stats.value("shadow_faults"), 0u);
  EXPECT_EQ(stats.value("shadow_pages"), 0u);
}

}  // namespace
