"""Emulator ops: the exact QEMU command line and the Bochs files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testhost_lib.hosts import BOCHS, BOCHS_SCREEN_PTY, HOSTS, QEMU, BootFiles
from testhost_lib.model import Cpu


def files(tmp_path: Path, interactive: bool = False) -> BootFiles:
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"k" * 4096)
    initrd = tmp_path / "initrd.gz"
    initrd.write_bytes(b"i" * 4096)
    return BootFiles(tmp_path, kernel, initrd, HOSTS[Cpu.INTEL].cmdline(),
                     "/dev/pts/9" if interactive else str(tmp_path / "console.log"), interactive)


def test_hosts_table() -> None:
    assert HOSTS[Cpu.AMD].ops is QEMU and HOSTS[Cpu.INTEL].ops is BOCHS


def test_qemu_command_line(tmp_path: Path) -> None:
    argv = QEMU.prepare(files(tmp_path)).argv
    joined = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64"
    for part in ("-M q35", "-accel tcg,thread=single", "-smp 2", "-cpu max", "-m 1024",
                 "-display none", "-no-reboot", f"-serial file:{tmp_path}/console.log"):
        assert part in joined
    assert argv[argv.index("-append") + 1].startswith("console=ttyS0 quiet panic=-1")
    assert "-serial /dev/pts/9" in " ".join(QEMU.prepare(files(tmp_path, True)).argv)
    assert QEMU.prepare(files(tmp_path)).screen_pty is None


@pytest.mark.skipif(shutil.which("genisoimage") is None
                    or not Path("/usr/lib/ISOLINUX/isolinux.bin").exists(),
                    reason="genisoimage/isolinux not installed")
def test_bochs_files(tmp_path: Path) -> None:
    launch = BOCHS.prepare(files(tmp_path))
    assert launch.argv[:2] == ("bochs", "-q") and "-rc" in launch.argv
    assert dict(launch.env)["TERM"]
    assert launch.screen_pty == BOCHS_SCREEN_PTY  # the runner must drain Bochs' own screen pty
    rc = (tmp_path / "bochsrc").read_text()
    for line in ("cpu: model=corei7_haswell_4770, count=1, ips=200000000, reset_on_triple_fault=0",
                 "megs: 1024", "boot: cdrom", f"com1: enabled=1, mode=file, dev={tmp_path}/console.log",
                 "panic: action=fatal", "display_library: term", "clock: sync=none, time0=local"):
        assert line in rc
    assert (tmp_path / "cont.rc").read_text() == "c\n"
    iso = (tmp_path / "boot.iso").read_bytes()
    assert b"CD001" in iso[:65536]
    assert b"reboot=t mitigations=off" in iso  # isolinux.cfg carries the command line
    shell = BOCHS.prepare(files(tmp_path, True))
    assert "com1: enabled=1, mode=term, dev=/dev/pts/9" in (tmp_path / "bochsrc").read_text()
    assert shell.argv == launch.argv
