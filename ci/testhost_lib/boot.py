"""One boot of one test host: prepare, run, judge, write build/testhost/."""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from .console import normalize, parse_console
from .hosts import HOSTS, BootFiles, HostKind, Launch
from .initramfs import (
    ConfigScript,
    build_archive,
    drain_helper,
    other_vendor_modules,
    plan_loads,
    render_init,
    render_shell_init,
)
from .layout import HarnessError, Layout, require_tools
from .model import BootPlan
from .results import BootOutcome, boot_json, config_json, evaluate, harness_failure
from .runner import run_batch, run_interactive


@dataclass(frozen=True)
class RunOptions:
    layout: Layout = field(default_factory=Layout)
    timeout: float | None = None  # None: the host's formula
    suite_timeout: int | None = None
    kernel_args: tuple[str, ...] = ()
    module_params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    suite_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    host: HostKind
    workdir: Path
    kernel: Path
    initrd: Path
    cmdline: str
    timeout: float


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _prepare(plan: BootPlan, opts: RunOptions, init_for: Callable[[Sequence[ConfigScript]], str],
             workdir: Path) -> Prepared:
    host = HOSTS[plan.cpu]
    layout = opts.layout
    require_tools(dict(host.ops.tools))
    kernel = layout.vmlinuz(plan.kernel)
    tree = layout.module_tree(plan.kernel)
    scripts = [ConfigScript(c, plan_loads(layout, tree, c, opts.module_params),
                            tuple(other_vendor_modules(layout, tree, c)))
               for c in plan.configs]
    suites = {name: layout.suite(name) for name in plan.suites}
    init = init_for(scripts)
    modules = [load.module for script in scripts for load in script.loads]
    modules += [m for script in scripts for m in script.other]
    drain = drain_helper(layout.results / ".cache")
    _fresh(workdir)
    initrd = workdir / "initrd.gz"
    initrd.write_bytes(build_archive(init, modules, suites, drain))
    (workdir / "init.sh").write_text(init)
    cmdline = host.cmdline(opts.kernel_args)
    (workdir / "cmdline").write_text(cmdline + "\n")
    timeout = opts.timeout or host.timeout(len(plan.configs), len(plan.suites))
    return Prepared(host, workdir, kernel, initrd, cmdline, timeout)


@contextlib.contextmanager
def _locked(layout: Layout, names: Sequence[str]) -> Iterator[None]:
    """Own build/testhost/<name>/ for each name, or fail if another ci/testhost does."""
    locks = layout.results / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for name in sorted(set(names)):
            f = stack.enter_context(open(locks / name, "w"))
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HarnessError(
                    f"another ci/testhost is using build/testhost/{name}/ right now"
                ) from None
        yield


def run_boot(plan: BootPlan, opts: RunOptions, on_line: Callable[[str], None]) -> BootOutcome:
    """Boot once, run every configuration of `plan`, and write its results."""
    names = [plan.dir_name] + [c.name for c in plan.configs]
    try:
        with _locked(opts.layout, names):
            return _run_boot(plan, opts, on_line)
    except HarnessError as err:
        outcome = harness_failure(plan, HOSTS[plan.cpu].ops.name, str(err))
        outcome.boot_dir = str(opts.layout.results / plan.dir_name)
        return outcome


def _run_boot(plan: BootPlan, opts: RunOptions, on_line: Callable[[str], None]) -> BootOutcome:
    host = HOSTS[plan.cpu]
    layout = opts.layout
    workdir = layout.results / plan.dir_name

    def init_for(scripts: Sequence[ConfigScript]) -> str:
        return render_init(plan.name, scripts, plan.suites, opts.suite_timeout, opts.suite_args)

    prep = _prepare(plan, opts, init_for, workdir)
    console = workdir / "console.log"
    launch = host.ops.prepare(BootFiles(
        workdir=workdir, kernel=prep.kernel, initrd=prep.initrd,
        cmdline=prep.cmdline, serial=str(console.resolve()),
    ))
    emu = run_batch(launch, console, workdir / "emulator.out", workdir, prep.timeout,
                    host.exit_grace, on_line)
    text = console.read_bytes().decode("utf-8", errors="replace") if console.exists() else ""
    transcript = parse_console(normalize(text))
    outcome = evaluate(plan, host.ops.name, transcript, emu, opts.suite_timeout)
    outcome.boot_dir = str(workdir)
    if transcript.lines == 0:
        outcome.problems.extend(_tail(workdir / "emulator.out", 6))
    write_results(outcome, layout)
    return outcome


def _tail(path: Path, count: int) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [f"{path.name}: {line}" for line in lines[-count:] if line.strip()]


def write_results(outcome: BootOutcome, layout: Layout) -> None:
    plan = outcome.plan
    boot_dir = layout.results / plan.dir_name
    single = len(plan.configs) == 1
    for result in outcome.configs:
        cdir = boot_dir if single else _fresh(layout.results / result.config.name)
        if not single:
            (cdir / "console.log").write_text("\n".join(result.console) + "\n")
        if result.dmesg is not None:
            (cdir / "dmesg.log").write_text("".join(line + "\n" for line in result.dmesg))
        data = config_json(result, outcome)
        if single:
            data["boot"] = {k: v for k, v in boot_json(outcome).items() if k != "configs"}
        (cdir / "result.json").write_text(json.dumps(data, indent=2) + "\n")
    if not single:
        (boot_dir / "result.json").write_text(json.dumps(boot_json(outcome), indent=2) + "\n")


def shell(plan: BootPlan, opts: RunOptions) -> int:
    """Boot with an interactive shell on the console (no results are judged)."""
    host = HOSTS[plan.cpu]
    layout = opts.layout
    workdir = layout.results / f"shell-{plan.cpu.value}-{plan.kernel}"

    def init_for(scripts: Sequence[ConfigScript]) -> str:
        return render_shell_init(plan.name, scripts[0] if scripts else None)

    with _locked(layout, [workdir.name]):
        prep = _prepare(plan, opts, init_for, workdir)

        def launch(tty: str) -> Launch:
            return host.ops.prepare(BootFiles(
                workdir=workdir, kernel=prep.kernel, initrd=prep.initrd,
                cmdline=prep.cmdline, serial=tty, interactive=True,
            ))

        print(f"testhost: booting {plan.name} on {host.label}; Ctrl-] ends the emulator",
              flush=True)
        return run_interactive(launch, workdir, workdir / "emulator.out",
                               workdir / "console.log", opts.timeout or 3600.0)
