"""Turn a boot's transcript into statuses, result.json and the summary table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .console import ConfigRun, SuiteRun, Transcript
from .judge import Finding, bad_taint, boot_noise, dedupe, failing, find_splats, taint_letters
from .model import BootPlan, Config, Cpu, Impl, Mmu
from .runner import EmulatorRun
from .status import Status, worst
from .tap import TapResult, closing_line, parse_tap

SUITE_KILLED = 137  # 128 + SIGKILL: what busybox timeout -s KILL leaves


@dataclass
class SuiteOutcome:
    name: str
    verdict: str  # a Status label, or "NOTRUN"
    exit_code: int | None = None
    tap: TapResult | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float | None = None

    @property
    def counts(self) -> tuple[int, int, int]:
        if self.tap is None:
            return (0, 0, 0)
        return (self.tap.passed, self.tap.failed, self.tap.skipped)

    def cell(self) -> str:
        if self.verdict == "NOTRUN":
            return "-"
        if self.tap is None or not self.tap.points:
            return self.verdict
        return f"{self.verdict} " + "/".join(str(n) for n in self.counts)


@dataclass
class ConfigOutcome:
    config: Config
    status: Status
    suites: list[SuiteOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    allowed: list[Finding] = field(default_factory=list)
    taint_before: int | None = None
    taint_after: int | None = None
    guest_seconds: float | None = None
    params: dict[str, str] = field(default_factory=dict)
    dmesg: list[str] | None = None
    console: list[str] = field(default_factory=list)

    @property
    def counts(self) -> tuple[int, int, int]:
        totals = [0, 0, 0]
        for suite in self.suites:
            for i, n in enumerate(suite.counts):
                totals[i] += n
        return (totals[0], totals[1], totals[2])


@dataclass
class BootOutcome:
    plan: BootPlan
    host: str
    status: Status
    configs: list[ConfigOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    emulator: EmulatorRun | None = None
    release: str | None = None
    boot_taint: int | None = None
    boot_dir: str = ""


def harness_failure(plan: BootPlan, host: str, message: str) -> BootOutcome:
    """A boot that could not start: every configuration is a harness error."""
    return BootOutcome(
        plan, host, Status.HARNESS,
        configs=[
            ConfigOutcome(c, Status.HARNESS, [SuiteOutcome(s, "NOTRUN") for s in plan.suites],
                          problems=[message])
            for c in plan.configs
        ],
        problems=[message],
    )


def _abnormal_end(tr: Transcript, emu: EmulatorRun | None) -> tuple[Status | None, str]:
    if tr.panic is not None:
        return Status.CRASH, f"kernel panic: {tr.panic}"
    if tr.done:
        return None, ""
    if emu is not None and emu.timed_out:
        return Status.TIMEOUT, f"timed out after {emu.timeout:.0f} s; the emulator was killed"
    code = f" (emulator exit status {emu.exit_code})" if emu is not None else ""
    if tr.lines == 0:
        return Status.HARNESS, f"the emulator ended without any console output{code}"
    if not tr.boot_seen:
        return Status.CRASH, f"the test host never reached /init{code}"
    return Status.CRASH, f"the console ended before the final marker{code}"


def mmu_param_key(config: Config) -> str:
    if config.impl is Impl.KVMX:
        return "kvmx.tdp"
    return "kvm_amd.npt" if config.cpu is Cpu.AMD else "kvm_intel.ept"


def mmu_param_problem(config: Config, params: dict[str, str]) -> str | None:
    """A module that ignored the MMU mode we asked for runs the wrong cell."""
    key = mmu_param_key(config)
    value = params.get(key)
    if value is None:
        return None
    on = value.strip() in ("Y", "1")
    if on == (config.mmu is Mmu.TDP):
        return None
    wanted = "1" if config.mmu is Mmu.TDP else "0"
    return f"asked for {key}={wanted} but the module reports {value}: the cell did not run as named"


def _suite(
    name: str, run: SuiteRun | None, end: Status | None, suite_timeout: int | None
) -> SuiteOutcome:
    if run is None:
        return SuiteOutcome(name, "NOTRUN")
    tap = parse_tap(run.lines)
    seconds = (round(run.t_end - run.t_begin, 2)
               if run.t_end is not None and run.t_begin is not None else None)
    out = SuiteOutcome(name, "PASS", run.exit_code, tap, list(tap.problems), seconds)
    out.problems.extend(f"not ok {p.number} {p.description}".rstrip() for p in tap.failures())
    if run.exit_code is None:
        out.verdict = (end or Status.CRASH).label
        how = "timed out" if end is Status.TIMEOUT else "crashed"
        out.problems.append(f"did not finish: {how}")
    elif run.exit_code != 0 or not tap.ok:
        out.verdict = Status.FAIL.label
        if run.exit_code == SUITE_KILLED and suite_timeout:
            out.problems.append(f"killed by the in-guest --suite-timeout ({suite_timeout} s)")
        elif run.exit_code != 0:
            out.problems.append(f"exit status {run.exit_code}")
    elif not tap.points:
        out.verdict = Status.NO_TESTS.label
        comment = f" ({tap.plan_comment})" if tap.plan_comment else ""
        out.problems.append(f"no test points{comment}")
    return out


def _config(
    config: Config,
    run: ConfigRun | None,
    suites: Sequence[str],
    end: Status | None,
    taint_before: int | None,
    suite_timeout: int | None,
) -> ConfigOutcome:
    if run is None:
        return ConfigOutcome(
            config, end or Status.HARNESS, [SuiteOutcome(s, "NOTRUN") for s in suites],
            problems=["not reached: the boot ended before this configuration started"],
            taint_before=taint_before,
        )
    out = ConfigOutcome(config, Status.PASS, taint_before=taint_before, taint_after=run.taint,
                        params=dict(run.params), dmesg=run.dmesg, console=run.console)
    if run.t_begin is not None and run.t_end is not None:
        out.guest_seconds = round(run.t_end - run.t_begin, 2)
    by_name = {s.name: s for s in run.suites}
    out.suites = [_suite(s, by_name.get(s), end, suite_timeout) for s in suites]
    statuses: list[Status] = []
    out.problems.extend(run.load_failures)
    if run.device_missing:
        out.problems.append(f"{run.device_missing} did not appear after loading the modules")
    out.problems.extend(run.rmmod_failures)
    mismatch = mmu_param_problem(config, run.params)
    if mismatch:
        out.problems.append(mismatch)
    if run.load_failures or run.device_missing or run.rmmod_failures or mismatch:
        statuses.append(Status.FAIL)
    for suite in out.suites:
        out.problems.extend(f"{suite.name}: {p}" for p in suite.problems)
        if suite.verdict == Status.FAIL.label:
            statuses.append(Status.FAIL)
    if not run.ended:
        statuses.append(end or Status.CRASH)
    findings = dedupe(find_splats(run.dmesg or [], "dmesg") + find_splats(run.kernel, "console"))
    out.findings = failing(findings)
    if out.findings:
        statuses.append(Status.SPLAT)
        first = out.findings[0]
        more = f" (+{len(out.findings) - 1} more lines)" if len(out.findings) > 1 else ""
        out.problems.append(f"kernel log: {first.describe()}{more}")
    if taint_before is not None and run.taint is not None:
        bad = bad_taint(taint_before, run.taint)
        if bad:
            statuses.append(Status.SPLAT)
            out.problems.append(
                f"new taint {bad} ({taint_letters(bad)}): was {taint_before} "
                f"({taint_letters(taint_before)}), now {run.taint} ({taint_letters(run.taint)})"
            )
    if run.ended and not any(s.tap and s.tap.points for s in out.suites):
        statuses.append(Status.NO_TESTS)
    out.status = worst(statuses) if statuses else Status.PASS
    return out


def evaluate(
    plan: BootPlan,
    host: str,
    tr: Transcript,
    emu: EmulatorRun | None,
    suite_timeout: int | None = None,
) -> BootOutcome:
    end, why = _abnormal_end(tr, emu)
    outcome = BootOutcome(plan, host, Status.PASS, emulator=emu, release=tr.release,
                          boot_taint=tr.boot_taint)
    if why:
        outcome.problems.append(why)
    allow = boot_noise(plan.kernel, host)
    boot_findings = dedupe(
        find_splats(tr.boot_dmesg, "boot dmesg", allow)
        + find_splats(tr.boot_kernel, "boot console", allow)
        + find_splats(tr.tail_kernel, "console after the last configuration")
    )
    boot_bad = failing(boot_findings)
    allowed = [f for f in boot_findings if f.allowed_by]
    outside = f"kernel log outside any configuration: {boot_bad[0].describe()}" if boot_bad else ""
    if outside:
        outcome.problems.append(outside)
    taint = tr.boot_taint
    for config in plan.configs:
        run = tr.configs.get(config.name)
        result = _config(config, run, plan.suites, end, taint, suite_timeout)
        result.allowed = allowed
        if boot_bad and result.status in (Status.PASS, Status.NO_TESTS):
            result.status = Status.SPLAT
        if boot_bad:
            result.problems.append(outside)
            result.findings = boot_bad + result.findings
        if run is not None and run.taint is not None:
            taint = run.taint
        outcome.configs.append(result)
    outcome.status = worst([c.status for c in outcome.configs] + ([end] if end else []))
    return outcome


# ---------------------------------------------------------------- reporting

def totals(configs: Sequence[ConfigOutcome]) -> tuple[int, int, int]:
    sums = [0, 0, 0]
    for config in configs:
        for i, n in enumerate(config.counts):
            sums[i] += n
    return (sums[0], sums[1], sums[2])


def closing(configs: Sequence[ConfigOutcome]) -> str:
    return closing_line(*totals(configs))


def table(configs: Sequence[ConfigOutcome], suites: Sequence[str]) -> str:
    """Rows = cells, columns = suites (verdict pass/fail/skip), then the cell's status."""
    header = ["cell"] + [f"{s} (p/f/s)" for s in suites] + ["status"]
    rows = [header]
    for c in configs:
        rows.append([c.config.name] + [s.cell() for s in c.suites] + [c.status.label])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    )


