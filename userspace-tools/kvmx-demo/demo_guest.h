// The demo guest (demo_guest.S) and the layout it shares with the host.
#pragma once

#include <cstdint>

namespace demo {

inline constexpr std::uint64_t kLoadAddress = 0x8000;     // where the host copies the blob; CS:IP 0:0x8000
inline constexpr std::uint64_t kMemorySize = 0x100000;    // one memslot: 1 MiB at GPA 0
inline constexpr std::uint64_t kMmioAddress = 0x1ff000;   // inside the guest's 2 MiB page, outside the slot
inline constexpr std::uint64_t kPatternAddress = 0x40000;
inline constexpr std::uint64_t kPatternWords = 2048;      // 16 KiB
inline constexpr std::uint64_t kPatternStep = 0x0101010101010101ull;
inline constexpr std::uint16_t kConsolePort = 0xe9;       // text, one byte per element (rep outsb)
inline constexpr std::uint16_t kReportPort = 0xea;        // 32-bit values the guest reports
inline constexpr std::uint32_t kMmioWriteValue = 0xfeedc0de;
inline constexpr std::uint32_t kMmioReadValue = 0x600dcafe;

}  // namespace demo

extern "C" const unsigned char demo_guest_start[];
extern "C" const unsigned char demo_guest_end[];
