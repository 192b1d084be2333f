// vm: memslots through KVM_SET_USER_MEMORY_REGION: create, delete, move, flags, and every
// rejection with the errno of KVM's __kvm_set_memory_region() / check_memory_region_flags().
#include <gtest/gtest.h>
#include "kvmx/linux_kvm.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>

#include "kvmx/kvmx.hpp"
#include "kvmx/test/fixtures.hpp"

namespace {

using kvmx::kPageSize;
using kvmx::Mapping;
using kvmx::Result;

constexpr std::uint64_t kGpa = 0x100000;
constexpr std::uint64_t kSize = 16 * kPageSize;

class Memslot : public kvmx::test::VmTest {
 protected:
  void SetUp() override {
    VmTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    memory_ = Mapping::create(4 * kSize);
  }

  // Host address `offset` bytes into this test's anonymous memory.
  std::uint64_t hva(std::uint64_t offset = 0) const { return reinterpret_cast<std::uint64_t>(memory_.data()) + offset; }

  Result<void> set(std::uint32_t slot, std::uint64_t gpa, std::uint64_t size, std::uint64_t hva, std::uint32_t flags = 0) {
    const kvm_userspace_memory_region r{
        .slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size, .userspace_addr = hva};
    return vm().try_set_user_memory_region(r);
  }

  int nr_memslots() { return sys().try_check_extension(KVM_CAP_NR_MEMSLOTS).value_or(0); }

 private:
  Mapping memory_;
};

// Guards: a slot can be created, deleted with size 0, and created again in the same place.
TEST_F(Memslot, CreateDeleteRecreate) {
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva()));
  KVMX_ASSERT_OK(set(0, kGpa, 0, 0));
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva()));
  KVMX_EXPECT_OK(set(0, kGpa, 0, hva()));
}

// Guards: deleting a slot that does not exist (or no longer does) is EINVAL.
// __kvm_set_memory_region(): size 0 and no old slot.
TEST_F(Memslot, DeleteMissingSlotIsEinval) {
  KVMX_EXPECT_ERRNO(set(3, kGpa, 0, hva()), EINVAL);
  KVMX_ASSERT_OK(set(3, kGpa, kSize, hva()));
  KVMX_ASSERT_OK(set(3, kGpa, 0, hva()));
  KVMX_EXPECT_ERRNO(set(3, kGpa, 0, hva()), EINVAL);
}

// Guards: setting a slot to exactly what it is succeeds (nothing to change).
TEST_F(Memslot, IdenticalSetIsNoop) {
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva()));
  KVMX_EXPECT_OK(set(0, kGpa, kSize, hva()));
}

// Guards: GPA, size and host address must be page aligned: EINVAL otherwise.
TEST_F(Memslot, MisalignedIsEinval) {
  KVMX_EXPECT_ERRNO(set(0, kGpa + 0x800, kSize, hva()), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, kGpa + 1, kSize, hva()), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize + 0x800, hva()), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize - 1, hva()), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, hva(0x800)), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, hva(8)), EINVAL);
  KVMX_EXPECT_OK(set(0, kGpa, kSize, hva()));
}

// Guards: slot ids at or beyond KVM_CAP_NR_MEMSLOTS are EINVAL; the last one below works.
// kvm_vm_ioctl_set_memory_region() checks (u16)slot against KVM_USER_MEM_SLOTS.
TEST_F(Memslot, SlotIdBeyondNrMemslotsIsEinval) {
  const int n = nr_memslots();
  ASSERT_GT(n, 0);
  KVMX_EXPECT_OK(set(n - 1, kGpa, kSize, hva()));
  KVMX_EXPECT_ERRNO(set(n, kGpa + 4 * kSize, kSize, hva(kSize)), EINVAL);
  KVMX_EXPECT_ERRNO(set(0xffff, kGpa + 4 * kSize, kSize, hva(kSize)), EINVAL);
}

