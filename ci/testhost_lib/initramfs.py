"""The test host's initramfs: busybox, modules, suites and a generated /init.

The archive is written here (newc cpio, gzip) rather than by cpio(1), so the
device node and the file modes need no root and the bytes are reproducible.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

from .kmods import Module, ModuleError, ModuleTree, depends_of, modinfo, read_module
from .layout import HarnessError, Layout, vendor_module
from .model import Config, Cpu, Impl, Mmu

BUSYBOX = Path("/bin/busybox")
MODULE_DIR = "/lib/modules"
SUITE_DIR = "/suites"
DRAIN = "/bin/th-drain"
OTHER_VENDOR_RESULT = "/tmp/kvmx-other-vendor"
DRAIN_SOURCE = Path(__file__).with_name("th-drain.c")


# ---------------------------------------------------------------- cpio (newc)

class Cpio:
    """An in-memory newc archive; parent directories are added on demand."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._ino = 0
        self._names: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"",
               rdev: tuple[int, int] = (0, 0)) -> None:
        name = name.lstrip("/")
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 2 if mode & 0o040000 else 1, 0, len(data),
                  0, 0, rdev[0], rdev[1], len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._out.write(header + encoded)
        self._pad()
        self._out.write(data)
        self._pad()
        self._names.add(name)

    def _pad(self) -> None:
        self._out.write(b"\0" * (-self._out.tell() % 4))

    def _parents(self, path: str) -> None:
        parents = [p for p in PurePosixPath(path.lstrip("/")).parents if str(p) != "."]
        for parent in reversed(parents):
            self.directory(str(parent))

    def directory(self, path: str, mode: int = 0o755) -> None:
        if path.lstrip("/") in self._names:
            return
        self._parents(path)
        self._entry(path, 0o040000 | mode)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._parents(path)
        self._entry(path, 0o100000 | mode, data)

    def symlink(self, path: str, target: str) -> None:
        self._parents(path)
        self._entry(path, 0o120777, target.encode())

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._parents(path)
        self._entry(path, 0o020000 | mode, rdev=(major, minor))

    def names(self) -> set[str]:
        return set(self._names)

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self._out.write(b"\0" * (-self._out.tell() % 512))
        return self._out.getvalue()


# ---------------------------------------------------------------- what to load

@dataclass(frozen=True)
class ModuleLoad:
    module: Module
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigScript:
    config: Config
    loads: tuple[ModuleLoad, ...]
    # The other CPU maker's module of this implementation, after what it needs: /init tries it
    # once everything but this configuration's vendor module is loaded (see other_vendor()).
    other: tuple[Module, ...] = ()


def mmu_param(config: Config) -> str:
    on = "1" if config.mmu is Mmu.TDP else "0"
    if config.impl is Impl.KVMX:
        return f"tdp={on}"
    return f"npt={on}" if config.cpu is Cpu.AMD else f"ept={on}"


def plan_loads(
    layout: Layout,
    tree: ModuleTree,
    config: Config,
    extra: Mapping[str, Sequence[str]] = {},
) -> tuple[ModuleLoad, ...]:
    """Modules of one configuration in load order, with their parameters."""
    vendor = vendor_module(config.cpu, config.impl)
    try:
        if config.impl is Impl.KVM:
            mods = tree.load_order(vendor)
        else:
            ours = []
            for name in ("kvmx", vendor):
                path = layout.kvmx_module(config.kernel, name)
                info = modinfo(path.read_bytes())
                ours.append(Module(info.get("name", name.replace("-", "_")), path.name, path))
            mods = []
            for mod in ours:
                for dep in depends_of(read_module(mod.source)):
                    if dep in ("kvmx", "kvmx_amd", "kvmx_intel"):
                        continue
                    mods.extend(m for m in tree.load_order(dep) if m not in mods)
            mods.extend(ours)
    except ModuleError as err:
        raise HarnessError(f"{config.name}: {err}: run `make kernels`") from err
    loads = []
    param_target = "kvmx" if config.impl is Impl.KVMX else vendor.replace("-", "_")
    for mod in mods:
        params: list[str] = [mmu_param(config)] if mod.name == param_target else []
        params.extend(extra.get(mod.name, ()))
        loads.append(ModuleLoad(mod, tuple(params)))
    return tuple(loads)


def other_vendor_modules(layout: Layout, tree: ModuleTree, config: Config) -> list[Module]:
    """The other CPU maker's module of this implementation, with what it needs.

    Carried in the initramfs but never loaded by /init: the `modules` suite
    checks that it refuses to load on this CPU.
    """
    other = Cpu.INTEL if config.cpu is Cpu.AMD else Cpu.AMD
    name = vendor_module(other, config.impl)
    try:
        if config.impl is Impl.KVM:
            return tree.load_order(name)
        path = layout.kvmx_module(config.kernel, name)
        info = modinfo(path.read_bytes())
        return [Module(info.get("name", name.replace("-", "_")), path.name, path)]
    except ModuleError as err:
        raise HarnessError(f"{config.name}: {err}: run `make kernels`") from err


