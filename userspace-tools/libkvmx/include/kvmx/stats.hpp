// KVM's binary statistics: a reader for the fd KVM_GET_STATS_FD returns on a VM or vCPU fd.
//
// The fd reads as Documentation/virt/kvm/api.rst lays it out: a kvm_stats_header, an id string
// (name_size bytes at id_offset), num_desc descriptors at desc_offset (each a kvm_stats_desc and
// name_size bytes of name) and the data at data_offset, desc.size u64 values per stat at
// data_offset + desc.offset. Header, id and descriptors never change; the data are read anew
// (pread) on every value call.
#pragma once

#include "kvmx/linux_kvm.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvmx/error.hpp"
#include "kvmx/fd.hpp"

namespace kvmx {

// One statistic, as its descriptor says.
struct StatDesc {
  std::string name;
  std::uint32_t flags = 0;  // KVM_STATS_TYPE_* | KVM_STATS_UNIT_* | KVM_STATS_BASE_*
  std::int16_t exponent = 0;
  std::uint16_t size = 0;    // number of u64 values
  std::uint32_t offset = 0;  // of the first value, from data_offset
  std::uint32_t bucket_size = 0;

  std::uint32_t type() const noexcept { return flags & KVM_STATS_TYPE_MASK; }
  std::uint32_t unit() const noexcept { return flags & KVM_STATS_UNIT_MASK; }
  std::uint32_t base() const noexcept { return flags & KVM_STATS_BASE_MASK; }
};

class Stats {
 public:
  // Own a stats fd and read its header, id and descriptors. Fails with EBADMSG when they do not
  // describe a well-formed file (see try_parse).
  static Result<Stats> try_adopt(Fd fd);
  // The same over the bytes of a stats file (a saved copy, or a synthetic one in a test); the
  // values come from `image` too. Checks: offsets in order and not overlapping, id and names
  // NUL-terminated within name_size, names non-empty and unique, every stat at least one value
  // at an 8-byte aligned offset.
  static Result<Stats> try_parse(std::vector<std::byte> image);

  Stats(Stats&&) noexcept = default;
  Stats& operator=(Stats&&) noexcept = default;
  Stats(const Stats&) = delete;
  Stats& operator=(const Stats&) = delete;

  int fd() const noexcept { return fd_.get(); }
  const kvm_stats_header& header() const noexcept { return header_; }
  const std::string& id() const noexcept { return id_; }
  const std::vector<StatDesc>& descs() const noexcept { return descs_; }
  // The descriptor called `name`, or nullptr.
  const StatDesc* find(std::string_view name) const noexcept;
  // Bytes of data the descriptors cover, from data_offset.
  std::uint64_t data_size() const noexcept { return data_size_; }

  // The current values of stat `name` (size of them); ENOENT for an unknown name.
  Result<std::vector<std::uint64_t>> try_values(std::string_view name) const;
  // The current value of a stat with one value; EINVAL for a stat with several.
  Result<std::uint64_t> try_value(std::string_view name) const;
  std::uint64_t value(std::string_view name) const { return try_value(name).value(); }
  // The whole data block (data_size() / 8 values), read at once.
  Result<std::vector<std::uint64_t>> try_read_data() const;

 private:
  Stats() = default;
  Result<void> parse();
  // Exactly out.size() bytes at `offset`, from the fd or the image; `what` labels an error.
  Result<void> read_at(std::uint64_t offset, std::span<std::byte> out, const std::string& what) const;

  Fd fd_;
  std::vector<std::byte> image_;
  kvm_stats_header header_{};
  std::string id_;
  std::vector<StatDesc> descs_;
  std::uint64_t data_size_ = 0;
};

}  // namespace kvmx