// Guards: address-space ids (slot bits 16+) below KVM_CAP_MULTI_ADDRESS_SPACE work, higher are EINVAL.
// x86 KVM has 2 with SMM (the second for SMRAM): a separate GPA space, so no overlap with space 0.
TEST_F(Memslot, AddressSpaceIdBits) {
  const int spaces = std::max(1, sys().try_check_extension(KVM_CAP_MULTI_ADDRESS_SPACE).value_or(1));
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva()));
  for (int as = 1; as < spaces; ++as) {
    // Same slot id and GPA in another address space: no overlap with address space 0.
    KVMX_EXPECT_OK(set((as << 16) | 0, kGpa, kSize, hva(kSize))) << "address space " << as;
  }
  KVMX_EXPECT_ERRNO(set((spaces << 16) | 1, kGpa + 4 * kSize, kSize, hva(2 * kSize)), EINVAL);
  KVMX_EXPECT_ERRNO(set(0x80000000u | 1, kGpa + 4 * kSize, kSize, hva(2 * kSize)), EINVAL);
}

// Guards: a new or moved slot may not overlap another: EEXIST; touching at the edge is fine.
TEST_F(Memslot, OverlapIsEexist) {
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva()));
  KVMX_EXPECT_ERRNO(set(1, kGpa, kSize, hva(kSize)), EEXIST);
  KVMX_EXPECT_ERRNO(set(1, kGpa + kSize - kPageSize, kSize, hva(kSize)), EEXIST);
  KVMX_EXPECT_ERRNO(set(1, kGpa - kSize + kPageSize, kSize, hva(kSize)), EEXIST);
  KVMX_EXPECT_ERRNO(set(1, kGpa + kPageSize, kPageSize, hva(kSize)), EEXIST);     // inside
  KVMX_EXPECT_ERRNO(set(1, kGpa - kPageSize, 3 * kSize, hva(kSize)), EEXIST);     // around
  KVMX_ASSERT_OK(set(1, kGpa + kSize, kSize, hva(kSize)));                        // adjacent above
  KVMX_ASSERT_OK(set(2, kGpa - kSize, kSize, hva(2 * kSize)));                    // adjacent below
  // Moving slot 2 onto slot 0 overlaps too; slot 0 may move into free space.
  KVMX_EXPECT_ERRNO(set(2, kGpa, kSize, hva(2 * kSize)), EEXIST);
  KVMX_EXPECT_OK(set(0, kGpa + 8 * kSize, kSize, hva()));
}

// Guards: moving a slot (new GPA, same size/host address/flags) is allowed, also back again.
TEST_F(Memslot, MoveSlot) {
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva()));
  KVMX_EXPECT_OK(set(0, kGpa + 0x10000000, kSize, hva()));
  KVMX_EXPECT_OK(set(0, kGpa, kSize, hva()));
  // Partially over its own old place is fine: a slot does not overlap itself.
  KVMX_EXPECT_OK(set(0, kGpa + kPageSize, kSize, hva()));
}

// Guards: an existing slot's size and host address cannot change: EINVAL (delete and recreate).
TEST_F(Memslot, ChangingSizeOrHostAddressIsEinval) {
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva()));
  KVMX_EXPECT_ERRNO(set(0, kGpa, 2 * kSize, hva()), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize / 2, hva()), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, hva(kSize)), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, kGpa + 0x10000000, kSize, hva(kSize)), EINVAL);  // a move may not change it either
}

// Guards: flags outside KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY are EINVAL.
// check_memory_region_flags(); bit 2 is KVM_MEM_GUEST_MEMFD from 6.8, valid only with
// KVM_SET_USER_MEMORY_REGION2.
TEST_F(Memslot, UnknownFlagsAreEinval) {
  for (std::uint32_t flag : {1u << 2, 1u << 3, 1u << 16, 1u << 31}) {
    KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, hva(), flag), EINVAL) << "flag " << std::hex << flag;
  }
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva()));
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, hva(), 1u << 3), EINVAL);
}

