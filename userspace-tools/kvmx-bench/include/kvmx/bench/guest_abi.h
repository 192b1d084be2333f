// What kvmx-bench's guest workloads and the host share: ports, windows, parameter blocks.
// Included by freestanding guest code: <stdint.h> only, fixed-width fields.
#pragma once

#include <stdint.h>

namespace kvmx::bench {

// Ucall stages of every workload: setup is done, the timed part starts / has ended.
inline constexpr uint64_t kStageStart = 1;
inline constexpr uint64_t kStageEnd = 2;

// Port I/O round trips: 4-byte IN from this port, answered by the host.
inline constexpr uint16_t kPioPort = 0x7f0;
// MMIO round trips: 4-byte reads of this guest-physical address, outside every memslot,
// identity-mapped in the guest's page tables.
inline constexpr uint64_t kMmioGpa = 0xc0000000ull;
// HLT wake-ups: the host injects this vector with KVM_INTERRUPT after each KVM_EXIT_HLT.
inline constexpr uint8_t kWakeVector = 0x40;

// Guest-virtual windows, each in a PML4 slot of its own (the framework's identity map of guest
// memory is slot 0).
inline constexpr uint64_t kWindow2M = 1ull << 39;    // random reads through 2 MiB pages
inline constexpr uint64_t kWindowChurn = 2ull << 39;  // map / unmap / remap
inline constexpr uint64_t kWindowCr3 = 3ull << 39;    // one page, different in each address space
inline constexpr uint64_t kWindowFork = 4ull << 39;   // the copy-on-write region

inline constexpr uint64_t kTag = 0x6b766d7862656e63ull;  // "kvmxbenc"
inline constexpr uint64_t kChildTag = 0x6368696c64777274ull;
inline constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;

// One step of the random walk: the next state from the current one and the value just read.
inline uint64_t walk_next(uint64_t x, uint64_t v) {
  x ^= v;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}
// Index into `n` elements from a walk state (multiply-high: no division, no bias worth a note).
inline uint64_t walk_index(uint64_t x, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * n) >> 64);
}

struct ExitParams {  // cpuid, pio, mmio, hlt
  uint64_t iterations;
  uint64_t warmup;
  uint64_t mmio_gva;
};

struct TouchParams {  // first touch
  uint64_t base;  // guest-virtual (identity-mapped) start of untouched memory
  uint64_t pages;
};

struct RandomParams {  // random reads
  uint64_t base;      // guest-virtual start of the array (4 KiB or 2 MiB mapping)
  uint64_t elements;  // uint64_t elements; element i holds i * kMul
  uint64_t reads;
  uint64_t seed;
};

struct ChurnParams {  // map / unmap / remap with INVLPG
  uint64_t pt;     // guest address (identity) of the leaf table of kWindowChurn
  uint64_t slots;  // window pages, <= 512
  uint64_t pool;   // first of `pool_pages` pages; page j holds kTag ^ its GPA
  uint64_t pool_pages;
  uint64_t iterations;
};

struct Cr3Params {  // CR3 switches
  uint64_t pml4s;   // guest address of `spaces` CR3 values
  uint64_t spaces;
  uint64_t iterations;
};

struct ForkParams {  // fork-like copy-on-write
  uint64_t parent_pt;  // leaf table of kWindowFork in the parent address space (filled)
  uint64_t child_pt;   // leaf table of kWindowFork in the child address space (empty)
  uint64_t child_cr3;
  uint64_t pages;      // <= 512; parent page i holds kTag ^ i at offset 0
  uint64_t pool;       // `pages` free pages for the copies
};

}  // namespace kvmx::bench
