"""Statuses of whole boots judged from golden logs, and how they combine."""

from __future__ import annotations

from typing import Callable

from testhost_lib.console import normalize, parse_console
from testhost_lib.results import BootOutcome, closing, evaluate, table
from testhost_lib.status import PRECEDENCE, Status, worst

from conftest import emulator_run, plan_for

Judge = Callable[..., BootOutcome]


def statuses(outcome: BootOutcome) -> dict[str, Status]:
    return {c.config.name: c.status for c in outcome.configs}


def test_clean_pass(outcome: Judge) -> None:
    result = outcome("clean-pass.console", ["amd-6.12-kvm-tdp", "amd-6.12-kvm-shadow"], ["probe"])
    assert result.status is Status.PASS
    assert closing(result.configs) == "10 passed, 0 failed"
    assert result.release == "6.12.117+deb12-amd64"
    assert [c.guest_seconds for c in result.configs] == [2.31, 1.53]


def test_failures_exit_1(outcome: Judge) -> None:
    result = outcome("failures.console", ["amd-6.1-kvmx-tdp"], ["smoke"])
    assert result.status is Status.FAIL and int(result.status) == 1
    problems = result.configs[0].problems
    assert "smoke: not ok 2 create_vm" in problems
    assert "smoke: exit status 1" in problems
    assert closing(result.configs) == "2 passed, 2 failed"
    # O and E taints from kvmx are expected, not a splat.
    assert not any("taint" in p for p in problems)


def test_skips_pass_and_closing_line(outcome: Judge) -> None:
    result = outcome("skips.console", ["intel-6.1-kvm-shadow"], ["vm"], host="bochs")
    assert result.status is Status.PASS
    assert closing(result.configs) == "2 passed, 0 failed, 2 skipped"


def test_panic_is_crash(outcome: Judge) -> None:
    result = outcome("panic-mid-suite.console", ["amd-6.1-kvmx-tdp", "amd-6.1-kvmx-shadow"], ["smoke"])
    assert result.status is Status.CRASH and int(result.status) == 3
    crashed, unreached = result.configs
    assert crashed.status is Status.CRASH
    assert crashed.suites[0].verdict == "CRASH"
    assert any(f.kind == "oops" for f in crashed.findings)
    assert unreached.status is Status.CRASH
    assert unreached.suites[0].verdict == "NOTRUN"
    assert "kernel panic: Kernel panic - not syncing: Fatal exception" in result.problems


def test_truncated_with_timeout_is_timeout(outcome: Judge) -> None:
    result = outcome("truncated.console", ["amd-6.1-kvm-tdp"], ["smoke"], timed_out=True)
    assert result.status is Status.TIMEOUT and int(result.status) == 4
    assert result.configs[0].suites[0].verdict == "TIMEOUT"


def test_truncated_without_timeout_is_crash(outcome: Judge) -> None:
    result = outcome("truncated.console", ["amd-6.1-kvm-tdp"], ["smoke"])
    assert result.status is Status.CRASH
    assert any("console ended before the final marker" in p for p in result.problems)


def test_no_console_output_is_harness_error() -> None:
    tr = parse_console(normalize(""))
    result = evaluate(plan_for(["amd-6.1-kvm-tdp"], ["smoke"]), "qemu-tcg", tr,
                      emulator_run(done=False, code=1))
    assert result.status is Status.HARNESS
    assert result.problems == [
        "the emulator ended without any console output (emulator exit status 1)"]


def test_silent_hang_is_timeout() -> None:
    result = evaluate(plan_for(["amd-6.1-kvm-tdp"], ["smoke"]), "qemu-tcg",
                      parse_console(normalize("")), emulator_run(timed_out=True, done=False))
    assert result.status is Status.TIMEOUT


def test_never_reached_init() -> None:
    tr = parse_console(normalize("SeaBIOS (version 1.16)\nBooting from ROM...\n"))
    result = evaluate(plan_for(["amd-6.1-kvm-tdp"], ["smoke"]), "qemu-tcg", tr,
                      emulator_run(done=False, code=1))
    assert result.status is Status.CRASH
    assert any("never reached /init" in p for p in result.problems)


def test_missing_plan_fails(outcome: Judge) -> None:
    result = outcome("missing-plan.console", ["amd-6.1-kvm-tdp"], ["smoke"])
    assert result.status is Status.FAIL
    assert "smoke: no plan (saw 2 tests)" in result.configs[0].problems


def test_no_tests_exit_5(outcome: Judge) -> None:
    result = outcome("no-tests.console", ["amd-6.1-kvm-tdp"], ["smoke"])
    assert result.status is Status.NO_TESTS and int(result.status) == 5
    assert result.configs[0].suites[0].verdict == "NOTESTS"