// Guards: KVM_MEM_LOG_DIRTY_PAGES may be set at creation and toggled on an existing slot.
TEST_F(Memslot, ToggleLogDirtyPages) {
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva()));
  KVMX_EXPECT_OK(set(0, kGpa, kSize, hva(), KVM_MEM_LOG_DIRTY_PAGES));
  KVMX_EXPECT_OK(set(0, kGpa, kSize, hva(), 0));
  KVMX_EXPECT_OK(set(1, kGpa + kSize, kSize, hva(kSize), KVM_MEM_LOG_DIRTY_PAGES));
  // Moving while logging is allowed too.
  KVMX_EXPECT_OK(set(1, kGpa + 4 * kSize, kSize, hva(kSize), KVM_MEM_LOG_DIRTY_PAGES));
}

// Guards: KVM_MEM_READONLY is set at creation; adding or removing it later is EINVAL.
TEST_F(Memslot, ReadOnlyCannotBeToggled) {
  KVMX_REQUIRE_CAP(KVM_CAP_READONLY_MEM);
  KVMX_ASSERT_OK(set(0, kGpa, kSize, hva(), KVM_MEM_READONLY));
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, hva(), 0), EINVAL);
  KVMX_EXPECT_OK(set(0, kGpa, kSize, hva(), KVM_MEM_READONLY | KVM_MEM_LOG_DIRTY_PAGES));
  KVMX_ASSERT_OK(set(1, kGpa + kSize, kSize, hva(kSize)));
  KVMX_EXPECT_ERRNO(set(1, kGpa + kSize, kSize, hva(kSize), KVM_MEM_READONLY), EINVAL);
}

// Guards: sizes a slot cannot hold, or that wrap the GPA space, are EINVAL.
// KVM_MEM_MAX_NR_PAGES, access_ok() of the host range, gpa + size overflow.
TEST_F(Memslot, TooBigIsEinval) {
  KVMX_EXPECT_ERRNO(set(0, 0, 1ull << 44, hva()), EINVAL);  // 2^32 pages > KVM_MEM_MAX_NR_PAGES
  KVMX_EXPECT_ERRNO(set(0, 0, 1ull << 63, hva()), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, 0, ~0ull & ~(kPageSize - 1), hva()), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, ~0ull & ~(kPageSize - 1), 2 * kPageSize, hva()), EINVAL);  // GPA wraps
  KVMX_EXPECT_OK(set(0, kGpa, kSize, hva()));
}

// Guards: host addresses outside user space are EINVAL; an unmapped user address is accepted.
// access_ok() refuses the former; KVM resolves the latter only when the guest touches the page.
TEST_F(Memslot, BadHostAddresses) {
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, 0xffff888000000000ull), EINVAL);  // kernel direct map
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, 0xffffffff81000000ull), EINVAL);  // kernel text
  // Beyond user space with 4- and 5-level paging alike: the user limit (TASK_SIZE_MAX) is 2^47
  // or, with LA57 (QEMU's -cpu max offers it), 2^56; 2^47 itself is valid under LA57.
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, 1ull << 57), EINVAL);
  KVMX_EXPECT_ERRNO(set(0, kGpa, kSize, 0x8000000000000000ull), EINVAL);
  void* hole = mmap(nullptr, kSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(hole, MAP_FAILED);
  ASSERT_EQ(munmap(hole, kSize), 0);
  KVMX_EXPECT_OK(set(1, kGpa, kSize, reinterpret_cast<std::uint64_t>(hole)));
  KVMX_EXPECT_OK(set(1, kGpa, 0, 0));
}

// Guards: a few hundred slots (bounded by KVM_CAP_NR_MEMSLOTS) coexist and are deleted again.
TEST_F(Memslot, ManySlots) {
  const int n = std::min(nr_memslots(), 256);
  ASSERT_GT(n, 0);
  Mapping memory = Mapping::create(n * kPageSize);
  const auto base = reinterpret_cast<std::uint64_t>(memory.data());
  for (int i = 0; i < n; ++i) {
    KVMX_ASSERT_OK(set(i, kGpa + 2 * i * kPageSize, kPageSize, base + i * kPageSize)) << "slot " << i;
  }
  for (int i = 0; i < n; ++i) KVMX_ASSERT_OK(set(i, 0, 0, 0)) << "slot " << i;
}

}  // namespace
