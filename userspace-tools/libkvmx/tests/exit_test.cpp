// Exit decoding from a hand-filled kvm_run: no device involved.
#include "kvmx/exit.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace kvmx {
namespace {

// A fake vCPU mapping laid out as x86 KVM does: kvm_run, then the PIO data page.
class FakeRun : public ::testing::Test {
 protected:
  static constexpr std::size_t kSize = 3 * 4096;
  static constexpr std::size_t kPioOffset = 4096;

  FakeRun() : storage_(kSize / 8) { std::memset(&run(), 0, kSize); }
  kvm_run& run() { return *reinterpret_cast<kvm_run*>(storage_.data()); }
  std::byte* page(std::size_t offset) { return reinterpret_cast<std::byte*>(storage_.data()) + offset; }
  Exit decode() { return decode_exit(run(), kSize); }

  void fill_io(std::uint8_t direction, std::uint16_t port, std::uint8_t size, std::uint32_t count,
               std::uint64_t offset = kPioOffset) {
    run().exit_reason = KVM_EXIT_IO;
    run().io.direction = direction;
    run().io.port = port;
    run().io.size = size;
    run().io.count = count;
    run().io.data_offset = offset;
  }

 private:
  std::vector<std::uint64_t> storage_;
};

// Guards: OUT data is read from the PIO page at data_offset, little-endian.
TEST_F(FakeRun, IoOut) {
  fill_io(KVM_EXIT_IO_OUT, 0x3f8, 2, 1);
  page(kPioOffset)[0] = std::byte{0x34};
  page(kPioOffset)[1] = std::byte{0x12};
  Exit e = decode();
  auto* out = std::get_if<exit::IoOut>(&e);
  ASSERT_NE(out, nullptr) << describe(e);
  EXPECT_EQ(out->port, 0x3f8);
  EXPECT_EQ(out->size, 2);
  EXPECT_EQ(out->count, 1u);
  EXPECT_EQ(out->value(), 0x1234u);
  EXPECT_EQ(out->data.data(), page(kPioOffset));
  EXPECT_EQ(exit_reason(e), std::uint32_t{KVM_EXIT_IO});
  EXPECT_EQ(describe(e), "IO (2) out port 0x3f8 size 2 count 1 value 0x1234");
}

// Guards: IN data is written into the PIO page, where KVM picks it up on the next run.
TEST_F(FakeRun, IoInWritesIntoTheDataPage) {
  fill_io(KVM_EXIT_IO_IN, 0x71, 4, 1);
  Exit e = decode();
  auto* in = std::get_if<exit::IoIn>(&e);
  ASSERT_NE(in, nullptr) << describe(e);
  in->set_value(0xdeadbeef);
  EXPECT_EQ(page(kPioOffset)[0], std::byte{0xef});
  EXPECT_EQ(page(kPioOffset)[3], std::byte{0xde});
}

// Guards: string I/O (rep ins/outs) hands out size * count bytes.
TEST_F(FakeRun, IoStringSpansAllElements) {
  fill_io(KVM_EXIT_IO_OUT, 0x80, 4, 16);
  Exit e = decode();
  auto* out = std::get_if<exit::IoOut>(&e);
  ASSERT_NE(out, nullptr) << describe(e);
  EXPECT_EQ(out->data.size(), 64u);
}

// Guards: I/O data that would lie outside the mapping is reported, never dereferenced.
TEST_F(FakeRun, IoOutsideMappingIsMalformed) {
  fill_io(KVM_EXIT_IO_OUT, 0x80, 4, 1, kSize - 2);
  EXPECT_TRUE(std::holds_alternative<exit::Malformed>(decode()));
  fill_io(KVM_EXIT_IO_OUT, 0x80, 4, 0x40000000);
  EXPECT_TRUE(std::holds_alternative<exit::Malformed>(decode()));
  fill_io(KVM_EXIT_IO_OUT, 0x80, 4, 1, ~0ull);
  EXPECT_TRUE(std::holds_alternative<exit::Malformed>(decode()));
  fill_io(KVM_EXIT_IO_OUT, 0x80, 4, 1, 8);  // overlaps struct kvm_run itself
  EXPECT_TRUE(std::holds_alternative<exit::Malformed>(decode()));
}

// Guards: impossible I/O sizes, directions and counts are reported.
TEST_F(FakeRun, IoBadFieldsAreMalformed) {
  fill_io(KVM_EXIT_IO_OUT, 0x80, 3, 1);
  EXPECT_TRUE(std::holds_alternative<exit::Malformed>(decode()));
  fill_io(2, 0x80, 1, 1);
  EXPECT_TRUE(std::holds_alternative<exit::Malformed>(decode()));
  fill_io(KVM_EXIT_IO_IN, 0x80, 1, 0);
  Exit e = decode();
  ASSERT_TRUE(std::holds_alternative<exit::Malformed>(e));
  EXPECT_EQ(exit_reason(e), std::uint32_t{KVM_EXIT_IO});
}

// Guards: MMIO writes carry address, width and value; reads are completed through the span.
TEST_F(FakeRun, Mmio) {
  run().exit_reason = KVM_EXIT_MMIO;
  run().mmio.phys_addr = 0xd0000000;
  run().mmio.len = 4;
  run().mmio.is_write = 1;
  std::memcpy(run().mmio.data, "\x78\x56\x34\x12", 4);
  Exit e = decode();
  auto* mmio = std::get_if<exit::Mmio>(&e);
  ASSERT_NE(mmio, nullptr) << describe(e);
  EXPECT_TRUE(mmio->is_write);
  EXPECT_EQ(mmio->addr, 0xd0000000u);
  EXPECT_EQ(mmio->value(), 0x12345678u);
  EXPECT_EQ(describe(e), "MMIO (6) write 0xd0000000 len 4 value 0x12345678");

  run().mmio.is_write = 0;
  run().mmio.len = 2;
  e = decode();
  mmio = std::get_if<exit::Mmio>(&e);
  ASSERT_NE(mmio, nullptr);
  mmio->set_value(0xabcd);
  EXPECT_EQ(run().mmio.data[0], 0xcd);
  EXPECT_EQ(run().mmio.data[1], 0xab);
  EXPECT_EQ(run().mmio.data[2], 0x34);  // untouched beyond len

  run().mmio.len = 9;
  EXPECT_TRUE(std::holds_alternative<exit::Malformed>(decode()));
}

// Guards: the argument-less exits decode to their own types.
TEST_F(FakeRun, SimpleExits) {
  run().exit_reason = KVM_EXIT_HLT;
  EXPECT_TRUE(std::holds_alternative<exit::Hlt>(decode()));
  run().exit_reason = KVM_EXIT_SHUTDOWN;
  EXPECT_TRUE(std::holds_alternative<exit::Shutdown>(decode()));
  run().exit_reason = KVM_EXIT_INTR;
  EXPECT_TRUE(std::holds_alternative<exit::Intr>(decode()));
  run().exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
  EXPECT_TRUE(std::holds_alternative<exit::IrqWindowOpen>(decode()));
  EXPECT_EQ(describe(decode()), "IRQ_WINDOW_OPEN (7)");
}

// Guards: FAIL_ENTRY keeps the hardware reason and the CPU.
TEST_F(FakeRun, FailEntry) {
  run().exit_reason = KVM_EXIT_FAIL_ENTRY;
  run().fail_entry.hardware_entry_failure_reason = 0x80000021;
  run().fail_entry.cpu = 3;
  Exit e = decode();
  auto* f = std::get_if<exit::FailEntry>(&e);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->hardware_reason, 0x80000021u);
  EXPECT_EQ(f->cpu, 3u);
  EXPECT_EQ(describe(e), "FAIL_ENTRY (9) hardware reason 0x80000021 cpu 3");
}

