// Anonymous host memory that backs guest memory slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "kvmx/error.hpp"

namespace kvmx {

inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kHugePageSize = 2u << 20;

struct MappingOptions {
  // Align to 2 MiB and ask for transparent huge pages (MADV_HUGEPAGE). A hint: the kernel may
  // still back the range with 4 KiB pages (THP disabled, fragmentation).
  bool huge_pages = false;
};

// An owned anonymous private mapping: unmapped on destruction, movable, not copyable.
class Mapping {
 public:
  using Options = MappingOptions;

  Mapping() = default;
  static Result<Mapping> try_create(std::size_t size, Options options);
  static Result<Mapping> try_create(std::size_t size) { return try_create(size, Options{}); }
  static Mapping create(std::size_t size, Options options = {}) {
    return try_create(size, options).value();
  }

  Mapping(Mapping&& other) noexcept
      : base_(std::exchange(other.base_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  std::byte* data() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  std::span<std::byte> bytes() const noexcept { return {base_, size_}; }

 private:
  Mapping(std::byte* base, std::size_t size) : base_(base), size_(size) {}
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
};

struct MemoryOptions {
  bool huge_pages = false;
  bool read_only = false;  // KVM_MEM_READONLY: guest writes exit to userspace as MMIO
  bool log_dirty = false;  // KVM_MEM_LOG_DIRTY_PAGES
};

// One memslot: its number, where it sits in guest-physical space and the host memory behind it.
class MemoryRegion {
 public:
  MemoryRegion(std::uint32_t slot, std::uint64_t gpa, std::uint32_t flags, Mapping memory)
      : slot_(slot), gpa_(gpa), flags_(flags), memory_(std::move(memory)) {}

  std::uint32_t slot() const noexcept { return slot_; }
  std::uint64_t gpa() const noexcept { return gpa_; }
  std::uint64_t size() const noexcept { return memory_.size(); }
  std::uint32_t flags() const noexcept { return flags_; }
  std::byte* host() const noexcept { return memory_.data(); }
  std::span<std::byte> bytes() const noexcept { return memory_.bytes(); }
  bool contains(std::uint64_t gpa, std::uint64_t len = 1) const noexcept {
    return gpa >= gpa_ && len <= size() && gpa - gpa_ <= size() - len;
  }

 private:
  std::uint32_t slot_;
  std::uint64_t gpa_;
  std::uint32_t flags_;
  Mapping memory_;
};

}  // namespace kvmx
