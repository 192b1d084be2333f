"""Kernel modules for the test host: find them, resolve dependencies, read them.

Dependencies come from `modules.dep` when the kernel tree has one, otherwise
from each module's own `.modinfo` `depends=` list (what depmod would read).
Compressed modules (`.ko.xz`, `.ko.zst`, `.ko.gz`) are decompressed here:
busybox insmod cannot.
"""

from __future__ import annotations

import gzip
import lzma
import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

_COMPRESSED = (".xz", ".zst", ".gz")


class ModuleError(Exception):
    """A module or dependency cannot be found or read."""


def module_name(path: str) -> str:
    """`kernel/arch/x86/kvm/kvm-amd.ko.xz` -> `kvm_amd` (what rmmod and /sys/module use)."""
    base = os.path.basename(path)
    for suffix in _COMPRESSED:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if base.endswith(".ko"):
        base = base[:-3]
    return base.replace("-", "_")


def read_module(path: Path) -> bytes:
    """The module's ELF bytes, decompressing if needed (prefers an existing plain `.ko`)."""
    text = str(path)
    for suffix in _COMPRESSED:
        if text.endswith(suffix):
            plain = Path(text[: -len(suffix)])
            if plain.exists():
                return plain.read_bytes()
            data = path.read_bytes()
            if suffix == ".xz":
                return lzma.decompress(data)
            if suffix == ".gz":
                return gzip.decompress(data)
            return subprocess.run(
                ["zstd", "-dc", str(path)], check=True, capture_output=True
            ).stdout
    return path.read_bytes()


def elf_section(data: bytes, wanted: str) -> bytes | None:
    """Contents of one section of a little-endian ELF64 file, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if shoff == 0 or shstrndx >= shnum:
        return None

    def header(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        name, = struct.unpack_from("<I", data, base)
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name, offset, size

    _, str_off, str_size = header(shstrndx)
    names = data[str_off : str_off + str_size]
    for index in range(shnum):
        name_off, offset, size = header(index)
        end = names.find(b"\0", name_off)
        if names[name_off:end].decode(errors="replace") == wanted:
            return data[offset : offset + size]
    return None


def modinfo(data: bytes) -> dict[str, str]:
    """`.modinfo` key=value pairs (the last value wins for repeated keys)."""
    section = elf_section(data, ".modinfo") or b""
    info: dict[str, str] = {}
    for entry in section.split(b"\0"):
        key, eq, value = entry.decode(errors="replace").partition("=")
        if eq:
            info[key] = value
    return info


def is_static_elf(data: bytes) -> bool | None:
    """True when an ELF64 executable has no PT_INTERP; None if it is not ELF64."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        p_type, = struct.unpack_from("<I", data, phoff + index * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


@dataclass(frozen=True)
class Module:
    """One module to put into the initramfs and load there."""

    name: str  # kvm_amd
    filename: str  # kvm-amd.ko
    source: Path


class ModuleTree:
    """The modules of one kernel: build/kernels/<K>/root/lib/modules/<release>/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._paths: dict[str, str] = {}  # module name -> path relative to root
        self._deps: dict[str, list[str]] | None = None
        dep_file = root / "modules.dep"
        if dep_file.exists():
            self._deps = {}
            for line in dep_file.read_text().splitlines():
                target, colon, rest = line.partition(":")
                if not colon:
                    continue
                name = module_name(target)
                self._paths[name] = target
                self._deps[name] = [module_name(d) for d in rest.split()]
        else:
            for dirpath, _dirs, files in os.walk(root):
                for file in files:
                    if ".ko" not in file:
                        continue
                    rel = os.path.relpath(os.path.join(dirpath, file), root)
                    name = module_name(rel)
                    # Prefer the plain .ko that scripts/kernels.sh decompressed.
                    if name not in self._paths or file.endswith(".ko"):
                        self._paths[name] = rel

    def module(self, name: str) -> Module:
        key = name.replace("-", "_")
        rel = self._paths.get(key)
        if rel is None:
            raise ModuleError(f"module {name} not found under {self.root}")
        path = self.root / rel
        if not path.exists():
            for suffix in _COMPRESSED:
                if rel.endswith(suffix) and (self.root / rel[: -len(suffix)]).exists():
                    path = self.root / rel[: -len(suffix)]
                    break
        if not path.exists():
            raise ModuleError(f"{path} is listed but missing")
        filename = os.path.basename(rel)
        for suffix in _COMPRESSED:
            if filename.endswith(suffix):
                filename = filename[: -len(suffix)]
        return Module(key, filename, path)

    def depends(self, name: str) -> list[str]:
        key = name.replace("-", "_")
        if self._deps is not None:
            return list(self._deps.get(key, []))
        return depends_of(read_module(self.module(key).source))

    def load_order(self, name: str) -> list[Module]:
        """`name` and everything it needs, dependencies first."""
        order: list[Module] = []
        seen: set[str] = set()

        def visit(mod: str, chain: tuple[str, ...]) -> None:
            if mod in seen:
                return
            if mod in chain:
                raise ModuleError("dependency loop: " + " -> ".join(chain + (mod,)))
            for dep in self.depends(mod):
                visit(dep, chain + (mod,))
            seen.add(mod)
            order.append(self.module(mod))

        visit(name.replace("-", "_"), ())
        return order


def depends_of(data: bytes) -> list[str]:
    deps = modinfo(data).get("depends", "")
    return [d.replace("-", "_") for d in deps.split(",") if d]
