// bad_input: races between a vCPU thread in KVM_RUN and other threads that change the vCPU, its
// memslots or its fds. Every loop is bounded; a vCPU thread is stopped by immediate_exit plus a
// signal, so a hypervisor that ignores both shows up as the suite's per-test timeout, not a hang.
#include <gtest/gtest.h>
#include "kvmx/linux_kvm.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "bad_input_guest.hpp"
#include "kvmx/kvmx.hpp"
#include "kvmx/test/guest.hpp"

namespace {

using namespace bad_input_suite;
using namespace std::chrono_literals;
using kvmx::kPageSize;
using kvmx::Vcpu;
using kvmx::guest::UcallKind;
using kvmx::test::GuestVm;
using kvmx::test::HostUcall;

constexpr std::uint64_t kExtraGpa = 0x10000000;
constexpr int kKickSignal = SIGUSR1;

void install_kick_handler() {
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN returns EINTR
  sigaction(kKickSignal, &sa, nullptr);
}

// Runs a vCPU in its own thread until the guest reports DONE, something unexpected happens, or
// stop() (immediate_exit and a signal) interrupts it. MMIO and HLT exits are resumed.
class VcpuThread {
 public:
  VcpuThread(GuestVm& guest, Vcpu& vcpu) : guest_(guest), vcpu_(vcpu), thread_([this] { loop(); }) {}
  ~VcpuThread() { stop(); }

  // Make the current or next KVM_RUN return EINTR, and end the thread; true if it ended within
  // `limit` (the signal is repeated, as a kick may land just before KVM_RUN).
  bool stop(std::chrono::milliseconds limit = 10s) {
    if (!thread_.joinable()) return true;
    stop_ = true;
    vcpu_.set_immediate_exit(true);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!finished_ && std::chrono::steady_clock::now() < deadline) {
      pthread_kill(thread_.native_handle(), kKickSignal);
      std::this_thread::sleep_for(1ms);
    }
    const bool ok = finished_;
    thread_.join();  // if it never finished, the suite's timeout reports the hang
    vcpu_.set_immediate_exit(false);
    return ok;
  }
  // Interrupt KVM_RUN once without stopping the thread.
  void kick() { pthread_kill(thread_.native_handle(), kKickSignal); }

  bool finished() const { return finished_; }
  bool done() const { return done_; }
  const std::string& error() const { return error_; }
  std::uint64_t exits() const { return exits_; }
  std::uint64_t interrupts() const { return interrupts_; }

 private:
  void loop() {
    while (!stop_) {
      HostUcall uc;
      try {
        uc = guest_.run(vcpu_);
      } catch (const std::exception& e) {
        error_ = e.what();
        break;
      }
      ++exits_;
      if (uc.kind == UcallKind::done) {
        done_ = true;
        break;
      }
      if (uc.kind == UcallKind::sync) continue;
      if (uc.kind != UcallKind::none) {
        error_ = uc.describe();
        break;
      }
      if (uc.exit_reason == KVM_EXIT_INTR) {
        ++interrupts_;
      } else if (uc.exit_reason != KVM_EXIT_MMIO && uc.exit_reason != KVM_EXIT_HLT) {
        error_ = "unexpected exit " + uc.exit;
        break;
      }
    }
    finished_ = true;
  }

  GuestVm& guest_;
  Vcpu& vcpu_;
  std::atomic<bool> stop_{false}, finished_{false}, done_{false};
  std::atomic<std::uint64_t> exits_{0}, interrupts_{0};
  std::string error_;
  std::thread thread_;
};

