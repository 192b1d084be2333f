"""Matrix cells and their grouping into boots."""

from __future__ import annotations

from testhost_lib.hosts import HOSTS
from testhost_lib.model import Config, Cpu, Impl, Mmu, cross, group_boots, matrix_cells


def test_matrix_cells() -> None:
    cells = matrix_cells()
    assert len(cells) == 16
    names = {c.name for c in cells}
    assert "amd-6.12-kvmx-shadow" in names and "intel-6.1-kvm-tdp" in names
    assert "intel-6.12-kvmx-shadow" in names


def test_matrix_filters() -> None:
    assert {c.cpu for c in matrix_cells(only_cpu=Cpu.INTEL)} == {Cpu.INTEL}
    assert len(matrix_cells(only_kernel="6.12")) == 8
    assert len(matrix_cells(only_cpu=Cpu.INTEL, only_kernel="6.12")) == 4


def test_group_boots_one_boot_per_kernel_and_cpu() -> None:
    boots = group_boots(matrix_cells(), ["smoke"])
    assert [b.name for b in boots] == ["boot-amd-6.1", "boot-amd-6.12", "boot-intel-6.1",
                                       "boot-intel-6.12"]
    for boot in boots:
        assert len(boot.configs) == 4
        assert {(c.kernel, c.cpu) for c in boot.configs} == {(boot.kernel, boot.cpu)}
        # Reference first: a kvmx crash cannot hide the in-tree KVM results.
        assert [c.impl for c in boot.configs] == [Impl.KVM, Impl.KVM, Impl.KVMX, Impl.KVMX]
        assert boot.dir_name == boot.name
        assert boot.suites == ("smoke",)


def test_cross_product_order_and_dedupe() -> None:
    configs = cross("6.1", Cpu.AMD, [Impl.KVMX, Impl.KVM], [Mmu.TDP, Mmu.SHADOW])
    assert [c.name for c in configs] == [
        "amd-6.1-kvmx-tdp", "amd-6.1-kvmx-shadow", "amd-6.1-kvm-tdp", "amd-6.1-kvm-shadow"]
    boots = group_boots(configs + configs[:1], ["a", "b"])
    assert len(boots) == 1 and len(boots[0].configs) == 4


def test_single_config_boot_uses_config_dir() -> None:
    (boot,) = group_boots([Config("6.1", Cpu.AMD, Impl.KVMX, Mmu.TDP)], ["smoke"])
    assert boot.dir_name == "amd-6.1-kvmx-tdp"
    assert boot.configs[0].device == "/dev/kvmx"


def test_bochs_scheduled_first_and_timeouts_scale() -> None:
    qemu, bochs = HOSTS[Cpu.AMD], HOSTS[Cpu.INTEL]
    assert bochs.expected(4, 1) > qemu.expected(4, 1)
    assert qemu.timeout(4, 2) > qemu.timeout(1, 1)
    assert bochs.timeout(1, 1) > qemu.timeout(1, 1)
    assert "mitigations=off" in bochs.cmdline()
    assert qemu.cmdline(("foo=1",)) == "console=ttyS0 quiet panic=-1 foo=1"
