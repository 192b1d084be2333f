// The guest side of the framework: include only from guest translation units (compiled
// freestanding, see kvmx_add_suite(... GUEST ...)).
//
//   GUEST_SYNC(stage, values...)   report progress; the host resumes the vCPU to continue
//   GUEST_DONE()                   the guest is finished (returning from the entry does the same)
//   GUEST_ASSERT(cond, values...)  on failure the host fails the test, printing cond and values
//   GUEST_ASSERT_EQ(expected, actual)
#pragma once

#include <stdint.h>

#include <type_traits>  // header-only, part of freestanding C++

#include "kvmx/guest/abi.h"

namespace kvmx::guest {

void send_ucall(Ucall* uc);

template <class T>
inline uint64_t as_u64(T v) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<uint64_t>(v);
  } else {
    return static_cast<uint64_t>(v);
  }
}

template <class... T>
inline void ucall(UcallKind kind, const char* file, uint32_t line, const char* text, const char* value_text,
                  uint32_t flags, T... v) {
  static_assert(sizeof...(T) <= kUcallMaxValues, "a ucall carries at most 6 values");
  Ucall uc;
  uc.kind = static_cast<uint32_t>(kind);
  uc.line = line;
  uc.file = as_u64(file);
  uc.text = as_u64(text);
  uc.value_text = as_u64(value_text);
  uc.flags = flags;
  uc.nvalues = sizeof...(T);
  uint32_t i = 0;
  ((uc.values[i++] = as_u64(v)), ...);
  for (; i < kUcallMaxValues; ++i) uc.values[i] = 0;
  send_ucall(&uc);
}

// Report forever: the host is not meant to resume a finished or failed guest.
template <class... T>
[[noreturn]] inline void ucall_final(UcallKind kind, const char* file, uint32_t line, const char* text,
                                     const char* value_text, uint32_t flags, T... v) {
  for (;;) ucall(kind, file, line, text, value_text, flags, v...);
}

inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" ::"a"(v), "Nd"(port) : "memory"); }
inline void outw(uint16_t port, uint16_t v) { asm volatile("outw %0, %1" ::"a"(v), "Nd"(port) : "memory"); }
inline void outl(uint16_t port, uint32_t v) { asm volatile("outl %0, %1" ::"a"(v), "Nd"(port) : "memory"); }
inline uint8_t inb(uint16_t port) {
  uint8_t v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
  return v;
}
inline uint16_t inw(uint16_t port) {
  uint16_t v;
  asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
  return v;
}
inline uint32_t inl(uint16_t port) {
  uint32_t v;
  asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
  return v;
}
inline uint64_t read_cr0() {
  uint64_t v;
  asm volatile("mov %%cr0, %0" : "=r"(v));
  return v;
}
inline uint64_t read_cr2() {
  uint64_t v;
  asm volatile("mov %%cr2, %0" : "=r"(v));
  return v;
}
inline uint64_t read_cr3() {
  uint64_t v;
  asm volatile("mov %%cr3, %0" : "=r"(v));
  return v;
}
inline uint64_t read_cr4() {
  uint64_t v;
  asm volatile("mov %%cr4, %0" : "=r"(v));
  return v;
}
inline uint64_t rdmsr(uint32_t index) {
  uint32_t lo, hi;
  asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
  return (uint64_t(hi) << 32) | lo;
}
inline void wrmsr(uint32_t index, uint64_t value) {
  asm volatile("wrmsr" ::"c"(index), "a"(uint32_t(value)), "d"(uint32_t(value >> 32)) : "memory");
}
inline void hlt() { asm volatile("hlt" ::: "memory"); }

}  // namespace kvmx::guest

#define GUEST_SYNC(stage, ...)                                                                       \
  ::kvmx::guest::ucall(::kvmx::guest::UcallKind::sync, __FILE__, __LINE__, nullptr, nullptr, 0, (stage) \
                           __VA_OPT__(, ) __VA_ARGS__)

#define GUEST_DONE() \
  ::kvmx::guest::ucall_final(::kvmx::guest::UcallKind::done, __FILE__, __LINE__, nullptr, nullptr, 0)

#define GUEST_ASSERT(cond, ...)                                                                      \
  do {                                                                                               \
    if (!(cond)) {                                                                                   \
      ::kvmx::guest::ucall_final(::kvmx::guest::UcallKind::assert_failed, __FILE__, __LINE__, #cond,  \
                                 #__VA_ARGS__, 0 __VA_OPT__(, ) __VA_ARGS__);                        \
    }                                                                                                \
  } while (0)

#define GUEST_ASSERT_EQ(expected, actual)                                                            \
  do {                                                                                               \
    const auto kvmx_expected_ = (expected);                                                          \
    const auto kvmx_actual_ = (actual);                                                              \
    if (!(kvmx_expected_ == kvmx_actual_)) {                                                         \
      ::kvmx::guest::ucall_final(::kvmx::guest::UcallKind::assert_failed, __FILE__, __LINE__,         \
                                 #expected, #actual, ::kvmx::guest::kUcallFlagEq, kvmx_expected_,     \
                                 kvmx_actual_);                                                      \
    }                                                                                                \
  } while (0)
