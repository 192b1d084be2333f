"""Exit statuses of a test-host run and how they combine."""

from __future__ import annotations

import enum
from typing import Iterable


class Status(enum.IntEnum):
    """Outcome of a configuration, a boot or a whole run; the value is the exit code."""

    PASS = 0
    FAIL = 1
    HARNESS = 2
    CRASH = 3
    TIMEOUT = 4
    NO_TESTS = 5
    SPLAT = 6

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Status.PASS: "PASS",
    Status.FAIL: "FAIL",
    Status.HARNESS: "ERROR",
    Status.CRASH: "CRASH",
    Status.TIMEOUT: "TIMEOUT",
    Status.NO_TESTS: "NOTESTS",
    Status.SPLAT: "SPLAT",
}

# Most severe first.  Combining configurations or boots keeps the first of these
# that occurs: a harness error means results are missing, a crash or a timeout
# loses whatever came after it, a test failure outranks a splat (exit 6 promises
# that the tests themselves passed), and "no tests ran" only beats a clean pass.
PRECEDENCE: tuple[Status, ...] = (
    Status.HARNESS,
    Status.CRASH,
    Status.TIMEOUT,
    Status.FAIL,
    Status.SPLAT,
    Status.NO_TESTS,
    Status.PASS,
)


def worst(statuses: Iterable[Status]) -> Status:
    """Combine statuses by PRECEDENCE; an empty input is NO_TESTS."""
    seen = set(statuses)
    if not seen:
        return Status.NO_TESTS
    for status in PRECEDENCE:
        if status in seen:
            return status
    raise AssertionError("unreachable")


EXIT_STATUS_HELP = """\
exit status:
  0  pass: every configuration ran its suites and nothing failed
  1  test failure: a TAP test point failed, a suite exited non-zero or broke
     TAP (missing plan, fewer tests than planned, bail out), or a module
     failed to load/unload or its device node did not appear
  2  harness or usage error: bad arguments, missing build outputs (the
     message names the make target that builds them), emulator not startable
  3  crash: kernel panic, or the console ended before the final marker
  4  timeout: the host-side timeout expired and the emulator was killed
  5  no tests ran: suites reported no TAP test points at all
  6  kernel log splat or bad taint after a module load (the tests passed)
  Several configurations or boots combine to the most severe status in the
  order 2 > 3 > 4 > 1 > 6 > 5 > 0."""
