// Architectural x86 constants used by the host (to build guest state) and by guest code.
// Freestanding: <stdint.h> only.
#pragma once

#include <stdint.h>

namespace kvmx::x86 {

// Control registers (SDM "Control Registers"; APM "System Control Registers").
inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Mp = 1ull << 1;
inline constexpr uint64_t kCr0Et = 1ull << 4;
inline constexpr uint64_t kCr0Ne = 1ull << 5;
inline constexpr uint64_t kCr0Wp = 1ull << 16;
inline constexpr uint64_t kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Pse = 1ull << 4;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kCr4Osfxsr = 1ull << 9;
inline constexpr uint64_t kCr4Osxmmexcpt = 1ull << 10;
inline constexpr uint64_t kCr4Smep = 1ull << 20;
inline constexpr uint64_t kCr4Smap = 1ull << 21;

// EFER (MSR 0xc0000080).
inline constexpr uint32_t kMsrEfer = 0xc0000080;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;
inline constexpr uint64_t kEferNxe = 1ull << 11;

inline constexpr uint64_t kRflagsFixed = 1ull << 1;  // bit 1 always reads as 1
inline constexpr uint64_t kRflagsIf = 1ull << 9;
inline constexpr uint64_t kRflagsAc = 1ull << 18;

// 4-level paging entries.
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPteUser = 1ull << 2;
inline constexpr uint64_t kPteAccessed = 1ull << 5;
inline constexpr uint64_t kPteDirty = 1ull << 6;
inline constexpr uint64_t kPteLarge = 1ull << 7;
inline constexpr uint64_t kPteNx = 1ull << 63;
inline constexpr uint64_t kPteAddrMask = 0x000ffffffffff000ull;

// #PF error code (SDM "Page-Fault Exceptions"; APM "Page-Fault Error Code").
inline constexpr uint32_t kPfPresent = 1u << 0;
inline constexpr uint32_t kPfWrite = 1u << 1;
inline constexpr uint32_t kPfUser = 1u << 2;
inline constexpr uint32_t kPfRsvd = 1u << 3;
inline constexpr uint32_t kPfFetch = 1u << 4;

// Exception vectors.
inline constexpr uint8_t kDe = 0, kDb = 1, kNmi = 2, kBp = 3, kOf = 4, kBr = 5, kUd = 6, kNm = 7, kDf = 8,
                         kTs = 10, kNp = 11, kSs = 12, kGp = 13, kPf = 14, kMf = 16, kAc = 17, kMc = 18,
                         kXm = 19, kVe = 20, kCp = 21;

// Segment descriptor types (S=1 code/data; S=0 system).
inline constexpr uint8_t kSegCodeExecReadAccessed = 0xb;
inline constexpr uint8_t kSegDataReadWriteAccessed = 0x3;
inline constexpr uint8_t kSegTss64Busy = 0xb;
inline constexpr uint8_t kSegInterruptGate64 = 0xe;

}  // namespace kvmx::x86
