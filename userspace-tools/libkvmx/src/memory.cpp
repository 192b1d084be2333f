#include "kvmx/memory.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>

namespace kvmx {

Result<Mapping> Mapping::try_create(std::size_t size, Options options) {
  if (size == 0 || size % kPageSize != 0) {
    return Error{EINVAL, "mmap of " + std::to_string(size) + " bytes",
                 "guest memory is made of whole 4 KiB pages"};
  }
  const std::size_t align = options.huge_pages ? kHugePageSize : kPageSize;
  // Over-allocate by one alignment unit and trim both ends, so a huge-page mapping starts on a
  // 2 MiB boundary; mmap only promises 4 KiB alignment.
  const std::size_t reserve = size + (align - kPageSize);
  void* raw = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
  if (raw == MAP_FAILED) return errno_error("mmap of guest memory");

  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + align - 1) & ~(std::uintptr_t{align} - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  const std::uintptr_t tail = aligned + size;
  const std::uintptr_t end = start + reserve;
  if (end > tail) ::munmap(reinterpret_cast<void*>(tail), end - tail);

  auto* base = reinterpret_cast<std::byte*>(aligned);
  if (options.huge_pages && ::madvise(base, size, MADV_HUGEPAGE) != 0) {
    Error error = errno_error("madvise(MADV_HUGEPAGE)");
    error.hint = "transparent huge pages may be disabled (/sys/kernel/mm/transparent_hugepage/enabled)";
    ::munmap(base, size);
    return error;
  }
  return Mapping(base, size);
}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    if (base_) ::munmap(base_, size_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (base_) ::munmap(base_, size_);
}

}  // namespace kvmx
