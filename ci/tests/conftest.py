"""Shared fixtures: golden console logs, parsed transcripts, and a fake build tree.

Layers: `golden` (text) -> `transcript` (parsed) -> `outcome` (judged), and
`fake_build` (a repository with build/ outputs made of stand-in files).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Callable

import pytest

CI = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CI))

from testhost_lib.console import Transcript, normalize, parse_console  # noqa: E402
from testhost_lib.layout import Layout  # noqa: E402
from testhost_lib.model import BootPlan, Config, Cpu, Impl, Mmu  # noqa: E402
from testhost_lib.results import BootOutcome, evaluate  # noqa: E402
from testhost_lib.runner import EmulatorRun  # noqa: E402

DATA = Path(__file__).with_name("data")


@pytest.fixture
def golden() -> Callable[[str], str]:
    def load(name: str) -> str:
        return (DATA / name).read_text()
    return load


@pytest.fixture
def transcript(golden: Callable[[str], str]) -> Callable[[str], Transcript]:
    def parse(name: str) -> Transcript:
        return parse_console(normalize(golden(name)))
    return parse


def emulator_run(timed_out: bool = False, done: bool = True, code: int | None = 0) -> EmulatorRun:
    return EmulatorRun(("emu",), code, timed_out, done, False, 12.5, 300.0)


def plan_for(names: list[str], suites: list[str]) -> BootPlan:
    configs = []
    for name in names:
        cpu, kernel, impl, mmu = name.split("-")
        configs.append(Config(kernel, Cpu(cpu), Impl(impl), Mmu(mmu)))
    return BootPlan(configs[0].kernel, configs[0].cpu, tuple(configs), tuple(suites))


@pytest.fixture
def outcome(transcript: Callable[[str], Transcript]) -> Callable[..., BootOutcome]:
    def judge(name: str, configs: list[str], suites: list[str], host: str = "qemu-tcg",
              timed_out: bool = False) -> BootOutcome:
        tr = transcript(name)
        return evaluate(plan_for(configs, suites), host, tr,
                        emulator_run(timed_out=timed_out, done=tr.done))
    return judge


def fake_elf(sections: dict[str, bytes], interp: bool = False) -> bytes:
    """A minimal little-endian ELF64 with the given sections (and optionally PT_INTERP)."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n in sections) + b".shstrtab\0"
    body = b""
    offsets = []
    data_start = 64 + (56 if interp else 0)
    for content in sections.values():
        offsets.append(data_start + len(body))
        body += content
    shstr_off = data_start + len(body)
    body += names
    shoff = data_start + len(body)
    shnum = len(sections) + 2
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<HHI", header, 16, 1, 62, 1)
    struct.pack_into("<QQQ", header, 24, 0, 64 if interp else 0, shoff)
    struct.pack_into("<HHHHHH", header, 52, 64, 56, 1 if interp else 0, 64, shnum, shnum - 1)
    phdr = struct.pack("<IIQQQQQQ", 3, 4, 0, 0, 0, 0, 0, 1) if interp else b""
    shdrs = bytes(64)  # the null section
    name_off = 1
    for (name, content), off in zip(sections.items(), offsets):
        shdrs += struct.pack("<IIQQQQIIQQ", name_off, 1, 0, 0, off, len(content), 0, 0, 1, 0)
        name_off += len(name) + 1
    shdrs += struct.pack("<IIQQQQIIQQ", name_off, 3, 0, 0, shstr_off, len(names), 0, 0, 1, 0)
    return bytes(header) + phdr + body + shdrs


def fake_module(name: str, depends: str, vermagic: str) -> bytes:
    info = f"name={name}\0depends={depends}\0vermagic={vermagic} SMP preempt mod_unload\0"
    return fake_elf({".text": b"\xc3", ".modinfo": info.encode()})


@pytest.fixture
def fake_build(tmp_path: Path) -> Layout:
    """A repository whose build/ holds one kernel (6.1) with stand-in modules and suites."""
    release = "6.1.0-56-amd64"
    kdir = tmp_path / "build" / "kernels" / "6.1"
    mods = kdir / "root" / "lib" / "modules" / release
    for rel, deps in {
        "kernel/virt/lib/irqbypass.ko": "",
        "kernel/arch/x86/kvm/kvm.ko": "irqbypass",
        "kernel/drivers/crypto/ccp/ccp.ko": "",
        "kernel/arch/x86/kvm/kvm-amd.ko": "kvm,ccp",
        "kernel/arch/x86/kvm/kvm-intel.ko": "kvm",
    }.items():
        path = mods / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        name = path.name[:-3].replace("-", "_")
        path.write_bytes(fake_module(name, deps, release))
    (kdir / "release").write_text(release + "\n")
    (kdir / "vmlinuz").write_bytes(b"kernel")
    kmod = tmp_path / "build" / "kmod" / "6.1"
    kmod.mkdir(parents=True)
    (kmod / "kvmx.ko").write_bytes(fake_module("kvmx", "", release))
    (kmod / "kvmx-amd.ko").write_bytes(fake_module("kvmx_amd", "kvmx", release))
    (kmod / "kvmx-intel.ko").write_bytes(fake_module("kvmx_intel", "kvmx,irqbypass", release))
    sel = tmp_path / "build" / "bin" / "selftests"
    sel.mkdir(parents=True)
    (sel / "smoke").write_bytes(fake_elf({".text": b"\xc3"}))
    (tmp_path / "build" / "bin" / "kvmx-demo").write_bytes(fake_elf({".text": b"\xc3"}))
    (sel / "dynamic").write_bytes(fake_elf({".text": b"\xc3"}, interp=True))
    return Layout(tmp_path)
