#include "kvmx/stats.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace kvmx {

namespace {

static_assert(sizeof(kvm_stats_header) == 24, "kvm_stats_header has the ABI layout");
static_assert(sizeof(kvm_stats_desc) == 16 && offsetof(kvm_stats_desc, name) == 16,
              "kvm_stats_desc has the ABI layout");

// Sanity limits for a header read from an fd: far above what KVM or kvmx use (48 bytes of name,
// a few dozen stats), low enough that a corrupt header cannot make us allocate gigabytes.
constexpr std::uint32_t kMaxNameSize = 4096;
constexpr std::uint32_t kMaxDescs = 1u << 16;

Error malformed(std::string detail) { return Error{EBADMSG, "stats: " + std::move(detail), {}}; }

// The string in a NUL-padded field, or nullopt without a NUL.
std::optional<std::string> padded_string(std::span<const std::byte> field) {
  const auto* chars = reinterpret_cast<const char*>(field.data());
  const auto* end = static_cast<const char*>(std::memchr(chars, '\0', field.size()));
  if (!end) return std::nullopt;
  return std::string(chars, end);
}

}  // namespace

Result<Stats> Stats::try_adopt(Fd fd) {
  Stats stats;
  stats.fd_ = std::move(fd);
  auto r = stats.parse();
  if (!r) return r.error();
  return stats;
}

Result<Stats> Stats::try_parse(std::vector<std::byte> image) {
  Stats stats;
  stats.image_ = std::move(image);
  auto r = stats.parse();
  if (!r) return r.error();
  return stats;
}

Result<void> Stats::read_at(std::uint64_t offset, std::span<std::byte> out, const std::string& what) const {
  if (!fd_.valid()) {
    if (offset > image_.size() || out.size() > image_.size() - offset) {
      return Error{ENODATA, "stats: " + what, "the image ends at byte " + std::to_string(image_.size())};
    }
    std::copy_n(image_.begin() + static_cast<std::ptrdiff_t>(offset), out.size(), out.begin());
    return {};
  }
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(("pread(stats fd): " + what).c_str());
    }
    if (n == 0) {
      return Error{ENODATA, "stats: " + what,
                   "the stats fd ends at byte " + std::to_string(offset + done)};
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> Stats::parse() {
  auto r = read_at(0, std::as_writable_bytes(std::span(&header_, 1)), "header");
  if (!r) return r;
  const kvm_stats_header& h = header_;
  if (h.name_size == 0 || h.name_size > kMaxNameSize) {
    return malformed("name_size " + std::to_string(h.name_size));
  }
  if (h.num_desc > kMaxDescs) return malformed("num_desc " + std::to_string(h.num_desc));
  const std::uint64_t desc_size = sizeof(kvm_stats_desc) + std::uint64_t{h.name_size};
  // The blocks come in the order header, id, descriptors, data, and do not overlap.
  if (h.id_offset < sizeof(kvm_stats_header)) return malformed("id_offset inside the header");
  if (h.desc_offset < std::uint64_t{h.id_offset} + h.name_size) return malformed("desc_offset inside the id");
  if (h.data_offset < h.desc_offset + h.num_desc * desc_size) {
    return malformed("data_offset inside the descriptors");
  }

  std::vector<std::byte> id(h.name_size);
  r = read_at(h.id_offset, id, "id string");
  if (!r) return r;
  auto id_string = padded_string(id);
  if (!id_string) return malformed("id string without a NUL in " + std::to_string(h.name_size) + " bytes");
  id_ = std::move(*id_string);

  std::vector<std::byte> table(h.num_desc * desc_size);
  r = read_at(h.desc_offset, table, "descriptors");
  if (!r) return r;
  std::set<std::string, std::less<>> names;
  descs_.clear();
  data_size_ = 0;
  for (std::uint32_t i = 0; i < h.num_desc; ++i) {
    const std::span<const std::byte> entry(table.data() + i * desc_size, desc_size);
    kvm_stats_desc raw{};
    std::memcpy(&raw, entry.data(), sizeof(raw));
    auto name = padded_string(entry.subspan(sizeof(kvm_stats_desc)));
    const std::string which = "descriptor " + std::to_string(i);
    if (!name) return malformed(which + ": name without a NUL");
    if (name->empty()) return malformed(which + ": empty name");
    if (!names.insert(*name).second) return malformed(which + ": duplicate name " + *name);
    if (raw.size == 0) return malformed(which + " (" + *name + "): size 0");
    if (raw.offset % sizeof(std::uint64_t) != 0) return malformed(which + " (" + *name + "): unaligned offset");
    data_size_ = std::max(data_size_, std::uint64_t{raw.offset} + std::uint64_t{raw.size} * sizeof(std::uint64_t));
    descs_.push_back(StatDesc{.name = std::move(*name),
                              .flags = raw.flags,
                              .exponent = raw.exponent,
                              .size = raw.size,
                              .offset = raw.offset,
                              .bucket_size = raw.bucket_size});
  }
  return {};
}

const StatDesc* Stats::find(std::string_view name) const noexcept {
  const auto it = std::find_if(descs_.begin(), descs_.end(), [&](const StatDesc& d) { return d.name == name; });
  return it == descs_.end() ? nullptr : &*it;
}

Result<std::vector<std::uint64_t>> Stats::try_values(std::string_view name) const {
  const StatDesc* desc = find(name);
  if (!desc) return Error{ENOENT, "stats: " + std::string(name), "no such statistic in " + id_};
  std::vector<std::uint64_t> values(desc->size);
  auto r = read_at(std::uint64_t{header_.data_offset} + desc->offset, std::as_writable_bytes(std::span(values)),
                   "values of " + desc->name);
  if (!r) return r.error();
  return values;
}

Result<std::uint64_t> Stats::try_value(std::string_view name) const {
  const StatDesc* desc = find(name);
  if (desc && desc->size != 1) {
    return Error{EINVAL, "stats: " + std::string(name), "has " + std::to_string(desc->size) + " values; use try_values"};
  }
  auto values = try_values(name);
  if (!values) return values.error();
  return values->front();
}

Result<std::vector<std::uint64_t>> Stats::try_read_data() const {
  std::vector<std::uint64_t> data(data_size_ / sizeof(std::uint64_t));
  auto r = read_at(header_.data_offset, std::as_writable_bytes(std::span(data)), "data");
  if (!r) return r.error();
  return data;
}

}  // namespace kvmx
