"""Opt-in: one real QEMU TCG boot (KVMX_TESTHOST_BOOT=1; suite from KVMX_TESTHOST_SUITE).

Layers: `built` (build outputs exist) -> `booted` (one boot of amd-6.1 with in-tree KVM,
both MMU modes) -> the tests read its judged outcome and result files.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from testhost_lib.boot import RunOptions, run_boot
from testhost_lib.layout import HarnessError, Layout
from testhost_lib.model import BootPlan, Cpu, Impl, Mmu, cross
from testhost_lib.results import BootOutcome
from testhost_lib.status import Status

pytestmark = pytest.mark.skipif(
    os.environ.get("KVMX_TESTHOST_BOOT") != "1", reason="set KVMX_TESTHOST_BOOT=1 to boot QEMU")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    layout = Layout(results_dir=tmp_path_factory.mktemp("testhost"))
    suite = os.environ.get("KVMX_TESTHOST_SUITE", "smoke")
    try:
        layout.vmlinuz("6.1")
        layout.suite(suite)
    except HarnessError as err:
        pytest.skip(str(err))
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86 is not installed")
    return layout


@pytest.fixture(scope="module")
def booted(built: Layout) -> BootOutcome:
    suite = os.environ.get("KVMX_TESTHOST_SUITE", "smoke")
    configs = cross("6.1", Cpu.AMD, [Impl.KVM], [Mmu.TDP, Mmu.SHADOW])
    plan = BootPlan("6.1", Cpu.AMD, tuple(configs), (suite,))
    return run_boot(plan, RunOptions(layout=built), lambda line: None)


def test_boot_passes(booted: BootOutcome) -> None:
    assert booted.status is Status.PASS, booted.problems + [
        p for c in booted.configs for p in c.problems]
    assert booted.emulator is not None and booted.emulator.done_seen


def test_mmu_parameter_took_effect(booted: BootOutcome) -> None:
    assert [c.params.get("kvm_amd.npt") for c in booted.configs] == ["Y", "N"]


def test_results_written(booted: BootOutcome, built: Layout) -> None:
    data = json.loads((built.results / "boot-amd-6.1" / "result.json").read_text())
    assert data["status"] == "PASS"
    for config in booted.configs:
        assert (built.results / config.config.name / "dmesg.log").exists()
    assert built.results != built.build / "testhost"  # never the team's shared results
