"""`ci/testhost bench` (make bench): kvmx-bench in every configuration of one boot.

The test host runs build/bin/kvmx-bench once per configuration (kvmx and in-tree
KVM, each with TDP and shadow paging, unloading one implementation before
loading the next: the ordinary batch boot of boot.py).  kvmx-bench prints TAP,
so the boot is judged like any suite, and one `# KVMX-BENCH-JSON {...}` line
with its numbers, which this module collects into bench/results/<cpu>-<kernel>/:
results.json, results.md (the table) and chart.png (python3-matplotlib).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .kmods import elf_section, read_module
from .layout import HarnessError, Layout
from .model import Cpu, Impl, Mmu
from .results import BootOutcome

SUITE = "kvmx-bench"
JSON_PREFIX = "# KVMX-BENCH-JSON "
# Bar order in the table and the chart.
COLUMNS: tuple[str, ...] = ("kvmx-tdp", "kvmx-shadow", "kvm-tdp", "kvm-shadow")
# (label, numerator column, denominator column)
RATIOS: tuple[tuple[str, str, str], ...] = (
    ("kvmx/KVM tdp", "kvmx-tdp", "kvm-tdp"),
    ("kvmx/KVM shadow", "kvmx-shadow", "kvm-shadow"),
    ("shadow/TDP kvmx", "kvmx-shadow", "kvmx-tdp"),
    ("shadow/TDP kvm", "kvm-shadow", "kvm-tdp"),
)

Report = dict[str, Any]
# How many suite runs' worth of the host's timeout allowance kvmx-bench gets per configuration.
RUNS_PER_SCALE: dict[str, int] = {"check": 1, "small": 4, "full": 40}
# Fixed colours, so an empty (n/a) series never shifts the others.
_COLORS = {"kvmx-tdp": "#1f77b4", "kvmx-shadow": "#aec7e8", "kvm-tdp": "#d62728",
           "kvm-shadow": "#ff9896"}
_RATIO_COLORS = ("#2ca02c", "#98df8a", "#9467bd", "#c5b0d5")


def column_name(impl: Impl, mmu: Mmu) -> str:
    return f"{impl.value}-{mmu.value}"


def extract(lines: Iterable[str]) -> dict[str, Any] | None:
    """The last KVMX-BENCH-JSON record of a kvmx-bench run, or None."""
    found: dict[str, Any] | None = None
    for line in lines:
        if line.startswith(JSON_PREFIX):
            try:
                data = json.loads(line[len(JSON_PREFIX):])
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("tool") == "kvmx-bench":
                found = data
    return found


def vcpu_params(layout: Layout, kernel: str, cpu: Cpu) -> dict[str, tuple[str, ...]]:
    """Module parameters that let kvmx run vCPUs on this host.

    kvmx-intel offers vCPUs only with run_vcpus=1 while that parameter exists;
    once vCPUs are its default the parameter is gone and nothing is passed.
    """
    if cpu is not Cpu.INTEL:
        return {}
    path = layout.kvmx_module(kernel, "kvmx-intel")
    info = elf_section(read_module(path), ".modinfo") or b""
    entries = info.split(b"\0")
    if any(e.startswith(b"parmtype=run_vcpus:") for e in entries):
        return {"kvmx_intel": ("run_vcpus=1",)}
    return {}


def collect(outcome: BootOutcome) -> Report:
    """One report per boot: every configuration's record, or why it has none."""
    plan = outcome.plan
    columns: dict[str, Any] = {}
    for result in outcome.configs:
        name = column_name(result.config.impl, result.config.mmu)
        suite = next((s for s in result.suites if s.name == SUITE), None)
        data = extract(suite.tap.lines) if suite is not None and suite.tap is not None else None
        column: dict[str, Any] = {
            "config": result.config.name,
            "status": result.status.label,
            "problems": result.problems[:20],
            "params": dict(result.params),
        }
        if data is None:
            why = result.problems[0] if result.problems else "kvmx-bench printed no results"
            column.update(available=False, unavailable=f"no results: {why}", results=[])
        else:
            target = data.get("target", {})
            column.update(
                available=bool(target.get("available")),
                target=target,
                sizes=data.get("sizes", {}),
                results=data.get("results", []),
            )
            if not column["available"]:
                column["unavailable"] = target.get("unavailable", "not available")
        columns[name] = column
    return {
        "cpu": plan.cpu.value,
        "kernel": plan.kernel,
        "release": outcome.release,
        "host": outcome.host,
        "status": outcome.status.label,
        "problems": outcome.problems,
        "columns": columns,
    }