def finding_json(f: Finding) -> dict[str, Any]:
    return {"kind": f.kind, "line": f.line, "where": f.where, "allowed_by": f.allowed_by}


def suite_json(s: SuiteOutcome) -> dict[str, Any]:
    passed, failed, skipped = s.counts
    return {
        "name": s.name,
        "verdict": s.verdict,
        "exit_code": s.exit_code,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "plan": s.tap.plan if s.tap else None,
        "failures": [f"{p.number} {p.description}" for p in s.tap.failures()] if s.tap else [],
        "problems": s.problems,
        "guest_seconds": s.seconds,
        "tap": s.tap.lines if s.tap else [],
    }


def config_json(c: ConfigOutcome, boot: BootOutcome) -> dict[str, Any]:
    passed, failed, skipped = c.counts
    emu = boot.emulator
    return {
        "config": c.config.name,
        "kernel": c.config.kernel,
        "release": boot.release,
        "cpu": c.config.cpu.value,
        "impl": c.config.impl.value,
        "mmu": c.config.mmu.value,
        "device": c.config.device,
        "host": boot.host,
        "status": c.status.label,
        "exit_code": int(c.status),
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "suites": [suite_json(s) for s in c.suites],
        "problems": c.problems,
        "splats": [finding_json(f) for f in c.findings],
        "allowed_boot_noise": [finding_json(f) for f in c.allowed],
        "module_params": c.params,
        "taint": {"before": c.taint_before, "after": c.taint_after},
        "guest_seconds": c.guest_seconds,
        "boot": {
            "name": boot.plan.name,
            "dir": boot.boot_dir,
            "status": boot.status.label,
            "wall_seconds": round(emu.wall_seconds, 1) if emu else None,
        },
    }


def boot_json(b: BootOutcome) -> dict[str, Any]:
    emu = b.emulator
    return {
        "boot": b.plan.name,
        "kernel": b.plan.kernel,
        "release": b.release,
        "cpu": b.plan.cpu.value,
        "host": b.host,
        "status": b.status.label,
        "exit_code": int(b.status),
        "problems": b.problems,
        "boot_taint": b.boot_taint,
        "suites": list(b.plan.suites),
        "configs": [config_json(c, b) for c in b.configs],
        "emulator": None if emu is None else {
            "argv": list(emu.argv),
            "exit_code": emu.exit_code,
            "timed_out": emu.timed_out,
            "final_marker": emu.done_seen,
            "killed_after_final_marker": emu.killed_after_done,
            "timeout_seconds": emu.timeout,
            "wall_seconds": round(emu.wall_seconds, 1),
        },
    }
