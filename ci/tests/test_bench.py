"""ci/testhost bench: reading kvmx-bench's records back from a boot, the table and the chart."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import emulator_run, fake_elf, plan_for
from testhost_lib import bench
from testhost_lib.cli import build_parser, main
from testhost_lib.console import Transcript
from testhost_lib.layout import HarnessError, Layout
from testhost_lib.model import Cpu
from testhost_lib.results import BootOutcome, evaluate

# A real boot (QEMU TCG, 6.1, --scale check): kvm-tdp, kvm-shadow, kvmx-tdp, and kvmx-shadow,
# which had no vCPUs to offer and skipped every workload.
CONFIGS = ["amd-6.1-kvm-tdp", "amd-6.1-kvm-shadow", "amd-6.1-kvmx-tdp", "amd-6.1-kvmx-shadow"]


@pytest.fixture
def boot(transcript: Callable[[str], Transcript]) -> BootOutcome:
    tr = transcript("bench-amd.console")
    return evaluate(plan_for(CONFIGS, [bench.SUITE]), "qemu-tcg", tr, emulator_run(done=tr.done))


@pytest.fixture
def report(boot: BootOutcome) -> dict[str, Any]:
    return bench.collect(boot)


def test_the_boot_is_judged_like_any_suite(boot: BootOutcome) -> None:
    assert [c.status.label for c in boot.configs] == ["PASS"] * 4
    counts = [c.counts for c in boot.configs]
    assert counts == [(10, 0, 0), (10, 0, 0), (10, 0, 0), (0, 0, 10)]


def test_extract_takes_the_last_valid_record() -> None:
    lines = [
        "# KVMX-BENCH-JSON {not json",
        '# KVMX-BENCH-JSON {"tool": "kvmx-bench", "n": 1}',
        '# KVMX-BENCH-JSON {"tool": "something else"}',
        "ok 1 cpuid",
    ]
    assert bench.extract(lines) == {"tool": "kvmx-bench", "n": 1}
    assert bench.extract(["ok 1 x", "# KVMX-BENCH-JSON [1, 2]"]) is None


def test_collect_keeps_every_column(report: dict[str, Any]) -> None:
    assert set(report["columns"]) == set(bench.COLUMNS)
    assert report["release"] == "6.1.0-56-amd64"
    kvm = report["columns"]["kvm-shadow"]
    assert kvm["available"] and kvm["target"]["how"] == "module parameter kvm_amd.npt=N"
    assert kvm["params"] == {"kvm_amd.npt": "N"}
    shadow = report["columns"]["kvmx-shadow"]
    assert not shadow["available"]
    assert "no vCPUs" in shadow["unavailable"]
    assert bench.workloads(report)[:4] == ["cpuid", "pio", "mmio", "hlt"]


def test_numbers_and_ratios(report: dict[str, Any]) -> None:
    assert bench.median(report, "kvm-tdp", "pio") == pytest.approx(738940)
    assert bench.median(report, "kvmx-shadow", "pio") is None  # not available, never a number
    assert bench.ratio(report, "pio", "kvm-shadow", "kvm-tdp") == pytest.approx(344903 / 738940)
    assert bench.ratio(report, "pio", "kvmx-shadow", "kvmx-tdp") is None
    assert bench.exits_per_iteration(report, "kvm-tdp", "pio") == {"io": 1.0}
    assert bench.exits_per_iteration(report, "kvm-tdp", "cpuid") == {}


def test_a_wrong_result_is_a_failure_not_a_number(report: dict[str, Any]) -> None:
    column = report["columns"]["kvm-tdp"]
    column["results"][1] = {"workload": "pio", "unit": "exit", "ok": False,
                            "failure": "sum: expected 0x1, got 0x2", "reps": []}
    assert bench.median(report, "kvm-tdp", "pio") is None
    assert "| pio | exit | " in bench.markdown(report)
    row = next(line for line in bench.markdown(report).splitlines() if line.startswith("| pio |"))
    assert "**FAIL**" in row


def test_markdown_table(report: dict[str, Any]) -> None:
    text = bench.markdown(report)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| workload | per |"))
    assert header.split(" | ")[2:6] == list(bench.COLUMNS)
    row = next(line for line in lines if line.startswith("| pio |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "540.95 µs (540.95 µs–540.95 µs)"  # kvmx-tdp
    assert cells[3] == "n/a"  # kvmx-shadow
    assert cells[6] == "0.73×"  # kvmx/KVM tdp
    assert cells[7] == "–"  # kvmx/KVM shadow: no kvmx-shadow number
    assert "- **kvmx-shadow**: not available: the device offers no vCPUs" in text
    assert "| pio | io 1.00 | – | io 1.00 | io 1.00 |" in text


def test_a_configuration_that_printed_nothing(report: dict[str, Any], boot: BootOutcome) -> None:
    for suite in boot.configs[0].suites:
        assert suite.tap is not None
        suite.tap.lines = [line for line in suite.tap.lines if not line.startswith(bench.JSON_PREFIX)]
    column = bench.collect(boot)["columns"]["kvm-tdp"]
    assert not column["available"]
    assert column["unavailable"].startswith("no results")


def test_write_all_three_files(report: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the chart needs python3-matplotlib (scripts/deps.sh bench)")
    written = bench.write(report, tmp_path / "amd-6.1")
    assert [p.name for p in written] == ["results.json", "results.md", "chart.png"]
    assert json.loads(written[0].read_text())["columns"]["kvm-tdp"]["available"]
    png = written[2].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 600 and height > 600


def test_write_without_chart(report: dict[str, Any], tmp_path: Path) -> None:
    written = bench.write(report, tmp_path, draw=False)
    assert [p.name for p in written] == ["results.json", "results.md"]


def test_suite_args() -> None:
    assert bench.suite_args("small", None, []) == {"kvmx-bench": ("--scale", "small")}
    assert bench.suite_args("check", 2, ["pio", "hlt"]) == {
        "kvmx-bench": ("--scale", "check", "--reps", "2", "--only", "pio,hlt")}


def _intel_module(layout: Layout, modinfo: bytes) -> None:
    path = layout.build / "kmod" / "6.1" / "kvmx-intel.ko"
    path.write_bytes(fake_elf({".text": b"\xc3", ".modinfo": modinfo}))


def test_vcpu_params_follow_the_module(fake_build: Layout) -> None:
    release = fake_build.release("6.1")
    base = f"name=kvmx_intel\0vermagic={release} SMP mod_unload\0".encode()
    _intel_module(fake_build, base + b"parm=run_vcpus:Run vCPUs\0parmtype=run_vcpus:bool\0")
    assert bench.vcpu_params(fake_build, "6.1", Cpu.INTEL) == {"kvmx_intel": ("run_vcpus=1",)}
    _intel_module(fake_build, base)  # vCPUs by default: the parameter is gone
    assert bench.vcpu_params(fake_build, "6.1", Cpu.INTEL) == {}
    assert bench.vcpu_params(fake_build, "6.1", Cpu.AMD) == {}


def test_bench_command_line() -> None:
    args = build_parser().parse_args(
        ["bench", "--kernel", "6.1", "--cpu", "amd", "--scale", "check", "--only", "pio,hlt",
         "--out", "/tmp/x", "--results", "/tmp/y"])
    assert args.command == "bench" and args.scale == "check"
    assert args.only == [["pio", "hlt"]] and args.out == Path("/tmp/x")
    assert args.impl is None and args.mmu is None  # defaults: kvm,kvmx x tdp,shadow


def test_report_from_json_files(report: dict[str, Any], tmp_path: Path) -> None:
    records = []
    for name in ("kvm-tdp", "kvmx-tdp", "kvmx-shadow"):
        col = report["columns"][name]
        records.append({"tool": "kvmx-bench", "target": col["target"], "sizes": col["sizes"],
                        "results": col["results"]})
    data = bench.from_records(records, "AMD EPYC", "6.1.0-56-amd64", "bare metal")
    assert set(data["columns"]) == {"kvm-tdp", "kvmx-tdp", "kvmx-shadow"}
    assert not data["columns"]["kvmx-shadow"]["available"]
    assert bench.median(data, "kvmx-tdp", "pio") == bench.median(report, "kvmx-tdp", "pio")
    assert "- **kvm-shadow**: not run in this boot" in bench.markdown(data)
    with pytest.raises(HarnessError, match="two records for kvm-tdp"):
        bench.from_records(records + records[:1], "c", "k", "h")
    with pytest.raises(HarnessError, match="not a kvmx-bench record"):
        bench.from_records([{"tool": "x"}], "c", "k", "h")


def test_bench_report_command(report: dict[str, Any], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    col = report["columns"]["kvm-tdp"]
    record = tmp_path / "kvm-tdp.json"
    record.write_text(json.dumps({"tool": "kvmx-bench", "target": col["target"],
                                  "sizes": col["sizes"], "results": col["results"]}))
    status = main(["bench-report", str(record), "--cpu", "AMD", "--kernel", "6.1",
                   "--out", str(tmp_path / "out"), "--no-chart"])
    assert status == 0
    assert (tmp_path / "out" / "results.md").read_text().startswith("# kvmx-bench: AMD, kernel 6.1")
    assert "| pio | exit |" in capsys.readouterr().out


def test_a_boot_that_never_ran_is_no_result_not_na(boot: BootOutcome) -> None:
    for suite in boot.configs[2].suites:
        assert suite.tap is not None
        suite.tap.lines = []
    boot.configs[2].problems = ["not reached: the boot ended before this configuration started"]
    data = bench.collect(boot)
    text = bench.markdown(data)
    row = next(line for line in text.splitlines() if line.startswith("| pio |"))
    assert [c.strip() for c in row.strip("|").split("|")][2] == "no result"  # kvmx-tdp
    assert "- **kvmx-tdp**: no results: not reached" in text
