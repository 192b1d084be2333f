#include "kvmx/stats.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace kvmx {
namespace {

constexpr std::uint32_t kNameSize = 48;

struct SyntheticStat {
  std::string name;
  std::uint32_t flags;
  std::vector<std::uint64_t> values;
};

// A stats file laid out as KVM lays out its own: header, id, descriptors, data, back to back.
std::vector<std::byte> build_image(const std::string& id, const std::vector<SyntheticStat>& stats,
                                   std::uint32_t name_size = kNameSize) {
  const std::size_t desc_size = sizeof(kvm_stats_desc) + name_size;
  kvm_stats_header h{};
  h.name_size = name_size;
  h.num_desc = static_cast<std::uint32_t>(stats.size());
  h.id_offset = sizeof(h);
  h.desc_offset = h.id_offset + name_size;
  h.data_offset = static_cast<std::uint32_t>(h.desc_offset + stats.size() * desc_size);
  std::size_t nvalues = 0;
  for (const auto& s : stats) nvalues += s.values.size();
  std::vector<std::byte> image(h.data_offset + nvalues * 8);
  std::memcpy(image.data(), &h, sizeof(h));
  std::memcpy(image.data() + h.id_offset, id.data(), std::min<std::size_t>(id.size(), name_size));
  std::uint32_t offset = 0;
  for (std::size_t i = 0; i < stats.size(); ++i) {
    kvm_stats_desc d{};
    d.flags = stats[i].flags;
    d.size = static_cast<std::uint16_t>(stats[i].values.size());
    d.offset = offset;
    std::byte* at = image.data() + h.desc_offset + i * desc_size;
    std::memcpy(at, &d, sizeof(d));
    std::memcpy(at + sizeof(d), stats[i].name.data(), std::min<std::size_t>(stats[i].name.size(), name_size));
    std::memcpy(image.data() + h.data_offset + offset, stats[i].values.data(), stats[i].values.size() * 8);
    offset += static_cast<std::uint32_t>(stats[i].values.size() * 8);
  }
  return image;
}

const std::vector<SyntheticStat> kStats = {
    {"mmu_mode", KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE, {2}},
    {"shadow_faults", KVM_STATS_TYPE_CUMULATIVE, {12345}},
    {"halt_wait_hist", KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS, {1, 2, 3, 4}},
    {"max_mmu_page_hash_collisions", KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_NONE, {7}},
};

kvm_stats_header& header_of(std::vector<std::byte>& image) { return *reinterpret_cast<kvm_stats_header*>(image.data()); }

// Guards: the reader finds the id, every descriptor and every value of a KVM-layout file.
TEST(Stats, ParsesKvmLayout) {
  auto stats = Stats::try_parse(build_image("kvm-1234", kStats));
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->id(), "kvm-1234");
  EXPECT_EQ(stats->header().num_desc, 4u);
  ASSERT_EQ(stats->descs().size(), 4u);
  EXPECT_EQ(stats->descs()[2].name, "halt_wait_hist");
  EXPECT_EQ(stats->descs()[2].type(), std::uint32_t{KVM_STATS_TYPE_LOG_HIST});
  EXPECT_EQ(stats->descs()[2].unit(), std::uint32_t{KVM_STATS_UNIT_SECONDS});
  EXPECT_EQ(stats->descs()[2].size, 4u);
  EXPECT_EQ(stats->descs()[3].type(), std::uint32_t{KVM_STATS_TYPE_PEAK});
  EXPECT_EQ(stats->value("mmu_mode"), 2u);
  EXPECT_EQ(stats->value("shadow_faults"), 12345u);
  EXPECT_EQ(stats->value("max_mmu_page_hash_collisions"), 7u);
  auto hist = stats->try_values("halt_wait_hist");
  ASSERT_TRUE(hist.ok()) << hist.error().message();
  EXPECT_EQ(*hist, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(stats->data_size(), 7u * 8);
  auto data = stats->try_read_data();
  ASSERT_TRUE(data.ok()) << data.error().message();
  EXPECT_EQ(*data, (std::vector<std::uint64_t>{2, 12345, 1, 2, 3, 4, 7}));
}

// Guards: an unknown name is ENOENT; a multi-value stat is not read as one value.
TEST(Stats, LookupErrors) {
  auto stats = Stats::try_parse(build_image("kvm-1", kStats)).value();
  EXPECT_EQ(stats.find("nope"), nullptr);
  EXPECT_EQ(stats.try_value("nope").err(), ENOENT);
  EXPECT_EQ(stats.try_value("halt_wait_hist").err(), EINVAL);
}

// Guards: gaps between blocks (allowed by the header's offsets) are honoured.
TEST(Stats, FollowsHeaderOffsets) {
  auto image = build_image("kvmx-9", kStats);
  // Move the data block 64 bytes further.
  auto& h = header_of(image);
  const std::uint32_t old_data = h.data_offset;
  h.data_offset += 64;
  std::vector<std::byte> moved(image.begin(), image.begin() + old_data);
  moved.resize(old_data + 64);
  moved.insert(moved.end(), image.begin() + old_data, image.end());
  auto stats = Stats::try_parse(std::move(moved));
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->value("shadow_faults"), 12345u);
}