// Guards: INTERNAL_ERROR data is capped at the array even when ndata says more.
TEST_F(FakeRun, InternalErrorDataIsCapped) {
  run().exit_reason = KVM_EXIT_INTERNAL_ERROR;
  run().internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
  run().internal.ndata = 2;
  run().internal.data[0] = 0x11;
  run().internal.data[1] = 0x22;
  Exit e = decode();
  auto* ie = std::get_if<exit::InternalError>(&e);
  ASSERT_NE(ie, nullptr);
  EXPECT_EQ(ie->suberror, std::uint32_t{KVM_INTERNAL_ERROR_EMULATION});
  ASSERT_EQ(ie->data.size(), 2u);
  EXPECT_EQ(ie->data[1], 0x22u);
  EXPECT_EQ(describe(e), "INTERNAL_ERROR (17) suberror 1 0x11 0x22");

  run().internal.ndata = 1000;
  e = decode();
  EXPECT_EQ(std::get<exit::InternalError>(e).data.size(), 16u);
}

// Guards: SYSTEM_EVENT, EXCEPTION, UNKNOWN and DEBUG keep their payloads.
TEST_F(FakeRun, PayloadExits) {
  run().exit_reason = KVM_EXIT_SYSTEM_EVENT;
  run().system_event.type = KVM_SYSTEM_EVENT_RESET;
  run().system_event.ndata = 1;
  run().system_event.data[0] = 9;
  Exit e = decode();
  ASSERT_TRUE(std::holds_alternative<exit::SystemEvent>(e));
  EXPECT_EQ(std::get<exit::SystemEvent>(e).type, std::uint32_t{KVM_SYSTEM_EVENT_RESET});
  EXPECT_EQ(std::get<exit::SystemEvent>(e).data.size(), 1u);

  run().exit_reason = KVM_EXIT_EXCEPTION;
  run().ex.exception = 14;
  run().ex.error_code = 2;
  e = decode();
  ASSERT_TRUE(std::holds_alternative<exit::Exception>(e));
  EXPECT_EQ(std::get<exit::Exception>(e).vector, 14u);

  run().exit_reason = KVM_EXIT_UNKNOWN;
  run().hw.hardware_exit_reason = 0x7b;
  e = decode();
  ASSERT_TRUE(std::holds_alternative<exit::Unknown>(e));
  EXPECT_EQ(std::get<exit::Unknown>(e).hardware_reason, 0x7bu);

  run().exit_reason = KVM_EXIT_DEBUG;
  run().debug.arch.exception = 1;
  run().debug.arch.pc = 0x1000;
  e = decode();
  ASSERT_TRUE(std::holds_alternative<exit::Debug>(e));
  EXPECT_EQ(std::get<exit::Debug>(e).arch.pc, 0x1000u);
}

// Guards: reasons the library does not decode keep their number and print by name.
TEST_F(FakeRun, UnhandledKeepsReason) {
  run().exit_reason = KVM_EXIT_X86_BUS_LOCK;
  Exit e = decode();
  ASSERT_TRUE(std::holds_alternative<exit::Unhandled>(e));
  EXPECT_EQ(exit_reason(e), std::uint32_t{KVM_EXIT_X86_BUS_LOCK});
  EXPECT_EQ(describe(e), "X86_BUS_LOCK (33)");
  run().exit_reason = 5000;
  EXPECT_EQ(describe(decode()), "unknown exit reason (5000)");
}

// Guards: little-endian helpers respect the access width.
TEST(ExitBytes, LoadStoreLittleEndian) {
  std::byte b[8]{};
  exit::store_le(std::span<std::byte>(b, 3), 0x11223344);
  EXPECT_EQ(b[0], std::byte{0x44});
  EXPECT_EQ(b[2], std::byte{0x22});
  EXPECT_EQ(b[3], std::byte{0});
  EXPECT_EQ(exit::load_le(std::span<const std::byte>(b, 3)), 0x223344u);
}

}  // namespace
}  // namespace kvmx
