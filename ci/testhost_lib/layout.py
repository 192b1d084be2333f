"""Where build outputs live (docs/build-layout.md) and what builds them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .kmods import ModuleError, ModuleTree, is_static_elf, modinfo
from .model import Cpu, Impl


class HarnessError(Exception):
    """Something the run needs is missing or unusable: exit status 2."""


ROOT = Path(__file__).resolve().parents[2]
_KERNELS = "run `make kernels` (scripts/kernels.sh)"


@dataclass(frozen=True)
class Layout:
    root: Path = ROOT
    results_dir: Path | None = None  # default build/testhost (tests use their own)

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def results(self) -> Path:
        return self.results_dir or self.build / "testhost"

    def kernel_dir(self, kernel: str) -> Path:
        return self.build / "kernels" / kernel

    def release(self, kernel: str) -> str:
        path = self.kernel_dir(kernel) / "release"
        if not path.exists():
            raise HarnessError(f"{self._rel(path)} is missing: {_KERNELS}")
        return path.read_text().strip()

    def vmlinuz(self, kernel: str) -> Path:
        path = self.kernel_dir(kernel) / "vmlinuz"
        if not path.exists():
            raise HarnessError(f"{self._rel(path)} is missing: {_KERNELS}")
        return path

    def module_tree(self, kernel: str) -> ModuleTree:
        release = self.release(kernel)
        path = self.kernel_dir(kernel) / "root" / "lib" / "modules" / release
        if not path.is_dir():
            raise HarnessError(f"{self._rel(path)} is missing: {_KERNELS}")
        return ModuleTree(path)

    def kvmx_module(self, kernel: str, name: str) -> Path:
        """build/kmod/<K>/<name>.ko, checked against the kernel's release."""
        path = self.build / "kmod" / kernel / f"{name}.ko"
        if not path.exists():
            raise HarnessError(f"{self._rel(path)} is missing: run `make modules`")
        vermagic = modinfo(path.read_bytes()).get("vermagic", "").split()
        release = self.release(kernel)
        if not vermagic or vermagic[0] != release:
            built = vermagic[0] if vermagic else "an unknown kernel"
            raise HarnessError(
                f"{self._rel(path)} was built for {built}, not {release}: run `make modules`"
            )
        return path

    def suite(self, name: str) -> Path:
        """A suite binary: build/bin/selftests/<name>, else build/bin/<name>."""
        if not name or "/" in name or name.startswith("."):
            raise HarnessError(f"bad suite name {name!r}")
        for path in (self.build / "bin" / "selftests" / name, self.build / "bin" / name):
            if path.is_file():
                static = is_static_elf(path.read_bytes()[:65536])
                if static is False:
                    raise HarnessError(
                        f"{self._rel(path)} is dynamically linked: test hosts need static binaries"
                    )
                return path
        raise HarnessError(
            f"suite {name!r} not found as build/bin/selftests/{name} or build/bin/{name}: "
            "run `make userspace`"
        )

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def require_tools(tools: dict[str, str]) -> None:
    """tools: executable -> Debian package that provides it."""
    missing = [f"{exe} (package {pkg})" for exe, pkg in tools.items() if shutil.which(exe) is None]
    if missing:
        raise HarnessError("missing on this machine: " + ", ".join(missing))


def vendor_module(cpu: Cpu, impl: Impl) -> str:
    suffix = "amd" if cpu is Cpu.AMD else "intel"
    return f"kvmx-{suffix}" if impl is Impl.KVMX else f"kvm-{suffix}"


__all__ = ["HarnessError", "Layout", "ModuleError", "require_tools", "vendor_module"]