def from_records(records: Sequence[dict[str, Any]], cpu: str, kernel: str, host: str,
                 release: str | None = None) -> Report:
    """A report from kvmx-bench --json files, e.g. of runs on real hardware.

    Each record becomes the column of its implementation and MMU mode; a second
    record for the same column is an error rather than a silent overwrite.
    """
    columns: dict[str, Any] = {}
    for record in records:
        if record.get("tool") != "kvmx-bench":
            raise HarnessError("not a kvmx-bench record (no \"tool\": \"kvmx-bench\")")
        target = record.get("target", {})
        mode = target.get("mode") if target.get("available") else target.get("requested")
        name = f"{target.get('impl', '?')}-{mode}"
        if name not in COLUMNS:
            raise HarnessError(f"a record for {name}, which is none of {', '.join(COLUMNS)}")
        if name in columns:
            raise HarnessError(f"two records for {name}")
        column: dict[str, Any] = {
            "config": name, "status": "given", "problems": [], "params": {},
            "available": bool(target.get("available")), "target": target,
            "sizes": record.get("sizes", {}), "results": record.get("results", []),
        }
        if not column["available"]:
            column["unavailable"] = target.get("unavailable", "not available")
        columns[name] = column
    return {"cpu": cpu, "kernel": kernel, "release": release, "host": host, "status": "given",
            "problems": [], "columns": columns}


def workloads(report: Report) -> list[str]:
    names: list[str] = []
    for column in report["columns"].values():
        for r in column.get("results", []):
            if r.get("workload") not in names:
                names.append(r["workload"])
    return names


def _result(report: Report, column: str, workload: str) -> dict[str, Any] | None:
    col = report["columns"].get(column)
    if not col or not col.get("available"):
        return None
    for r in col.get("results", []):
        if r.get("workload") == workload:
            return dict(r)
    return None


def median(report: Report, column: str, workload: str) -> float | None:
    """ns per iteration, or None when the column or the workload has no valid number."""
    r = _result(report, column, workload)
    if r is None or not r.get("ok"):
        return None
    value = r.get("ns_per_iter", {}).get("median")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def ratio(report: Report, workload: str, num: str, den: str) -> float | None:
    a, b = median(report, num, workload), median(report, den, workload)
    return a / b if a is not None and b is not None else None


def exits_per_iteration(report: Report, column: str, workload: str) -> dict[str, float] | None:
    """Userspace exits by reason per iteration, from the last repetition."""
    r = _result(report, column, workload)
    if r is None or not r.get("ok") or not r.get("reps"):
        return None
    last = r["reps"][-1]
    iterations = last.get("iterations") or 0
    if not iterations:
        return None
    return {k: v / iterations for k, v in sorted(last.get("exits", {}).items())}


def _unit(report: Report, workload: str) -> str:
    for column in report["columns"].values():
        for r in column.get("results", []):
            if r.get("workload") == workload:
                return str(r.get("unit", ""))
    return ""


def _ns(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} ms"
    if value >= 1e3:
        return f"{value / 1e3:.2f} µs"
    return f"{value:.0f} ns"


def _cell(report: Report, column: str, workload: str) -> str:
    col = report["columns"].get(column)
    if col is None:
        return "not run"
    if "target" not in col:
        return "no result"
    if not col.get("available"):
        return "n/a"
    r = _result(report, column, workload)
    if r is None:
        return "not run"
    if not r.get("ok"):
        return "**FAIL**"
    ns = r["ns_per_iter"]
    return f"{_ns(ns['median'])} ({_ns(ns['min'])}–{_ns(ns['max'])})"


def markdown(report: Report) -> str:
    names = workloads(report)
    release = f" ({report['release']})" if report.get("release") else ""
    sizes: dict[str, Any] = next(
        (c["sizes"] for c in report["columns"].values() if c.get("sizes")), {})
    out = [
        f"# kvmx-bench: {report['cpu']}, kernel {report['kernel']}{release}, {report['host']}",
        "",
        f"Boot status: {report['status']}. Scale {sizes.get('scale', '?')}, "
        f"{sizes.get('reps', '?')} repetitions per workload. Time per iteration: median "
        "(min–max). n/a: the configuration cannot run this MMU mode (see Columns); "
        "FAIL: the workload computed a wrong result; no result: the run itself failed.",
        "",
        "| workload | per | " + " | ".join(COLUMNS + tuple(r[0] for r in RATIOS)) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in COLUMNS + RATIOS) + " |",
    ]
    for w in names:
        cells = [_cell(report, c, w) for c in COLUMNS]
        ratios = []
        for _, num, den in RATIOS:
            value = ratio(report, w, num, den)
            ratios.append(f"{value:.2f}×" if value is not None else "–")
        out.append(f"| {w} | {_unit(report, w)} | " + " | ".join(cells + ratios) + " |")
    out += ["", "## Userspace exits per iteration", "",
            "| workload | " + " | ".join(COLUMNS) + " |",
            "| --- | " + " | ".join("---" for _ in COLUMNS) + " |"]
    for w in names:
        cells = []
        for c in COLUMNS:
            exits = exits_per_iteration(report, c, w)
            if exits is None:
                cells.append("–")
            else:
                cells.append(", ".join(f"{k} {v:.2f}" for k, v in exits.items()) or "none")
        out.append(f"| {w} | " + " | ".join(cells) + " |")
    out += ["", "## Columns", ""]
    for name in COLUMNS:
        col = report["columns"].get(name)
        if col is None:
            out.append(f"- **{name}**: not run in this boot")
            continue
        target = col.get("target", {})
        how = f"{target.get('device', '?')}, MMU {target.get('mode', '?')}: {target.get('how', '')}"
        state = f"configuration {col['config']} {col['status']}"
        if col.get("available"):
            out.append(f"- **{name}**: {how} ({state})")
        elif "target" not in col:  # the run itself failed: see the problems
            out.append(f"- **{name}**: {col.get('unavailable', '?')} ({state})")
        else:
            out.append(f"- **{name}**: not available: {col.get('unavailable', '?')} ({state})")
        for problem in col.get("problems", [])[:5]:
            out.append(f"  - {problem}")
    return "\n".join(out) + "\n"


