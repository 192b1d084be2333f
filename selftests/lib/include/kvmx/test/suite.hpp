// The common main of every suite: options, TAP output, exit status.
#pragma once

namespace kvmx::test {

struct SuiteOptions {
  // Check that the device opens before running anything; if it does not, print "Bail out!" with
  // the reason (naming the module to load) and count every test as failed.
  bool needs_device = true;
};

// Parses --device/--timeout and GoogleTest's flags, runs the tests with TAP output and returns
// the exit status: 0 if nothing failed, 1 otherwise.
int run_suite(int argc, char** argv, const SuiteOptions& options = {});

}  // namespace kvmx::test