# ---------------------------------------------------------------- /init

_PRELUDE = r"""#!/bin/sh
# Generated by ci/testhost (ci/testhost_lib/initramfs.py) for {title}: do not edit.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

m() {{ echo "@@TH $*"; }}
up() {{ read -r u _ </proc/uptime; echo "$u"; }}
LOADED=
load() {{
	name=$1 file=$2
	shift 2
	if [ -e "/sys/module/$name" ]; then
		m "load-fail $name rc=- msg=already loaded before this configuration"
		return 1
	fi
	out=$(insmod "$file" "$@" 2>&1)
	rc=$?
	[ -n "$out" ] && echo "$out"
	if [ $rc -ne 0 ]; then
		m "load-fail $name rc=$rc msg=$(echo "$out" | tr '\n' ' ')"
		return 1
	fi
	LOADED="$name $LOADED"
	for p in "$@"; do
		f=/sys/module/$name/parameters/${{p%%=*}}
		[ -r "$f" ] && m "param $name.${{p%%=*}} $(cat "$f")"
	done
	return 0
}}
unload() {{
	ret=0
	for name in $LOADED; do
		out=$(rmmod "$name" 2>&1)
		rc=$?
		if [ $rc -ne 0 ]; then
			[ -n "$out" ] && echo "$out"
			m "rmmod-fail $name rc=$rc msg=$(echo "$out" | tr '\n' ' ')"
			ret=1
		fi
	done
	LOADED=
	return $ret
}}
# Try the other CPU maker's module, given as NAME FILE pairs with what it needs first (loaded
# here only if missing, removed again after), before this configuration's own vendor module is
# in: the refusal a CPU without SVM/VMX gets. The modules suite reads the outcome from
# $KVMX_OTHER_VENDOR_RESULT.
other_vendor() {{
	added=
	while [ $# -gt 2 ]; do
		if [ ! -e "/sys/module/$1" ] && insmod "$2" 2>/dev/null; then
			added="$1 $added"
		fi
		shift 2
	done
	out=$(insmod "$2" 2>&1)
	rc=$?
	printf 'rc=%s\n%s\n' "$rc" "$out" >"$KVMX_OTHER_VENDOR_RESULT"
	[ $rc -eq 0 ] && rmmod "$1"
	for n in $added; do rmmod "$n"; done
	return 0
}}
wait_dev() {{
	i=0
	while [ ! -c "$1" ]; do
		i=$((i + 1))
		[ $i -gt 50 ] && return 1
		sleep 0.1
	done
}}
suite() {{
	name=$1 bin=$2
	shift 2
	m "suite-begin $name t=$(up)"
	{timeout}"$bin" --device "$KVMX_DEVICE" "$@" </dev/null
	rc=$?
	m "suite-end $name rc=$rc t=$(up)"
}}
finish() {{
	[ -x {drain} ] && {drain} || sleep 2
	poweroff -f
	sleep 3600
}}

m "boot release=$(uname -r) taint=$(cat /proc/sys/kernel/tainted) t=$(up)"
m "dmesg-begin boot"
{boot_dmesg}
m "dmesg-end boot"
"""

# Only warnings and worse from the boot log (what can hold a splat): under Bochs
# every console character costs emulated UART time, and the rest is noise.
_BOOT_DMESG = "dmesg -r -c | grep '^<[0-4]>'"


def _q(word: str) -> str:
    return shlex.quote(word)


def _config_env(config: Config) -> str:
    return (f"export KVMX_DEVICE={config.device} KVMX_IMPL={config.impl.value} "
            f"KVMX_CPU={config.cpu.value} KVMX_MMU={config.mmu.value} "
            f"KVMX_MODULE_DIR={MODULE_DIR} KVMX_OTHER_VENDOR_RESULT={OTHER_VENDOR_RESULT}")


def _load_chain(script: ConfigScript) -> str:
    calls = []
    for i, load in enumerate(script.loads):
        if script.other and i == len(script.loads) - 1:
            words = ["other_vendor"]
            for mod in script.other:
                words += [mod.name, f"{MODULE_DIR}/{mod.filename}"]
            calls.append(" ".join(_q(w) for w in words))
        words = ["load", load.module.name, f"{MODULE_DIR}/{load.module.filename}", *load.params]
        calls.append(" ".join(_q(w) for w in words))
    return " &&\n\t".join(calls) if calls else "true"


def _suite_call(name: str, args: Sequence[str]) -> str:
    return " ".join(["suite", _q(name), f"{SUITE_DIR}/{_q(name)}", *(_q(a) for a in args)])


