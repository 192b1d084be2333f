"""run_boot end to end with a stand-in emulator that replays a golden console."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Callable

import pytest

from testhost_lib import boot
from testhost_lib.hosts import HOSTS, BootFiles, EmulatorOps, Launch
from testhost_lib.layout import HarnessError, Layout
from testhost_lib.model import Cpu
from testhost_lib.status import Status

from conftest import plan_for

pytestmark = pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="needs busybox-static")


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    """Make the AMD host an emulator that writes `text` to the console and exits."""
    def install(text: str) -> None:
        source = tmp_path / "replay.console"
        source.write_text(text)

        def prepare(files: BootFiles) -> Launch:
            return Launch(("/bin/sh", "-c", f"cat {source} > {files.serial}; exit 1"))

        ops = EmulatorOps("replay", {"sh": "dash"}, prepare)
        host = dataclasses.replace(HOSTS[Cpu.AMD], ops=ops, exit_grace=1.0)
        monkeypatch.setattr(boot, "HOSTS", {Cpu.AMD: host, Cpu.INTEL: HOSTS[Cpu.INTEL]})
    return install


def test_two_configs_write_boot_and_config_dirs(
    fake_build: Layout, golden: Callable[[str], str], replay: Callable[[str], None]
) -> None:
    replay(golden("clean-pass.console").replace("6.12", "6.1").replace("probe", "smoke"))
    plan = plan_for(["amd-6.1-kvm-tdp", "amd-6.1-kvm-shadow"], ["smoke"])
    lines: list[str] = []
    outcome = boot.run_boot(plan, boot.RunOptions(layout=fake_build), lines.append)
    assert outcome.status is Status.PASS, outcome.problems
    assert "@@TH done t=9.35" in lines  # streamed live
    results = fake_build.results
    boot_dir = results / "boot-amd-6.1"
    for name in ("console.log", "init.sh", "initrd.gz", "cmdline", "result.json"):
        assert (boot_dir / name).exists(), name
    summary = json.loads((boot_dir / "result.json").read_text())
    assert summary["status"] == "PASS" and summary["exit_code"] == 0
    assert [c["config"] for c in summary["configs"]] == ["amd-6.1-kvm-tdp", "amd-6.1-kvm-shadow"]
    config = json.loads((results / "amd-6.1-kvm-shadow" / "result.json").read_text())
    assert config["passed"] == 5 and config["suites"][0]["plan"] == 5
    assert config["boot"]["name"] == "boot-amd-6.1"
    assert (results / "amd-6.1-kvm-shadow" / "dmesg.log").read_text().splitlines() == [
        "[    8.757133] kvm_amd: Nested Virtualization enabled",
        "[    8.757292] kvm_amd: Nested Paging disabled"]
    console = (results / "amd-6.1-kvm-tdp" / "console.log").read_text()
    assert console.startswith("@@TH cfg-begin amd-6.1-kvm-tdp")
    assert "amd-6.1-kvm-shadow" not in console


def test_single_config_uses_its_own_dir(
    fake_build: Layout, golden: Callable[[str], str], replay: Callable[[str], None]
) -> None:
    replay(golden("failures.console"))
    plan = plan_for(["amd-6.1-kvmx-tdp"], ["smoke"])
    outcome = boot.run_boot(plan, boot.RunOptions(layout=fake_build), lambda line: None)
    assert outcome.status is Status.FAIL
    data = json.loads((fake_build.results / "amd-6.1-kvmx-tdp" / "result.json").read_text())
    assert data["status"] == "FAIL" and data["exit_code"] == 1
    assert data["boot"]["emulator"]["exit_code"] == 1
    assert not (fake_build.results / "boot-amd-6.1").exists()


def test_missing_build_output_is_harness_error(
    fake_build: Layout, replay: Callable[[str], None]
) -> None:
    replay("")
    shutil.rmtree(fake_build.build / "kernels")
    outcome = boot.run_boot(plan_for(["amd-6.1-kvm-tdp"], ["smoke"]),
                            boot.RunOptions(layout=fake_build), lambda line: None)
    assert outcome.status is Status.HARNESS
    assert "run `make kernels`" in outcome.problems[0]


def test_concurrent_use_of_a_result_dir_is_refused(fake_build: Layout) -> None:
    with boot._locked(fake_build, ["amd-6.1-kvm-tdp"]):
        with pytest.raises(HarnessError, match="another ci/testhost"):
            with boot._locked(fake_build, ["boot-amd-6.1", "amd-6.1-kvm-tdp"]):
                pass
    with boot._locked(fake_build, ["amd-6.1-kvm-tdp"]):
        pass  # released again


def test_emulator_that_never_boots_is_harness_error(
    fake_build: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    def prepare(files: BootFiles) -> Launch:
        return Launch(("/bin/sh", "-c", "echo 'qemu: -cpu foo: unknown CPU model' >&2; exit 1"))

    host = dataclasses.replace(HOSTS[Cpu.AMD], ops=EmulatorOps("broken", {"sh": "dash"}, prepare))
    monkeypatch.setattr(boot, "HOSTS", {Cpu.AMD: host})
    outcome = boot.run_boot(plan_for(["amd-6.1-kvm-tdp"], ["smoke"]),
                            boot.RunOptions(layout=fake_build), lambda line: None)
    assert outcome.status is Status.HARNESS
    assert "emulator.out: qemu: -cpu foo: unknown CPU model" in outcome.problems