def chart(report: Report, path: Path) -> None:
    """Bars per workload (one per column, log scale, min–max whiskers) and the ratios."""
    try:
        import matplotlib  # type: ignore[import]
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import]
        from matplotlib.patches import Patch  # type: ignore[import]
    except ImportError as err:
        raise HarnessError(
            f"cannot draw {path.name}: {err}: install python3-matplotlib (scripts/deps.sh bench)"
        ) from err
    names = workloads(report)
    width = 0.2
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8.0, 1.3 * len(names) + 2), 9),
                                      gridspec_kw={"height_ratios": [3, 2]})
    xs = [float(x) for x in range(len(names))]
    # Legend entries made by hand: an empty (n/a) series has no bar to take a colour from.
    handles, ratio_handles = [], []
    for i, column in enumerate(COLUMNS):
        offset = (i - (len(COLUMNS) - 1) / 2) * width
        heights: list[float] = []
        low: list[float] = []
        high: list[float] = []
        pos: list[float] = []
        missing: list[tuple[float, str]] = []
        for x, w in zip(xs, names):
            r = _result(report, column, w)
            m = median(report, column, w)
            if r is None or m is None:
                missing.append((x + offset, "FAIL" if r is not None and not r.get("ok") else "n/a"))
                continue
            ns = r["ns_per_iter"]
            pos.append(x + offset)
            heights.append(m)
            low.append(m - float(ns["min"]))
            high.append(float(ns["max"]) - m)
        label = column if pos else f"{column} (n/a)"
        handles.append(Patch(facecolor=_COLORS[column], label=label))
        top.bar(pos, heights, width, color=_COLORS[column], yerr=[low, high], capsize=2)
        for x, why in missing:
            top.text(x, 0.02, why, rotation=90, ha="center", va="bottom", fontsize=7,
                     color="red" if why == "FAIL" else "black", transform=top.get_xaxis_transform())
    top.set_yscale("log")
    top.set_ylabel("ns per iteration (median, min–max)")
    top.set_xticks(xs, [f"{w}\n(per {_unit(report, w)})" for w in names], fontsize=8)
    top.legend(handles=handles, fontsize=8)
    release = f" ({report['release']})" if report.get("release") else ""
    top.set_title(f"kvmx-bench: {report['cpu']}, kernel {report['kernel']}{release}, "
                  f"{report['host']}")
    for i, (label, num, den) in enumerate(RATIOS):
        offset = (i - (len(RATIOS) - 1) / 2) * width
        pos = []
        values: list[float] = []
        for x, w in zip(xs, names):
            value = ratio(report, w, num, den)
            if value is not None:
                pos.append(x + offset)
                values.append(value)
        ratio_handles.append(Patch(facecolor=_RATIO_COLORS[i],
                                   label=label if pos else f"{label} (n/a)"))
        bottom.bar(pos, values, width, color=_RATIO_COLORS[i])
    bottom.axhline(1.0, color="black", linewidth=0.8)
    bottom.set_yscale("log")
    bottom.set_ylabel("ratio (1 = equal)")
    bottom.set_xticks(xs, names, fontsize=8)
    bottom.legend(handles=ratio_handles, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: Report, out_dir: Path, draw: bool = True) -> list[Path]:
    """results.json, results.md and (with matplotlib) chart.png under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "results.json", out_dir / "results.md"]
    written[0].write_text(json.dumps(report, indent=2) + "\n")
    written[1].write_text(markdown(report))
    if draw:
        chart(report, out_dir / "chart.png")
        written.append(out_dir / "chart.png")
    return written


def suite_args(scale: str, reps: int | None, only: Sequence[str]) -> Mapping[str, tuple[str, ...]]:
    """kvmx-bench's arguments in the test host (each configuration's $KVMX_MMU picks the MMU)."""
    args = ["--scale", scale]
    if reps is not None:
        args += ["--reps", str(reps)]
    if only:
        args += ["--only", ",".join(only)]
    return {SUITE: tuple(args)}