def _config_block(script: ConfigScript, suites: Sequence[str],
                  suite_args: Mapping[str, Sequence[str]]) -> str:
    cfg = script.config
    runs = "\n".join(f"\t\t{_suite_call(s, suite_args.get(s, ()))}" for s in suites) or "\t\t:"
    return f"""
# ---- {cfg.name}
m "cfg-begin {cfg.name} t=$(up)"
{_config_env(cfg)}
if {_load_chain(script)}; then
	if wait_dev {cfg.device}; then
{runs}
	else
		m "dev-missing {cfg.device}"
	fi
fi
unload
m "taint $(cat /proc/sys/kernel/tainted)"
m "dmesg-begin {cfg.name}"
dmesg -c
m "dmesg-end {cfg.name}"
m "cfg-end {cfg.name} t=$(up)"
"""


def render_init(
    title: str,
    configs: Sequence[ConfigScript],
    suites: Sequence[str],
    suite_timeout: int | None = None,
    suite_args: Mapping[str, Sequence[str]] = {},
) -> str:
    """The batch /init: every configuration in order, then the final marker and poweroff.

    `suite_args` are extra arguments of a suite, after `--device`."""
    text = _PRELUDE.format(
        title=title,
        timeout=f"timeout -s KILL {int(suite_timeout)} " if suite_timeout else "",
        drain=DRAIN,
        boot_dmesg=_BOOT_DMESG,
    )
    for script in configs:
        text += _config_block(script, suites, suite_args)
    text += '\nm "done t=$(up)"\nfinish\n'
    return text


def render_shell_init(title: str, config: ConfigScript | None) -> str:
    """The interactive /init: optionally load one configuration, then a shell on the console."""
    text = _PRELUDE.format(title=title, timeout="", drain=DRAIN, boot_dmesg="true")
    if config is not None:
        cfg = config.config
        text += f"""
{_config_env(cfg)}
if {_load_chain(config)}; then
	wait_dev {cfg.device} || echo "testhost: {cfg.device} did not appear"
fi
"""
    what = config.config.name if config is not None else "no modules loaded"
    text += f"""
echo "testhost shell ({what}); suites are in {SUITE_DIR}; modules in {MODULE_DIR}."
echo "End with 'poweroff -f' here, or Ctrl-] on the host."
setsid cttyhack sh -l
finish
"""
    return text


_PROFILE = """export PATH=/sbin:/bin:/usr/sbin:/usr/bin
PS1='testhost:\\w# '
cd /suites 2>/dev/null
"""


# ---------------------------------------------------------------- the archive

def drain_helper(cache: Path) -> bytes | None:
    """th-drain, compiled static once per source version; None if gcc cannot build it."""
    source = DRAIN_SOURCE.read_bytes()
    binary = cache / f"th-drain-{hashlib.sha256(source).hexdigest()[:12]}"
    if not binary.exists():
        if shutil.which("gcc") is None:
            return None
        cache.mkdir(parents=True, exist_ok=True)
        # Boots of one matrix prepare in parallel: each compiles to a name of its own and the
        # rename publishes whichever finishes first (the bytes are the same).
        fd, name = tempfile.mkstemp(prefix=binary.name + ".", suffix=".tmp", dir=cache)
        os.close(fd)
        tmp = Path(name)
        try:
            proc = subprocess.run(
                ["gcc", "-static", "-Os", "-s", "-o", str(tmp), str(DRAIN_SOURCE)],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                return None
            tmp.replace(binary)
        finally:
            tmp.unlink(missing_ok=True)
    return binary.read_bytes()


def busybox_applets() -> list[str]:
    if not BUSYBOX.exists():
        raise HarnessError(f"{BUSYBOX} is missing: install package busybox-static")
    out = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def build_archive(
    init: str,
    modules: Sequence[Module],
    suites: Mapping[str, Path],
    drain: bytes | None,
) -> bytes:
    """The gzip'd newc initramfs."""
    cpio = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc",
              "root", MODULE_DIR, SUITE_DIR):
        cpio.directory(d)
    cpio.chardev("/dev/console", 5, 1)
    cpio.file("/bin/busybox", BUSYBOX.read_bytes(), 0o755)
    for applet in busybox_applets():
        if applet.lstrip("/") not in cpio.names():
            cpio.symlink(applet, "/bin/busybox")
    if drain is not None:
        cpio.file(DRAIN, drain, 0o755)
    cpio.file("/etc/profile", _PROFILE.encode())
    seen: set[str] = set()
    for mod in modules:
        if mod.filename in seen:
            continue
        seen.add(mod.filename)
        try:
            data = read_module(mod.source)
        except (OSError, subprocess.CalledProcessError, ValueError) as err:
            raise HarnessError(f"cannot read {mod.source}: {err}") from err
        cpio.file(f"{MODULE_DIR}/{mod.filename}", data)
    for name, path in suites.items():
        cpio.file(f"{SUITE_DIR}/{name}", path.read_bytes(), 0o755)
    cpio.file("/init", init.encode(), 0o755)
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)
