#include "kvmx/memory.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>

namespace kvmx {
namespace {

// Guards: guest memory is zeroed, writable and unmapped exactly once (moves transfer it).
TEST(Mapping, AnonymousAndMovable) {
  Mapping m = Mapping::create(4 * kPageSize);
  ASSERT_NE(m.data(), nullptr);
  EXPECT_EQ(m.size(), 4 * kPageSize);
  EXPECT_EQ(m.data()[100], std::byte{0});
  m.data()[100] = std::byte{1};
  Mapping n = std::move(m);
  EXPECT_EQ(m.data(), nullptr);
  EXPECT_EQ(n.data()[100], std::byte{1});
}

// Guards: a huge-page mapping starts on a 2 MiB boundary.
TEST(Mapping, HugePagesAreAligned) {
  auto m = Mapping::try_create(2 * kHugePageSize, {.huge_pages = true});
  if (!m.ok() && m.err() == EINVAL) GTEST_SKIP() << m.error().message();
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m->data()) % kHugePageSize, 0u);
}

// Guards: sizes that are not whole pages are refused with EINVAL.
TEST(Mapping, RejectsPartialPages) {
  EXPECT_EQ(Mapping::try_create(0).err(), EINVAL);
  EXPECT_EQ(Mapping::try_create(100).err(), EINVAL);
}

// Guards: contains() handles the region's edges and does not overflow.
TEST(MemoryRegion, Contains) {
  MemoryRegion r(0, 0x100000, 0, Mapping::create(2 * kPageSize));
  EXPECT_TRUE(r.contains(0x100000));
  EXPECT_TRUE(r.contains(0x101fff));
  EXPECT_FALSE(r.contains(0x102000));
  EXPECT_FALSE(r.contains(0xfffff));
  EXPECT_TRUE(r.contains(0x100000, 2 * kPageSize));
  EXPECT_FALSE(r.contains(0x100001, 2 * kPageSize));
  EXPECT_FALSE(r.contains(0x101000, ~0ull));
}

}  // namespace
}  // namespace kvmx
