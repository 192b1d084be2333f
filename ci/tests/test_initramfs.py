"""Module planning, the generated /init, and the cpio archive."""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testhost_lib.console import normalize, parse_console
from testhost_lib.initramfs import (
    ConfigScript,
    ModuleLoad,
    build_archive,
    drain_helper,
    other_vendor_modules,
    plan_loads,
    render_init,
    render_shell_init,
)
from testhost_lib.kmods import ModuleTree, module_name, read_module
from testhost_lib.layout import HarnessError, Layout
from testhost_lib.model import Config, Cpu, Impl, Mmu
from testhost_lib.results import evaluate
from testhost_lib.status import Status

from conftest import emulator_run, fake_module, plan_for


def loads(layout: Layout, name: str, extra: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    cpu, kernel, impl, mmu = name.split("-")
    config = Config(kernel, Cpu(cpu), Impl(impl), Mmu(mmu))
    tree = layout.module_tree(kernel)
    return [" ".join((load.module.name,) + load.params)
            for load in plan_loads(layout, tree, config, extra or {})]


def test_in_tree_dependencies_first(fake_build: Layout) -> None:
    assert loads(fake_build, "amd-6.1-kvm-tdp") == ["irqbypass", "kvm", "ccp", "kvm_amd npt=1"]
    assert loads(fake_build, "intel-6.1-kvm-shadow") == ["irqbypass", "kvm", "kvm_intel ept=0"]


def test_kvmx_modules_and_their_in_tree_dependencies(fake_build: Layout) -> None:
    assert loads(fake_build, "amd-6.1-kvmx-shadow") == ["kvmx tdp=0", "kvmx_amd"]
    assert loads(fake_build, "intel-6.1-kvmx-tdp") == ["irqbypass", "kvmx tdp=1", "kvmx_intel"]
    assert loads(fake_build, "amd-6.1-kvmx-tdp", {"kvmx": ("debug=1",)}) == [
        "kvmx tdp=1 debug=1", "kvmx_amd"]


def test_modules_dep_and_compressed_modules(tmp_path: Path) -> None:
    root = tmp_path / "mods"
    (root / "kernel").mkdir(parents=True)
    plain = fake_module("kvm", "", "6.12.1")
    (root / "kernel" / "kvm.ko.xz").write_bytes(lzma.compress(plain))
    (root / "kernel" / "kvm-amd.ko.xz").write_bytes(lzma.compress(fake_module("kvm_amd", "kvm", "6.12.1")))
    (root / "modules.dep").write_text("kernel/kvm-amd.ko.xz: kernel/kvm.ko.xz\nkernel/kvm.ko.xz:\n")
    tree = ModuleTree(root)
    order = tree.load_order("kvm-amd")
    assert [(m.name, m.filename) for m in order] == [("kvm", "kvm.ko"), ("kvm_amd", "kvm-amd.ko")]
    assert read_module(order[0].source) == plain
    assert module_name("kernel/arch/x86/kvm/kvm-intel.ko.zst") == "kvm_intel"


def test_build_outputs_are_checked(fake_build: Layout) -> None:
    kmod = fake_build.build / "kmod" / "6.1"
    (kmod / "kvmx.ko").write_bytes(fake_module("kvmx", "", "6.1.0-1-amd64"))
    with pytest.raises(HarnessError, match="built for 6.1.0-1-amd64, not 6.1.0-56-amd64: run `make modules`"):
        loads(fake_build, "amd-6.1-kvmx-tdp")
    (kmod / "kvmx.ko").unlink()
    with pytest.raises(HarnessError, match="build/kmod/6.1/kvmx.ko is missing: run `make modules`"):
        loads(fake_build, "amd-6.1-kvmx-tdp")
    with pytest.raises(HarnessError, match="make kernels"):
        fake_build.vmlinuz("6.12")


def test_suite_lookup(fake_build: Layout) -> None:
    assert fake_build.suite("smoke").parent.name == "selftests"
    assert fake_build.suite("kvmx-demo").parent.name == "bin"
    with pytest.raises(HarnessError, match="dynamically linked"):
        fake_build.suite("dynamic")
    with pytest.raises(HarnessError, match="run `make userspace`"):
        fake_build.suite("nope")
    with pytest.raises(HarnessError, match="bad suite name"):
        fake_build.suite("../etc")


def scripts(layout: Layout, names: list[str]) -> list[ConfigScript]:
    tree = layout.module_tree("6.1")
    out = []
    for name in names:
        cpu, kernel, impl, mmu = name.split("-")
        config = Config(kernel, Cpu(cpu), Impl(impl), Mmu(mmu))
        out.append(ConfigScript(config, plan_loads(layout, tree, config)))
    return out


def test_init_script_shape(fake_build: Layout) -> None:
    text = render_init("boot-amd-6.1", scripts(fake_build, ["amd-6.1-kvm-tdp", "amd-6.1-kvmx-shadow"]),
                       ["smoke", "vm"], suite_timeout=300)
    assert text.startswith("#!/bin/sh\n")
    for needle in [
        "mount -t proc proc /proc", "mount -t sysfs sysfs /sys", "mount -t devtmpfs devtmpfs /dev",
        'taint=$(cat /proc/sys/kernel/tainted)',
        "load irqbypass /lib/modules/irqbypass.ko &&\n\tload kvm /lib/modules/kvm.ko &&\n"
        "\tload ccp /lib/modules/ccp.ko &&\n\tload kvm_amd /lib/modules/kvm-amd.ko npt=1; then",
        "load kvmx /lib/modules/kvmx.ko tdp=0 &&\n\tload kvmx_amd /lib/modules/kvmx-amd.ko; then",
        "export KVMX_DEVICE=/dev/kvmx KVMX_IMPL=kvmx KVMX_CPU=amd KVMX_MMU=shadow",
        "wait_dev /dev/kvm;", "wait_dev /dev/kvmx;",
        "suite smoke /suites/smoke", "suite vm /suites/vm",
        'timeout -s KILL 300 "$bin" --device "$KVMX_DEVICE" "$@"',
        'm "dev-missing /dev/kvmx"', 'm "dmesg-begin amd-6.1-kvmx-shadow"', "dmesg -c",
        'm "done t=$(up)"\nfinish',
    ]:
        assert needle in text, needle
    # Configurations run in order, each unloading before the next.
    first = text.index("cfg-begin amd-6.1-kvm-tdp")
    second = text.index("cfg-begin amd-6.1-kvmx-shadow")
    assert first < text.index("\nunload\n", first) < second


def test_suite_args_follow_the_device(fake_build: Layout) -> None:
    text = render_init("boot-amd-6.1", scripts(fake_build, ["amd-6.1-kvm-tdp"]), ["smoke", "vm"],
                       suite_args={"vm": ("--scale", "a b")})
    assert "suite smoke /suites/smoke\n" in text
    assert "suite vm /suites/vm --scale 'a b'\n" in text


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed")
def test_init_script_syntax(fake_build: Layout) -> None:
    for text in (render_init("b", scripts(fake_build, ["amd-6.1-kvm-tdp"]), ["smoke"]),
                 render_shell_init("b", scripts(fake_build, ["amd-6.1-kvmx-tdp"])[0]),
                 render_shell_init("b", None)):
        subprocess.run(["busybox", "sh", "-n", "-c", text], check=True)


STUBS = {
    "mount": "exit 0",
    "poweroff": "exit 0",
    "sleep": "exit 0",
    "uname": "echo 6.1.0-stub",
    "dmesg": 'echo "[    1.000000] stub kernel message"',
    "insmod": 'case "$1" in *kvmx-amd.ko) echo "insmod: can\'t insert \'$1\': Unknown symbol in module" >&2; '
              'exit 1;; esac; echo "insmod $*" >>"$STUB_LOG"',
    "rmmod": 'echo "rmmod $*" >>"$STUB_LOG"; [ "$1" != ccp ]',
}


def test_init_script_runs_with_stubs(fake_build: Layout, tmp_path: Path) -> None:
    """Run the generated /init on the build machine with stub commands and parse its output."""
    names = ["amd-6.1-kvm-tdp", "amd-6.1-kvmx-tdp"]
    text = render_init("stub", scripts(fake_build, names), ["smoke"])
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "smoke").write_text(
        '#!/bin/sh\necho "TAP version 13"; echo 1..1; echo "ok 1 $KVMX_IMPL $1 $2"\n')
    (suites / "smoke").chmod(0o755)
    text = (text.replace("/suites/", f"{suites}/").replace("/sys/module/", f"{tmp_path}/nomod/")
            .replace("/dev/kvm", "/dev/null").replace("export PATH=", "export _PATH="))
    log = tmp_path / "stub.log"
    env = {"PATH": f"{stubs}:{os.environ['PATH']}", "STUB_LOG": str(log)}
    out = subprocess.run(["/bin/sh", "-c", text], env=env, capture_output=True, text=True,
                         timeout=30)
    tr = parse_console(normalize(out.stdout))
    assert tr.done and tr.order == names
    assert tr.release == "6.1.0-stub"
    kvm = tr.configs["amd-6.1-kvm-tdp"]
    assert kvm.suites[0].lines[-1] == "ok 1 kvm --device /dev/null"
    assert kvm.rmmod_failures == ["rmmod ccp failed (exit 1)"]
    kvmx = tr.configs["amd-6.1-kvmx-tdp"]
    assert kvmx.load_failures == [
        "insmod kvmx_amd failed (exit 1): insmod: can't insert "
        "'/lib/modules/kvmx-amd.ko': Unknown symbol in module"]
    assert kvmx.suites == []
    assert kvmx.dmesg == ["[    1.000000] stub kernel message"]
    # Reverse unload order, and only what was loaded.
    assert log.read_text().splitlines() == [
        "insmod /lib/modules/irqbypass.ko", "insmod /lib/modules/kvm.ko",
        "insmod /lib/modules/ccp.ko", "insmod /lib/modules/kvm-amd.ko npt=1",
        "rmmod kvm_amd", "rmmod ccp", "rmmod kvm", "rmmod irqbypass",
        "insmod /lib/modules/kvmx.ko tdp=1", "rmmod kvmx"]
    result = evaluate(plan_for(names, ["smoke"]), "qemu-tcg", tr, emulator_run())
    assert [c.status for c in result.configs] == [Status.FAIL, Status.FAIL]