class Race : public kvmx::test::GuestTest {
 protected:
  bool needs_vcpus() const override { return true; }
  void SetUp() override {
    GuestTest::SetUp();
    install_kick_handler();
  }
  std::uint64_t spins() { return std::atomic_ref<std::uint64_t>(*const_cast<std::uint64_t*>(guest().host_ptr_to(&g_spins))).load(); }
  void wait_for_spins(std::uint64_t above, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (spins() <= above && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  }
  void request_done() {
    std::atomic_ref<std::uint64_t>(*const_cast<std::uint64_t*>(guest().host_ptr_to(&g_stop))).store(1);
  }
};

// Guards: KVM_GET/SET_REGS from another thread during KVM_RUN wait for the vCPU and break nothing.
// The guest, given stale but valid snapshots of its own loop, still finishes.
TEST_F(Race, SetRegsWhileRunning) {
  auto vcpu = guest().add_vcpu(guest_spin);
  VcpuThread runner(guest(), vcpu);
  wait_for_spins(0);
  std::atomic<bool> regs_done{false};
  std::string regs_error;
  int pairs = 0;
  std::thread regs([&] {
    // At most 50 pairs or 2 s, whichever ends first: Bochs test hosts have one CPU and a guest
    // clock that runs with emulated instructions, so every kick costs real time there.
    const auto budget = std::chrono::steady_clock::now() + 2s;
    for (; pairs < 50 && std::chrono::steady_clock::now() < budget; ++pairs) {
      auto r = vcpu.try_get_regs();
      if (!r) { regs_error = r.error().message(); break; }
      auto w = vcpu.try_set_regs(*r);
      if (!w) { regs_error = w.error().message(); break; }
    }
    regs_done = true;
  });
  // Each of its ioctls waits for the vCPU mutex, which KVM_RUN releases when a kick interrupts it.
  while (!regs_done) {
    runner.kick();
    std::this_thread::sleep_for(1ms);
  }
  regs.join();
  EXPECT_GT(pairs, 0);
  EXPECT_TRUE(regs_error.empty()) << regs_error;
  request_done();
  const auto until_done = std::chrono::steady_clock::now() + 10s;
  while (!runner.finished() && std::chrono::steady_clock::now() < until_done) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(runner.stop());
  EXPECT_TRUE(runner.error().empty()) << runner.error();
  EXPECT_TRUE(runner.done()) << "the guest did not finish after " << runner.exits() << " exits";
}

// Guards: immediate_exit plus a signal from another thread gets a spinning vCPU out of KVM_RUN.
// With it set, KVM_RUN returns EINTR at once; cleared, the guest runs on.
TEST_F(Race, ImmediateExitFromAnotherThread) {
  KVMX_REQUIRE_CAP(KVM_CAP_IMMEDIATE_EXIT);
  auto vcpu = guest().add_vcpu(guest_spin);
  for (int round = 0; round < 6; ++round) {
    const std::uint64_t before = spins();
    VcpuThread runner(guest(), vcpu);
    wait_for_spins(before);  // the guest runs in this round's KVM_RUN
    ASSERT_TRUE(runner.stop()) << "round " << round << ": the vCPU thread did not leave KVM_RUN";
    ASSERT_TRUE(runner.error().empty()) << runner.error();
    EXPECT_GE(runner.interrupts(), 1u);
  }
  vcpu.set_immediate_exit(true);
  KVMX_EXPECT_ERRNO(vcpu.try_run(), EINTR);
  vcpu.set_immediate_exit(false);
  request_done();
  VcpuThread runner(guest(), vcpu);
  const auto until_done = std::chrono::steady_clock::now() + 10s;
  while (!runner.finished() && std::chrono::steady_clock::now() < until_done) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(runner.done()) << runner.error();
}

// Guards: deleting, re-creating and moving a slot the running guest uses neither crashes nor hangs.
// Accesses while the slot is missing exit as MMIO.
TEST_F(Race, MemslotChurnWhileRunning) {
  constexpr std::uint64_t kPages = 8;
  constexpr std::uint64_t kSize = kPages * kPageSize;
  kvmx::Mapping backing = kvmx::Mapping::create(kSize);
  for (std::uint64_t off = 0; off < kSize; off += kPageSize) guest().map(kExtraGpa + off, kExtraGpa + off);
  auto slot = [&](std::uint64_t gpa, std::uint64_t size) {
    return kvm_userspace_memory_region{.slot = 1,
                                       .flags = 0,
                                       .guest_phys_addr = gpa,
                                       .memory_size = size,
                                       .userspace_addr = reinterpret_cast<std::uint64_t>(backing.data())};
  };
  KVMX_ASSERT_OK(guest().vm().try_set_user_memory_region(slot(kExtraGpa, kSize)));
  auto vcpu = guest().add_vcpu(guest_touch_pages, {kExtraGpa, kPages});
  {
    VcpuThread runner(guest(), vcpu);
    wait_for_spins(0);
    for (int i = 0; i < 60 && !runner.finished(); ++i) {
      KVMX_ASSERT_OK(guest().vm().try_set_user_memory_region(slot(kExtraGpa, 0)));
      std::this_thread::sleep_for(100us);
      KVMX_ASSERT_OK(guest().vm().try_set_user_memory_region(slot(kExtraGpa + 0x200000, kSize)));
      std::this_thread::sleep_for(100us);
      KVMX_ASSERT_OK(guest().vm().try_set_user_memory_region(slot(kExtraGpa, kSize)));
    }
    const std::uint64_t before = spins();
    wait_for_spins(before);
    EXPECT_GT(spins(), before) << "the guest stopped making progress after the churn";
    request_done();
    const auto until_done = std::chrono::steady_clock::now() + 10s;
    while (!runner.finished() && std::chrono::steady_clock::now() < until_done) std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(runner.stop());
    EXPECT_TRUE(runner.error().empty()) << runner.error();
    EXPECT_TRUE(runner.done());
  }
  // The guest's writes went to the backing memory whenever the slot was in place.
  EXPECT_NE(*reinterpret_cast<std::uint64_t*>(backing.data()), 0u);
}

// Guards: closing the VM fd and replacing the vCPU fd during KVM_RUN is safe.
// The run goes on until kicked, the fd number then reaches /dev/null (ENOTTY), and the VM is torn down
// when the kvm_run mapping goes. Afterwards the device still creates VMs.
TEST_F(Race, CloseFdsWhileRunning) {
  KVMX_REQUIRE_CAP(KVM_CAP_IMMEDIATE_EXIT);
  auto vcpu = guest().add_vcpu(guest_spin);
  {
    VcpuThread runner(guest(), vcpu);
    wait_for_spins(0);
    KVMX_EXPECT_OK(guest().vm().try_close());
    const std::uint64_t before = spins();
    wait_for_spins(before);
    EXPECT_GT(spins(), before) << "the guest stopped when the VM fd closed";
    kvmx::Fd null(open("/dev/null", O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(null.valid());
    ASSERT_EQ(dup2(null.get(), vcpu.fd()), vcpu.fd());
    EXPECT_TRUE(runner.stop()) << "KVM_RUN did not end on immediate_exit and a signal";
    EXPECT_TRUE(runner.error().empty() || runner.error().find("ENOTTY") != std::string::npos) << runner.error();
  }
  KVMX_EXPECT_ERRNO(vcpu.try_run(), ENOTTY);
  KVMX_EXPECT_OK(sys().try_create_vm());
}

// Guards: a vCPU halted in the kernel wakes for a signal; vCPU ioctls waiting meanwhile complete.
// In-kernel irqchip, interrupts off: only the signal can end the halt.
TEST_F(Race, SignalWakesHaltedVcpu) {
  KVMX_REQUIRE_CAP(KVM_CAP_IRQCHIP);
  KVMX_REQUIRE_CAP(KVM_CAP_IMMEDIATE_EXIT);
  KVMX_ASSERT_OK(guest().vm().try_ioctl(kvmx::op::create_irqchip));
  auto vcpu = guest().add_vcpu(guest_halt);
  KVMX_ASSERT_SYNC(guest().run(vcpu), 1);
  VcpuThread runner(guest(), vcpu);
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(runner.finished()) << runner.error();
  std::atomic<bool> got{false};
  std::thread regs([&] { got = vcpu.try_get_regs().ok(); });
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(runner.stop()) << "the halted vCPU did not wake for a signal";
  regs.join();
  EXPECT_TRUE(got);
  EXPECT_TRUE(runner.error().empty()) << runner.error();
  EXPECT_GE(runner.interrupts(), 1u);
  kvm_mp_state mp{};
  auto state = vcpu.try_get_mp_state();
  KVMX_ASSERT_OK(state);
  mp = *state;
  EXPECT_EQ(mp.mp_state, static_cast<std::uint32_t>(KVM_MP_STATE_HALTED));
}

}  // namespace
