"""The kernel log judge: splat kinds, the allowed Bochs boot warning, taint."""

from __future__ import annotations

from typing import Callable

import pytest

from testhost_lib.console import Transcript, classify, normalize, parse_console
from testhost_lib.judge import (
    ALLOWED_TAINT,
    Finding,
    bad_taint,
    boot_noise,
    classify_line,
    dedupe,
    failing,
    find_splats,
    taint_letters,
)

SPLATS = [
    ("[ 1.0] Kernel panic - not syncing: Fatal exception", "panic"),
    ("[ 1.0] Oops: 0000 [#1] PREEMPT SMP NOPTI", "oops"),
    ("[ 1.0] Oops: general protection fault, probably for non-canonical address", "oops"),
    ("[ 1.0] BUG: kernel NULL pointer dereference, address: 0000000000000008", "bug"),
    ("[ 1.0] BUG: sleeping function called from invalid context at mm/slub.c:100", "bug"),
    ("[ 1.0] BUG kmalloc-64 (Tainted: G    B      OE): Poison overwritten", "bug"),
    ("[ 1.0] kernel BUG at mm/kvmx_mmu.c:321!", "bug"),
    ("[ 1.0] WARNING: CPU: 1 PID: 90 at kmod/vcpu.c:120 kvmx_vcpu_free+0x5a/0x80 [kvmx]", "warning"),
    ("[ 1.0] ------------[ cut here ]------------", "cut-here"),
    ("[ 1.0] WARNING: possible recursive locking detected", "lockdep"),
    ("[ 1.0] WARNING: possible circular locking dependency detected", "lockdep"),
    ("[ 1.0] INFO: trying to register non-static key.", "info"),
    ("[ 1.0] INFO: task smoke:88 blocked for more than 120 seconds.", "info"),
    ("[ 1.0] refcount_t: underflow; use-after-free.", "refcount"),
    ("[ 1.0] list_add corruption. prev->next should be next (ffff88800a), but was 0000.", "list-corruption"),
    ("[ 1.0] list_del corruption, ffff888003c0 ->next is LIST_POISON1 (dead000000000100)", "list-corruption"),
    ("[ 1.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [smoke:90]", "soft-lockup"),
    ("[ 1.0] Watchdog detected hard LOCKUP on cpu 1", "hard-lockup"),
    ("[ 1.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "rcu-stall"),
    ("[ 1.0] general protection fault, probably for non-canonical address 0xdead: 0000 [#1]", "gpf"),
    ("[ 1.0] Call Trace:", "call-trace"),
    ("[ 1.0] UBSAN: shift-out-of-bounds in arch-x86/emulate.c:77:3", "ubsan"),
    ("[ 1.0] BUG: KASAN: slab-use-after-free in kvmx_mmu_zap+0x10/0x20 [kvmx]", "kasan"),
]


@pytest.mark.parametrize("line,kind", SPLATS)
def test_each_splat_kind(line: str, kind: str) -> None:
    assert classify_line(line) == kind


@pytest.mark.parametrize("line", [
    "[ 4.2] kvm_amd: Nested Paging enabled",
    "[ 0.0] DEBUG: nothing wrong",
    "[ 0.4] [Firmware Bug]: TSC_DEADLINE disabled due to Errata",
    "[ 1.2] mtrr: your CPUs had inconsistent fixed MTRR settings",
    "[ 9.4] reboot: Power down",
])
def test_ordinary_lines(line: str) -> None:
    assert classify_line(line) is None


def test_bochs_612_boot_warning_allowed(transcript: Callable[[str], Transcript]) -> None:
    tr = transcript("bochs-6.12-boot-warning.console")
    findings = find_splats(tr.boot_dmesg, "boot dmesg", boot_noise("6.12", "bochs"))
    assert findings, "the golden log holds the warning"
    assert failing(findings) == []
    assert {f.allowed_by for f in findings} == {"6.12-bochs-parse_legacy"}
    kinds = {f.kind for f in findings}
    assert {"cut-here", "warning", "call-trace"} <= kinds


def _cut(text: str, inside: str, printk: str) -> str:
    """`text` with the console line `printk` printed into the middle of `inside`."""
    at = text.index(inside) + len(inside) // 2
    return text[:at] + printk + "\n" + text[at:]


def boot_findings(tr: Transcript) -> list[Finding]:
    """What results.evaluate() judges before the first configuration, Bochs on 6.12."""
    allow = boot_noise("6.12", "bochs")
    return (find_splats(tr.boot_dmesg, "boot dmesg", allow)
            + find_splats(tr.boot_kernel, "boot console", allow))


PRINTK = "[    9.412345] kvmx_amd: this Intel CPU has no SVM (AMD-V): load kvmx-intel instead"


@pytest.mark.parametrize("inside", [
    "WARNING: CPU: 0 PID: 0 at arch/x86/kernel/cpu/topology_common.c:57 parse_legacy+0x10e/0x130",
    "------------[ cut here ]------------",
    "---[ end trace 0000000000000000 ]---",
    "Call Trace:",
])
def test_bochs_612_boot_warning_allowed_with_a_console_line_in_it(
    golden: Callable[[str], str], inside: str
) -> None:
    # Regression: the boot dmesg dump is userspace output, and a printk (here one that a module
    # load prints while the dump is still going out) can cut into any of its lines.
    tr = parse_console(normalize(_cut(golden("bochs-6.12-boot-warning.console"), inside, PRINTK)))
    findings = boot_findings(tr)
    assert failing(findings) == []
    assert {"cut-here", "warning", "call-trace"} <= {f.kind for f in findings}
    assert tr.boot_kernel[-1] == PRINTK, "the console line is the console's, not the dump's"
    assert any(inside in line for line in tr.boot_dmesg), "the cut line is whole again"


def test_splat_printed_into_the_boot_warning_still_fails(golden: Callable[[str], str]) -> None:
    text = _cut(golden("bochs-6.12-boot-warning.console"), "parse_legacy+0x10e/0x130",
                "[    9.500000] BUG: kernel NULL pointer dereference, address: 0000000000000008")
    assert [f.kind for f in failing(boot_findings(parse_console(normalize(text))))] == ["bug"]


def test_cut_dmesg_line_is_rejoined() -> None:
    # As seen on the Bochs console: a dmesg dump line cut by a printk of the next module load.
    lines = classify([
        "[   11.594[   15.449176] kvmx_amd: this Intel CPU has no SVM (AMD-V): load kvmx-intel instead",
        "571] has_svm: not amd or hygon",
        "[   11.984421] has_svm: not amd or hygon",
    ])
    assert [(line.kind, line.text) for line in lines] == [
        ("kernel", "[   15.449176] kvmx_amd: this Intel CPU has no SVM (AMD-V): load kvmx-intel instead"),
        ("kernel", "[   11.594571] has_svm: not amd or hygon"),
        ("kernel", "[   11.984421] has_svm: not amd or hygon"),
    ]


def test_boot_warning_not_allowed_elsewhere(transcript: Callable[[str], Transcript]) -> None:
    tr = transcript("bochs-6.12-boot-warning.console")
    # Other kernel, other host: the allow-list does not apply.
    assert failing(find_splats(tr.boot_dmesg, "boot", boot_noise("6.1", "bochs")))
    assert failing(find_splats(tr.boot_dmesg, "boot", boot_noise("6.12", "qemu-tcg")))


def test_same_warning_after_module_load_fails(transcript: Callable[[str], Transcript]) -> None:
    tr = transcript("bochs-6.12-warning-after-load.console")
    dmesg = tr.configs["intel-6.12-kvmx-tdp"].dmesg
    assert dmesg is not None
    # Config logs are judged without the boot allow-list.
    assert {f.kind for f in failing(find_splats(dmesg, "dmesg"))} >= {"warning", "cut-here"}


def test_allowed_block_stops_at_next_splat() -> None:
    lines = [
        "[0.0] ------------[ cut here ]------------",
        "[0.0] WARNING: CPU: 0 PID: 0 at arch/x86/kernel/cpu/topology_common.c:57 parse_legacy+0x10e/0x130",
        "[0.0] Call Trace:",
        "[0.0] ---[ end trace 0000000000000000 ]---",
        "[5.0] BUG: unable to handle page fault for address: 0000000000001000",
    ]
    findings = find_splats(lines, "boot", boot_noise("6.12", "bochs"))
    assert [f.kind for f in failing(findings)] == ["bug"]


def test_dedupe_console_and_dmesg() -> None:
    line = "[ 4.5] BUG: unable to handle page fault"
    found = find_splats([line], "console") + find_splats([line], "dmesg")
    assert len(dedupe(found)) == 1


def test_taint_arithmetic() -> None:
    assert ALLOWED_TAINT == 4096 + 8192
    assert bad_taint(0, 4096 | 8192) == 0  # O and E from our modules are expected
    assert bad_taint(512, 512 | 4096) == 0  # the boot warning's W is in the baseline
    assert bad_taint(0, 512) == 512  # W after a module load
    assert bad_taint(4096, 4096 | 128 | 1) == 129  # D and P are new
    assert taint_letters(512 | 4096 | 8192) == "WOE"
    assert taint_letters(0) == "-"
    assert taint_letters(1 << 20) == "bit20"