def test_splat_after_load_exit_6(outcome: Judge) -> None:
    result = outcome("splat-after-load.console", ["amd-6.1-kvmx-tdp"], ["smoke"])
    assert result.status is Status.SPLAT and int(result.status) == 6
    config = result.configs[0]
    assert {"warning", "cut-here", "call-trace"} <= {f.kind for f in config.findings}
    # W (512) appeared along with the warning.
    assert any(p.startswith("new taint 512 (W)") for p in config.problems)


def test_bad_taint_alone_is_splat(outcome: Judge) -> None:
    result = outcome("bad-taint.console", ["amd-6.1-kvmx-tdp"], ["smoke"])
    assert result.status is Status.SPLAT
    assert result.configs[0].problems == [
        "new taint 1 (P): was 0 (-), now 12289 (POE)"]


def test_allowed_bochs_boot_warning_passes(outcome: Judge) -> None:
    result = outcome("bochs-6.12-boot-warning.console", ["intel-6.12-kvm-tdp"], ["probe"], host="bochs")
    assert result.status is Status.PASS
    assert result.configs[0].allowed  # recorded, not ignored silently
    assert result.boot_taint == 512


def test_bochs_boot_warning_fails_on_qemu(outcome: Judge) -> None:
    result = outcome("bochs-6.12-boot-warning.console", ["intel-6.12-kvm-tdp"], ["probe"],
                     host="qemu-tcg")
    assert result.status is Status.SPLAT
    assert any("outside any configuration" in p for p in result.configs[0].problems)


def test_bochs_warning_after_load_fails(outcome: Judge) -> None:
    result = outcome("bochs-6.12-warning-after-load.console", ["intel-6.12-kvmx-tdp"], ["probe"],
                     host="bochs")
    assert result.status is Status.SPLAT


def test_load_and_rmmod_failures(outcome: Judge) -> None:
    result = outcome("load-rmmod-fail.console", ["amd-6.1-kvmx-tdp", "amd-6.1-kvmx-shadow"], ["smoke"])
    load, unload = result.configs
    assert load.status is Status.FAIL
    assert load.problems[0].startswith("insmod kvmx_amd failed (exit 1): insmod: can't insert")
    assert load.suites[0].verdict == "NOTRUN"
    assert unload.status is Status.FAIL
    assert unload.problems == [
        "rmmod kvmx failed (exit 1): rmmod: can't unload module 'kvmx': "
        "Resource temporarily unavailable"]
    assert result.status is Status.FAIL


def test_ignored_mmu_parameter_fails() -> None:
    log = "\n".join([
        "@@TH boot release=6.1 taint=0 t=1", "@@TH cfg-begin intel-6.1-kvm-tdp t=1",
        "@@TH param kvm_intel.ept N", "@@TH suite-begin s t=1", "1..1", "ok 1 a",
        "@@TH suite-end s rc=0 t=2", "@@TH taint 0", "@@TH cfg-end intel-6.1-kvm-tdp t=2",
        "@@TH done t=3"])
    result = evaluate(plan_for(["intel-6.1-kvm-tdp"], ["s"]), "bochs",
                      parse_console(normalize(log)), emulator_run())
    assert result.status is Status.FAIL
    assert "asked for kvm_intel.ept=1 but the module reports N" in result.configs[0].problems[0]
    assert result.configs[0].params == {"kvm_intel.ept": "N"}


def test_table_layout(outcome: Judge) -> None:
    result = outcome("failures.console", ["amd-6.1-kvmx-tdp"], ["smoke"])
    rows = table(result.configs, ["smoke"]).splitlines()
    assert rows[0].split() == ["cell", "smoke", "(p/f/s)", "status"]
    assert rows[1].split() == ["amd-6.1-kvmx-tdp", "FAIL", "2/2/0", "FAIL"]


def test_precedence() -> None:
    assert PRECEDENCE[0] is Status.HARNESS and PRECEDENCE[-1] is Status.PASS
    assert worst([Status.PASS, Status.SPLAT, Status.FAIL]) is Status.FAIL
    assert worst([Status.NO_TESTS, Status.SPLAT]) is Status.SPLAT
    assert worst([Status.FAIL, Status.TIMEOUT, Status.CRASH]) is Status.CRASH
    assert worst([Status.CRASH, Status.HARNESS]) is Status.HARNESS
    assert worst([Status.PASS, Status.NO_TESTS]) is Status.NO_TESTS
    assert worst([]) is Status.NO_TESTS
    assert [int(s) for s in Status] == [0, 1, 2, 3, 4, 5, 6]
