#include "kvmx/test/tap.hpp"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace kvmx::test {
namespace {

// What the signal handlers print: prepared in OnTestStart so the handler only calls write(2).
char g_current_test[512];
std::size_t g_current_test_len = 0;
unsigned g_timeout_s = 0;

void write_all(const char* s, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(STDOUT_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void write_str(const char* s) { write_all(s, strlen(s)); }

void on_fatal_signal(int sig) {
  if (g_current_test_len > 0) {
    write_all(g_current_test, g_current_test_len);
    if (sig == SIGALRM) {
      write_str(" # timed out");
    } else {
      write_str(" # crashed by ");
      const char* abbrev = sigabbrev_np(sig);
      write_str("SIG");
      write_str(abbrev ? abbrev : "?");
    }
    write_str("\n");
  }
  write_str(sig == SIGALRM ? "Bail out! a test timed out\n" : "Bail out! a test crashed\n");
  // Die by the same signal so the exit status still says what happened (SIGALRM: timed out).
  signal(sig, SIG_DFL);
  raise(sig);
}

void each_line(std::string_view text, auto&& fn) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    fn(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace

void install_crash_reporter(unsigned timeout_s) {
  g_timeout_s = timeout_s;
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM}) sigaction(sig, &sa, nullptr);
}

void TapListener::OnTestIterationStart(const ::testing::UnitTest& unit, int) {
  if (header_done_) return;
  header_done_ = true;
  std::fprintf(out_, "TAP version 13\n1..%d\n", unit.test_to_run_count());
  if (!preamble_.empty()) diagnostic(preamble_);
  std::fflush(out_);
}

void TapListener::OnEnvironmentsSetUpEnd(const ::testing::UnitTest& unit) {
  if (!unit.ad_hoc_test_result().Failed()) return;
  bailed_out_ = true;
  failure_outside_tests_ = false;
  failed_ += unit.test_to_run_count();
  std::fprintf(out_, "Bail out! the suite could not start (see above)\n");
  std::fflush(out_);
}

void TapListener::OnTestStart(const ::testing::TestInfo& info) {
  if (bailed_out_) return;
  ++number_;
  const int n = std::snprintf(g_current_test, sizeof g_current_test, "not ok %d %s.%s", number_,
                              info.test_suite_name(), info.name());
  g_current_test_len = n > 0 ? std::min<std::size_t>(n, sizeof g_current_test - 1) : 0;
  if (g_timeout_s) alarm(g_timeout_s);
}

void TapListener::diagnostic(std::string_view text) {
  each_line(text, [&](std::string_view line) {
    std::fprintf(out_, "#%s%.*s\n", line.empty() ? "" : " ", static_cast<int>(line.size()), line.data());
  });
}

void TapListener::OnTestPartResult(const ::testing::TestPartResult& result) {
  if (result.skipped() || result.type() == ::testing::TestPartResult::kSuccess) return;
  std::string where;
  if (result.file_name()) {
    std::string_view file = result.file_name();
    file = file.substr(file.rfind('/') + 1);
    where = std::string(file) + ":" + std::to_string(result.line_number()) + ": ";
  }
  diagnostic(where + "Failure");
  diagnostic(result.message());
  std::fflush(out_);
  if (g_current_test_len == 0) failure_outside_tests_ = true;
}

void TapListener::OnTestEnd(const ::testing::TestInfo& info) {
  // After "Bail out!" GoogleTest still reports every test as skipped; TAP says nothing follows.
  if (bailed_out_) return;
  if (g_timeout_s) alarm(0);
  g_current_test_len = 0;
  const ::testing::TestResult& r = *info.result();
  const std::string name = std::string(info.test_suite_name()) + "." + info.name();
  if (r.Failed()) {
    ++failed_;
    std::fprintf(out_, "not ok %d %s\n", number_, name.c_str());
  } else if (r.Skipped()) {
    ++skipped_;
    std::string reason;
    for (int i = 0; i < r.total_part_count(); ++i) {
      if (r.GetTestPartResult(i).skipped()) reason = r.GetTestPartResult(i).message();
    }
    // A TAP directive ends at the line: keep only the first line of the reason.
    reason = reason.substr(0, reason.find('\n'));
    std::fprintf(out_, "ok %d %s # SKIP%s%s\n", number_, name.c_str(), reason.empty() ? "" : " ",
                 reason.c_str());
  } else {
    ++passed_;
    std::fprintf(out_, "ok %d %s\n", number_, name.c_str());
  }
  std::fflush(out_);
}

void TapListener::OnTestIterationEnd(const ::testing::UnitTest& unit, int) {
  // Failures in SetUpTestSuite/TearDownTestSuite or a global environment belong to no test; count
  // them once so the run cannot end "0 failed" with a failure on screen.
  if (failure_outside_tests_ || (!bailed_out_ && unit.ad_hoc_test_result().Failed())) {
    diagnostic("a failure happened outside any test (see above)");
    ++failed_;
    failure_outside_tests_ = false;
  }
  std::fprintf(out_, "%d passed, %d failed", passed_, failed_);
  if (skipped_) std::fprintf(out_, ", %d skipped", skipped_);
  std::fprintf(out_, "\n");
  std::fflush(out_);
}

}  // namespace kvmx::test
