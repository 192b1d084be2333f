"""ci/testhost: the command line (see docs/testhost.md)."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import signal
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from types import FrameType
from typing import Callable, Sequence, TypeVar

from . import bench, runner
from .boot import RunOptions, run_boot, shell
from .hosts import HOSTS
from .layout import HarnessError, Layout
from .model import KERNELS, BootPlan, Config, Cpu, Impl, Mmu, cross, group_boots, matrix_cells
from .results import BootOutcome, closing, table
from .status import EXIT_STATUS_HELP, Status, worst

E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")

_DESCRIPTION = """\
Boot kvmx test hosts (QEMU TCG for AMD, Bochs for Intel), load kvmx or in-tree
KVM, run static selftest suites and judge their TAP and the kernel log."""

_FILES = """\
files:
  build/testhost/<cell>/        console.log, dmesg.log, result.json of one
                                configuration, e.g. amd-6.1-kvmx-tdp
  build/testhost/boot-<cpu>-<K>/ a boot that served several configurations:
                                the full console.log, init.sh, initrd.gz,
                                emulator.out and result.json"""


def _enum_list(kind: type[E]) -> Callable[[str], list[E]]:
    choices = ", ".join(str(m.value) for m in kind)

    def parse(text: str) -> list[E]:
        items: list[E] = []
        for part in text.split(","):
            try:
                items.append(kind(part.strip()))
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"invalid choice {part.strip()!r} (choose from {choices})"
                ) from None
        return items

    return parse


def _enum_one(kind: type[E]) -> Callable[[str], E]:
    many = _enum_list(kind)

    def parse(text: str) -> E:
        items = many(text)
        if len(items) != 1:
            raise argparse.ArgumentTypeError(f"expected one value, got {text!r}")
        return items[0]

    return parse


def _metavar(kind: type[enum.Enum]) -> str:
    return "{" + ",".join(str(m.value) for m in kind) + "}"


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"bad name list {text!r}")
    return names


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _module_param(text: str) -> tuple[str, str]:
    module, dot, param = text.partition(".")
    if not dot or not module or "=" not in param:
        raise argparse.ArgumentTypeError(f"expected MODULE.KEY=VALUE, got {text!r}")
    return module.replace("-", "_"), param


def _flatten(groups: Sequence[Sequence[T]] | None) -> list[T]:
    out: list[T] = []
    for group in groups or ():
        for item in group:
            if item not in out:
                out.append(item)
    return out


def _common(p: argparse.ArgumentParser, batch: bool) -> None:
    p.add_argument("--timeout", type=_positive, metavar="SECONDS",
                   help="host-side timeout of each boot (default: scaled by emulator, "
                        "configurations and suites; see docs/testhost.md)")
    p.add_argument("--kernel-arg", action="append", default=[], metavar="ARG",
                   help="append ARG to the test host's kernel command line")
    p.add_argument("--module-param", action="append", default=[], type=_module_param,
                   metavar="MOD.KEY=VAL", help="extra parameter for a module, e.g. kvmx.foo=1")
    p.add_argument("--results", type=Path, metavar="DIR",
                   help="keep logs and results under DIR instead of build/testhost "
                        "(lets several people run the same cell at once)")
    if batch:
        p.add_argument("--suite-timeout", type=int, metavar="SECONDS",
                       help="kill a suite in the guest after SECONDS of guest time "
                            "(default: only the host-side timeout)")
        p.add_argument("--quiet", action="store_true",
                       help="do not stream the console; echo each suite's TAP afterwards")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ci/testhost", description=_DESCRIPTION, epilog=EXIT_STATUS_HELP + "\n\n" + _FILES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{run,shell,matrix,bench,bench-report}")

    run = sub.add_parser(
        "run", help="run suites on one kernel+cpu, one boot for all impl x mmu configurations",
        epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--kernel", required=True, choices=KERNELS)
    run.add_argument("--cpu", required=True, type=_enum_one(Cpu), metavar=_metavar(Cpu))
    run.add_argument("--impl", required=True, action="append", type=_enum_list(Impl),
                     metavar=_metavar(Impl), help="repeatable or comma list")
    run.add_argument("--mmu", required=True, action="append", type=_enum_list(Mmu),
                     metavar=_metavar(Mmu), help="repeatable or comma list")
    run.add_argument("--suite", required=True, action="append", type=_names, metavar="NAME",
                     help="build/bin/selftests/NAME, else build/bin/NAME; repeatable")
    _common(run, batch=True)

    sh = sub.add_parser(
        "shell", help="boot one host with an interactive shell on the console",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Ctrl-] ends the emulator. Without --impl no module is loaded; "
               "--mmu defaults to tdp.")
    sh.add_argument("--kernel", required=True, choices=KERNELS)
    sh.add_argument("--cpu", required=True, type=_enum_one(Cpu), metavar=_metavar(Cpu))
    sh.add_argument("--impl", type=_enum_one(Impl), metavar=_metavar(Impl))
    sh.add_argument("--mmu", type=_enum_one(Mmu), metavar=_metavar(Mmu))
    sh.add_argument("--suite", action="append", type=_names, metavar="NAME",
                    help="also copy this suite into /suites")
    _common(sh, batch=False)

    mx = sub.add_parser(
        "matrix", help="run the whole matrix, boots in parallel, and print a summary table",
        epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    mx.add_argument("--jobs", type=int, default=2, help="boots at a time (default 2)")
    mx.add_argument("--only-cpu", type=_enum_one(Cpu), metavar=_metavar(Cpu))
    mx.add_argument("--only-kernel", choices=KERNELS)
    mx.add_argument("--suite", required=True, action="append", type=_names, metavar="NAME")
    _common(mx, batch=True)

    bn = sub.add_parser(
        "bench", help="run kvmx-bench in every impl x mmu configuration of one boot; "
                      "write the table and chart",
        epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    bn.add_argument("--kernel", required=True, choices=KERNELS)
    bn.add_argument("--cpu", required=True, type=_enum_one(Cpu), metavar=_metavar(Cpu))
    bn.add_argument("--impl", action="append", type=_enum_list(Impl), metavar=_metavar(Impl),
                    help="default kvm,kvmx (the reference first)")
    bn.add_argument("--mmu", action="append", type=_enum_list(Mmu), metavar=_metavar(Mmu),
                    help="default tdp,shadow")
    bn.add_argument("--scale", choices=("check", "small", "full"), default="small",
                    help="kvmx-bench --scale (default small: sized for emulated hosts)")
    bn.add_argument("--reps", type=int, help="kvmx-bench --reps")
    bn.add_argument("--only", type=_names, action="append", metavar="WORKLOAD",
                    help="kvmx-bench --only")
    bn.add_argument("--out", type=Path, default=Path("bench/results"),
                    help="write <out>/<cpu>-<kernel>/results.{json,md} and chart.png "
                         "(default bench/results)")
    bn.add_argument("--no-chart", action="store_true", help="skip chart.png")
    _common(bn, batch=True)

    br = sub.add_parser(
        "bench-report", help="table and chart from kvmx-bench --json files (e.g. real hardware)")
    br.add_argument("records", nargs="+", type=Path, metavar="FILE",
                    help="kvmx-bench --json output, one per implementation x MMU mode")
    br.add_argument("--cpu", required=True, help="label, e.g. 'AMD EPYC 7713'")
    br.add_argument("--kernel", required=True, help="label, e.g. $(uname -r)")
    br.add_argument("--host", default="real hardware", help="label of the machine")
    br.add_argument("--out", type=Path, required=True, help="directory for results.*, chart.png")
    br.add_argument("--no-chart", action="store_true", help="skip chart.png")
    return parser


def _options(args: argparse.Namespace) -> RunOptions:
    params: dict[str, tuple[str, ...]] = {}
    for module, param in args.module_param:
        params[module] = params.get(module, ()) + (param,)
    return RunOptions(
        layout=Layout(results_dir=args.results.resolve() if args.results else None),
        timeout=args.timeout,
        suite_timeout=getattr(args, "suite_timeout", None),
        kernel_args=tuple(args.kernel_arg),
        module_params=params,
    )


def _say(line: str = "") -> None:
    print(line, flush=True)


def report(outcomes: Sequence[BootOutcome], suites: Sequence[str], echo_tap: bool) -> None:
    """Summary after the boots: optional TAP echo, boots, table, problems, closing line."""
    configs = [c for o in outcomes for c in o.configs]
    if echo_tap:
        for c in configs:
            for s in c.suites:
                if s.tap is not None:
                    _say(f"# ---- {c.config.name} / {s.name}")
                    for line in s.tap.lines:
                        _say(line)
    _say()
    for o in outcomes:
        emu = o.emulator
        took = f"{emu.wall_seconds:.1f} s (timeout {emu.timeout:.0f} s)" if emu else "not started"
        _say(f"# {o.plan.name} [{o.host}]: {o.status.label}, {took}: {o.boot_dir}")
        for problem in o.problems:
            _say(f"#   {problem}")
    for line in table(configs, suites).splitlines():
        _say(f"# {line}")
    for c in configs:
        if c.status is Status.PASS:
            continue
        _say(f"# {c.config.name}: {c.status.label}")
        for problem in c.problems[:12]:
            _say(f"#   {problem}")
        if len(c.problems) > 12:
            _say(f"#   ... {len(c.problems) - 12} more in result.json")
    _say(closing(configs))


def cmd_run(args: argparse.Namespace) -> int:
    impls: list[Impl] = _flatten(args.impl)
    mmus: list[Mmu] = _flatten(args.mmu)
    suites: list[str] = _flatten(args.suite)
    plan = BootPlan(args.kernel, args.cpu, tuple(cross(args.kernel, args.cpu, impls, mmus)),
                    tuple(suites))
    opts = _options(args)
    host = HOSTS[plan.cpu]
    timeout = opts.timeout or host.timeout(len(plan.configs), len(suites))
    _say(f"# testhost: {plan.name} on {host.label}: "
         f"{', '.join(c.name for c in plan.configs)}; suites {', '.join(suites)}; "
         f"timeout {timeout:.0f} s")

    def sink(line: str) -> None:
        if not args.quiet:
            _say(line)
    outcome = run_boot(plan, opts, sink)
    report([outcome], suites, echo_tap=args.quiet)
    return int(outcome.status)


def cmd_matrix(args: argparse.Namespace) -> int:
    suites: list[str] = _flatten(args.suite)
    cells = matrix_cells(args.only_cpu, args.only_kernel)
    if not cells:
        raise HarnessError("the matrix has no cell for that --only-cpu/--only-kernel")
    if args.jobs < 1:
        raise HarnessError("--jobs must be at least 1")
    plans = group_boots(cells, suites)
    opts = _options(args)
    lock = threading.Lock()

    def expected(plan: BootPlan) -> float:
        return HOSTS[plan.cpu].expected(len(plan.configs), len(plan.suites))

    def sink_for(plan: BootPlan) -> Callable[[str], None]:
        prefix = f"[{plan.cpu.value}-{plan.kernel}] "

        def sink(line: str) -> None:
            if not args.quiet:
                with lock:
                    _say(prefix + line)
        return sink

    def one(plan: BootPlan) -> BootOutcome:
        with lock:
            _say(f"# starting {plan.name} ({len(plan.configs)} configurations, "
                 f"{HOSTS[plan.cpu].ops.name})")
        return run_boot(plan, opts, sink_for(plan))

    start = time.monotonic()
    results: dict[BootPlan, BootOutcome] = {}
    # Longest boots first, so Bochs runs alongside the QEMU boots.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures: dict[Future[BootOutcome], BootPlan] = {
            pool.submit(one, plan): plan for plan in sorted(plans, key=expected, reverse=True)
        }
        try:
            for future in as_completed(futures):
                outcome = future.result()
                results[futures[future]] = outcome
                emu = outcome.emulator
                with lock:
                    _say(f"# finished {outcome.plan.name}: {outcome.status.label}"
                         + (f" in {emu.wall_seconds:.1f} s" if emu else ""))
        except BaseException:
            for future in futures:
                future.cancel()
            runner.stop()
            raise
    outcomes = [results[p] for p in plans]
    _say(f"# matrix wall time {time.monotonic() - start:.1f} s with {args.jobs} jobs")
    report(outcomes, suites, echo_tap=args.quiet)
    return int(worst(o.status for o in outcomes))


def cmd_bench(args: argparse.Namespace) -> int:
    impls: list[Impl] = _flatten(args.impl) or [Impl.KVM, Impl.KVMX]
    mmus: list[Mmu] = _flatten(args.mmu) or [Mmu.TDP, Mmu.SHADOW]
    if args.reps is not None and args.reps < 1:
        raise HarnessError("--reps must be at least 1")
    opts = _options(args)
    params = dict(opts.module_params)
    if Impl.KVMX in impls:
        for module, extra in bench.vcpu_params(opts.layout, args.kernel, args.cpu).items():
            given = {p.partition("=")[0] for p in params.get(module, ())}
            params[module] = params.get(module, ()) + tuple(
                p for p in extra if p.partition("=")[0] not in given)
    opts = dataclasses.replace(
        opts, module_params=params,
        suite_args=bench.suite_args(args.scale, args.reps, _flatten(args.only)))
    plan = BootPlan(args.kernel, args.cpu, tuple(cross(args.kernel, args.cpu, impls, mmus)),
                    (bench.SUITE,))
    host = HOSTS[plan.cpu]
    # kvmx-bench runs longer than a suite: scale the host's per-run allowance with its size.
    timeout = opts.timeout or host.timeout(len(plan.configs), bench.RUNS_PER_SCALE[args.scale])
    opts = dataclasses.replace(opts, timeout=timeout)
    loads = "; ".join(f"{m}: {' '.join(p)}" for m, p in params.items())
    _say(f"# testhost bench: {plan.name} on {host.label}: "
         f"{', '.join(c.name for c in plan.configs)}; {' '.join(opts.suite_args[bench.SUITE])}"
         f"{'; ' + loads if loads else ''}; timeout {timeout:.0f} s")

    def sink(line: str) -> None:
        if not args.quiet:
            _say(line)
    outcome = run_boot(plan, opts, sink)
    report([outcome], [bench.SUITE], echo_tap=False)
    data = bench.collect(outcome)
    out_dir = args.out / f"{plan.cpu.value}-{plan.kernel}"
    written = bench.write(data, out_dir, draw=not args.no_chart)
    _say()
    for line in bench.markdown(data).splitlines():
        _say(f"# {line}")
    _say(f"# bench results: {', '.join(str(p) for p in written)}")
    return int(outcome.status)


def cmd_bench_report(args: argparse.Namespace) -> int:
    records = []
    for path in args.records:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError) as err:
            raise HarnessError(f"{path}: {err}") from err
    data = bench.from_records(records, args.cpu, args.kernel, args.host)
    written = bench.write(data, args.out, draw=not args.no_chart)
    _say(bench.markdown(data))
    _say(f"# bench results: {', '.join(str(p) for p in written)}")
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    configs: tuple[Config, ...] = ()
    if args.impl is not None:
        configs = (Config(args.kernel, args.cpu, args.impl, args.mmu or Mmu.TDP),)
    elif args.mmu is not None:
        raise HarnessError("--mmu needs --impl")
    plan = BootPlan(args.kernel, args.cpu, configs, tuple(_flatten(args.suite)))
    return shell(plan, _options(args))


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    commands = {"run": cmd_run, "matrix": cmd_matrix, "shell": cmd_shell, "bench": cmd_bench,
                "bench-report": cmd_bench_report}
    try:
        return commands[args.command](args)
    except HarnessError as err:
        print(f"testhost: error: {err}", file=sys.stderr, flush=True)
        return int(Status.HARNESS)
    except KeyboardInterrupt:
        runner.stop()
        print("testhost: interrupted; emulators killed", file=sys.stderr, flush=True)
        return int(Status.HARNESS)
