"""Test-host configurations (cells) and how they group into boots."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Sequence

KERNELS: tuple[str, ...] = ("6.1", "6.12")


class Cpu(str, enum.Enum):
    AMD = "amd"
    INTEL = "intel"


class Impl(str, enum.Enum):
    KVMX = "kvmx"
    KVM = "kvm"


class Mmu(str, enum.Enum):
    TDP = "tdp"
    SHADOW = "shadow"


@dataclass(frozen=True)
class Config:
    """One cell of the matrix: kernel x vendor x implementation x MMU mode."""

    kernel: str
    cpu: Cpu
    impl: Impl
    mmu: Mmu

    @property
    def name(self) -> str:
        return f"{self.cpu.value}-{self.kernel}-{self.impl.value}-{self.mmu.value}"

    @property
    def device(self) -> str:
        return "/dev/kvmx" if self.impl is Impl.KVMX else "/dev/kvm"


@dataclass(frozen=True)
class BootPlan:
    """Configurations that share one boot of one kernel on one test host, in run order."""

    kernel: str
    cpu: Cpu
    configs: tuple[Config, ...]
    suites: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"boot-{self.cpu.value}-{self.kernel}"

    @property
    def dir_name(self) -> str:
        """A single-configuration boot keeps everything in the configuration's directory."""
        return self.configs[0].name if len(self.configs) == 1 else self.name


# The matrix `make test` runs: both vendors on both kernel lines. A Bochs boot with every suite
# takes 7-13 minutes here; with --jobs 2 the two run side by side, the QEMU boots after them.
MATRIX_HOSTS: tuple[tuple[Cpu, str], ...] = (
    (Cpu.AMD, "6.1"),
    (Cpu.AMD, "6.12"),
    (Cpu.INTEL, "6.1"),
    (Cpu.INTEL, "6.12"),
)
# In-tree KVM first: a kvmx crash then cannot hide the reference results of its boot.
MATRIX_IMPLS: tuple[Impl, ...] = (Impl.KVM, Impl.KVMX)
MATRIX_MMUS: tuple[Mmu, ...] = (Mmu.TDP, Mmu.SHADOW)


def cross(kernel: str, cpu: Cpu, impls: Sequence[Impl], mmus: Sequence[Mmu]) -> list[Config]:
    """Configurations of one boot: every implementation with every MMU mode."""
    return [Config(kernel, cpu, impl, mmu) for impl in impls for mmu in mmus]


def matrix_cells(only_cpu: Cpu | None = None, only_kernel: str | None = None) -> list[Config]:
    cells: list[Config] = []
    for cpu, kernel in MATRIX_HOSTS:
        if only_cpu is not None and cpu is not only_cpu:
            continue
        if only_kernel is not None and kernel != only_kernel:
            continue
        cells.extend(cross(kernel, cpu, MATRIX_IMPLS, MATRIX_MMUS))
    return cells


def group_boots(configs: Iterable[Config], suites: Sequence[str]) -> list[BootPlan]:
    """Group cells by kernel+cpu, keeping first-seen order of boots and of cells."""
    groups: dict[tuple[str, Cpu], list[Config]] = {}
    for config in configs:
        group = groups.setdefault((config.kernel, config.cpu), [])
        if config not in group:
            group.append(config)
    return [
        BootPlan(kernel, cpu, tuple(cells), tuple(suites))
        for (kernel, cpu), cells in groups.items()
    ]