def read_newc(data: bytes) -> dict[str, tuple[int, bytes, int, int]]:
    """name -> (mode, data, rdevmajor, rdevminor) of a newc archive."""
    entries: dict[str, tuple[int, bytes, int, int]] = {}
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos: pos + filesize]
        pos += filesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            return entries
        entries[name] = (fields[1], body, fields[9], fields[10])


@pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="busybox-static not installed")
def test_archive_contents(fake_build: Layout) -> None:
    (script,) = scripts(fake_build, ["amd-6.1-kvm-tdp"])
    init = render_init("b", [script], ["smoke"])
    archive = build_archive(init, [load.module for load in script.loads],
                            {"smoke": fake_build.suite("smoke")}, b"drain")
    entries = read_newc(gzip.decompress(archive))
    mode, body, _, _ = entries["init"]
    assert mode == 0o100755 and body.decode() == init
    assert entries["dev/console"][0] == 0o020600 and entries["dev/console"][2:] == (5, 1)
    assert entries["bin/sh"] == (0o120777, b"/bin/busybox", 0, 0)
    assert entries["bin/th-drain"][0] == 0o100755
    assert entries["suites/smoke"][0] == 0o100755
    for name in ("irqbypass", "kvm", "ccp", "kvm-amd"):
        assert entries[f"lib/modules/{name}.ko"][1][:4] == b"\x7fELF"
    assert entries["lib/modules"][0] == 0o040755
    # Reproducible bytes for the same inputs.
    assert archive == build_archive(init, [load.module for load in script.loads],
                                    {"smoke": fake_build.suite("smoke")}, b"drain")


