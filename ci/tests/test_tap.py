"""The TAP parser, on golden console logs and on small streams."""

from __future__ import annotations

from typing import Callable

from testhost_lib.console import Transcript
from testhost_lib.tap import closing_line, parse_tap


def suite_lines(tr: Transcript, config: str, index: int = 0) -> list[str]:
    return tr.configs[config].suites[index].lines


def test_clean_pass(transcript: Callable[[str], Transcript]) -> None:
    tr = transcript("clean-pass.console")
    for config in ("amd-6.12-kvm-tdp", "amd-6.12-kvm-shadow"):
        tap = parse_tap(suite_lines(tr, config))
        assert tap.version == 13
        assert tap.plan == 5
        assert (tap.passed, tap.failed, tap.skipped) == (5, 0, 0)
        assert tap.closing == (5, 0, 0)
        assert tap.ok and tap.problems == []
        assert tap.points[4].description == "real-mode guest: out 0x10 then hlt"


def test_failures(transcript: Callable[[str], Transcript]) -> None:
    tap = parse_tap(suite_lines(transcript("failures.console"), "amd-6.1-kvmx-tdp"))
    assert (tap.passed, tap.failed, tap.skipped) == (2, 2, 0)
    assert not tap.ok
    assert tap.problems == []  # failing tests are not malformed TAP
    assert [(p.number, p.description) for p in tap.failures()] == [
        (2, "create_vm"), (4, "run_hlt")]
    assert tap.failures()[1].reason == "wanted exit HLT (5), got IO (2)"


def test_skips(transcript: Callable[[str], Transcript]) -> None:
    tap = parse_tap(suite_lines(transcript("skips.console"), "intel-6.1-kvm-shadow"))
    assert (tap.passed, tap.failed, tap.skipped) == (2, 0, 2)
    assert tap.points[1].directive == "SKIP" and tap.points[1].reason == "needs TDP"
    assert tap.points[3].directive == "SKIP"  # lower-case "# skip" counts too
    assert tap.points[2].description == "set_tss_addr"  # "ok 3 - name"
    assert tap.ok


def test_panic_mid_suite(transcript: Callable[[str], Transcript]) -> None:
    tr = transcript("panic-mid-suite.console")
    run = tr.configs["amd-6.1-kvmx-tdp"].suites[0]
    assert run.exit_code is None
    tap = parse_tap(run.lines)
    assert (tap.passed, tap.failed) == (1, 0)
    assert "planned 3 tests but saw 1" in tap.problems
    assert tr.panic == "Kernel panic - not syncing: Fatal exception"
    # The oops went to the kernel stream, not into the suite's TAP.
    assert not any("BUG" in line for line in run.lines)


def test_truncated(transcript: Callable[[str], Transcript]) -> None:
    run = transcript("truncated.console").configs["amd-6.1-kvm-tdp"].suites[0]
    tap = parse_tap(run.lines)
    assert [p.description for p in tap.points] == ["open_device", "create_vm", "cre"]
    assert "planned 6 tests but saw 3" in tap.problems


def test_missing_plan(transcript: Callable[[str], Transcript]) -> None:
    tap = parse_tap(suite_lines(transcript("missing-plan.console"), "amd-6.1-kvm-tdp"))
    assert tap.plan is None
    assert tap.problems == ["no plan (saw 2 tests)"]
    assert not tap.ok


def test_interleaved_kernel_messages(transcript: Callable[[str], Transcript]) -> None:
    tr = transcript("interleaved.console")
    config = tr.configs["amd-6.12-kvmx-shadow"]
    tap = parse_tap(config.suites[0].lines)
    assert [p.description for p in tap.points] == ["open_device", "create_vcpu", "run_hlt"]
    assert tap.ok and tap.plan == 3
    assert "[    7.412345] kvmx: vcpu 0 created" in config.kernel
    assert "[    7.500100] kvmx: second message" in config.kernel


def test_trailing_plan_and_bail_out() -> None:
    tap = parse_tap(["ok 1 a", "ok 2 b", "1..2"])
    assert tap.ok and tap.plan == 2
    bailed = parse_tap(["1..3", "ok 1 a", "Bail out! no device"])
    assert bailed.bail_out == "no device"
    assert bailed.problems == ["bailed out: no device"]


def test_sequence_and_closing_mismatch() -> None:
    tap = parse_tap(["1..2", "ok 1 a", "ok 3 b", "2 passed, 1 failed"])
    assert "test number 3 out of sequence (expected 2)" in tap.problems
    assert "closing line says '2 passed, 1 failed' but the TAP says '2 passed, 0 failed'" in tap.problems


def test_nested_subtests_not_counted() -> None:
    tap = parse_tap(["1..1", "    1..2", "    ok 1 sub", "    not ok 2 sub2", "not ok 1 parent"])
    assert (tap.passed, tap.failed) == (0, 1)
    assert tap.problems == []


def test_todo_and_not_ok_skip() -> None:
    tap = parse_tap(["1..3", "not ok 1 known # TODO fix later", "not ok 2 x # SKIP odd",
                     "ok 3 y # XFAIL"])
    assert [p.outcome for p in tap.points] == ["skip", "fail", "pass"]


def test_plan_zero_is_no_tests() -> None:
    tap = parse_tap(["TAP version 13", "1..0 # SKIP nothing here"])
    assert tap.plan == 0 and tap.points == [] and tap.ok
    assert tap.plan_comment == "SKIP nothing here"


def test_closing_line_format() -> None:
    assert closing_line(3, 1, 0) == "3 passed, 1 failed"
    assert closing_line(3, 0, 2) == "3 passed, 0 failed, 2 skipped"