// Guards: malformed headers and descriptors are rejected (EBADMSG), short files are ENODATA.
TEST(Stats, RejectsMalformed) {
  auto expect_err = [](std::vector<std::byte> image, int err, const char* why) {
    auto r = Stats::try_parse(std::move(image));
    EXPECT_EQ(r.err(), err) << why << (r.ok() ? ": parsed" : ": " + r.error().message());
  };
  auto base = build_image("kvm-1", kStats);

  expect_err(std::vector<std::byte>(base.begin(), base.begin() + 10), ENODATA, "truncated header");
  expect_err(std::vector<std::byte>(base.begin(), base.begin() + 100), ENODATA, "truncated descriptors");
  {
    auto image = base;
    header_of(image).name_size = 0;
    expect_err(image, EBADMSG, "name_size 0");
  }
  {
    auto image = base;
    header_of(image).id_offset = 8;
    expect_err(image, EBADMSG, "id inside header");
  }
  {
    auto image = base;
    header_of(image).data_offset -= 1;
    expect_err(image, EBADMSG, "data overlapping descriptors");
  }
  {
    auto image = base;
    header_of(image).num_desc = 1u << 20;
    expect_err(image, EBADMSG, "absurd num_desc");
  }
  expect_err(build_image(std::string(kNameSize, 'x'), kStats), EBADMSG, "id without NUL");
  expect_err(build_image("kvm-1", {{std::string(kNameSize, 'n'), 0, {1}}}), EBADMSG, "name without NUL");
  expect_err(build_image("kvm-1", {{"", 0, {1}}}), EBADMSG, "empty name");
  expect_err(build_image("kvm-1", {{"a", 0, {1}}, {"a", 0, {2}}}), EBADMSG, "duplicate name");
  expect_err(build_image("kvm-1", {{"a", 0, {}}}), EBADMSG, "size 0");
  {
    auto image = build_image("kvm-1", {{"a", 0, {1}}});
    auto& h = header_of(image);
    auto* d = reinterpret_cast<kvm_stats_desc*>(image.data() + h.desc_offset);
    d->offset = 4;
    expect_err(image, EBADMSG, "unaligned offset");
  }
  {
    // Descriptors that point past the end of the data: parsing works, reading the value does not.
    auto image = build_image("kvm-1", {{"a", 0, {1}}});
    auto& h = header_of(image);
    reinterpret_cast<kvm_stats_desc*>(image.data() + h.desc_offset)->offset = 8;
    auto stats = Stats::try_parse(image);
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_EQ(stats->try_value("a").err(), ENODATA);
  }
}

// Guards: the fd path reads the same file with pread, and sees data that change under it.
TEST(Stats, ReadsAnFdWithPread) {
  const int raw = ::memfd_create("kvmx-stats-test", MFD_CLOEXEC);
  ASSERT_GE(raw, 0) << std::strerror(errno);
  Fd fd(raw);
  auto image = build_image("kvmx-42", kStats);
  ASSERT_EQ(::write(fd.get(), image.data(), image.size()), static_cast<ssize_t>(image.size()));
  auto stats = Stats::try_adopt(std::move(fd));
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->id(), "kvmx-42");
  EXPECT_EQ(stats->value("shadow_faults"), 12345u);
  const std::uint64_t updated = 99;
  const auto& h = stats->header();
  ASSERT_EQ(::pwrite(stats->fd(), &updated, 8, h.data_offset + 8), 8);
  EXPECT_EQ(stats->value("shadow_faults"), 99u);
  ASSERT_EQ(::ftruncate(stats->fd(), h.data_offset + 8), 0);
  EXPECT_EQ(stats->try_value("shadow_faults").err(), ENODATA);
}

}  // namespace
}  // namespace kvmx