def test_load_with_no_modules_is_valid(fake_build: Layout) -> None:
    (script,) = scripts(fake_build, ["amd-6.1-kvm-tdp"])
    empty = ConfigScript(script.config, ())
    assert "if true; then" in render_init("b", [empty], ["smoke"])
    assert isinstance(script.loads[0], ModuleLoad)


def test_other_vendor_module_is_tried_before_the_vendor(fake_build: Layout) -> None:
    tree = fake_build.module_tree("6.1")
    out = []
    for impl in (Impl.KVM, Impl.KVMX):
        config = Config("6.1", Cpu.AMD, impl, Mmu.TDP)
        out.append(ConfigScript(config, plan_loads(fake_build, tree, config),
                                tuple(other_vendor_modules(fake_build, tree, config))))
    text = render_init("boot-amd-6.1", out, ["modules"])
    # In-tree: what kvm-intel needs comes first (other_vendor skips what is loaded); kvm_amd
    # comes after the try.
    assert ("\tother_vendor irqbypass /lib/modules/irqbypass.ko kvm /lib/modules/kvm.ko "
            "kvm_intel /lib/modules/kvm-intel.ko &&\n"
            "\tload kvm_amd /lib/modules/kvm-amd.ko npt=1; then") in text
    assert ("load kvmx /lib/modules/kvmx.ko tdp=1 &&\n"
            "\tother_vendor kvmx_intel /lib/modules/kvmx-intel.ko &&\n"
            "\tload kvmx_amd /lib/modules/kvmx-amd.ko; then") in text
    assert "KVMX_OTHER_VENDOR_RESULT=/tmp/kvmx-other-vendor" in text
    subprocess.run(["busybox", "sh", "-n", "-c", text], check=True)


def test_drain_helper_survives_parallel_first_builds(tmp_path: Path) -> None:
    # The boots of a matrix prepare at the same time on a fresh build/: every one must get the
    # helper, none may trip over another's temporary file.
    from concurrent.futures import ThreadPoolExecutor

    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: drain_helper(cache), range(4)))
    assert all(r is not None and r.startswith(b"\x7fELF") for r in results)
    assert not list(cache.glob("*.tmp"))
