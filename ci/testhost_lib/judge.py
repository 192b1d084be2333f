"""Judge a test host's kernel log: splats and taint.

Any splat fails a run.  The only exceptions are entries of BOOT_NOISE: exact,
known warnings the emulated CPU provokes during boot, before any module of
ours or of KVM is loaded.  Each is matched as one whole splat block (from
`cut here` to `end trace`), for one kernel line and one host kind only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class SplatPattern:
    kind: str
    regex: re.Pattern[str]


def _p(kind: str, regex: str) -> SplatPattern:
    return SplatPattern(kind, re.compile(regex))


# Checked in order; a line is reported under the first kind that matches.
PATTERNS: tuple[SplatPattern, ...] = (
    _p("panic", r"Kernel panic"),
    _p("oops", r"\bOops\b"),
    _p("bug", r"kernel BUG at "),
    _p("kasan", r"\bKASAN: "),
    _p("ubsan", r"\bUBSAN: "),
    _p("soft-lockup", r"soft lockup"),
    _p("hard-lockup", r"hard LOCKUP"),
    _p("rcu-stall", r"rcu: INFO: |detected stalls on CPUs|self-detected stall"),
    _p("lockdep", r"possible recursive locking|circular locking|inconsistent lock state"
       r"|suspicious RCU usage|lock held when returning to user space"),
    _p("refcount", r"refcount_t: "),
    _p("list-corruption", r"list_(?:add|del) corruption"),
    _p("gpf", r"general protection fault"),
    _p("bug", r"\bBUG: |\bBUG [\w.:-]+ \("),
    _p("warning", r"\bWARNING: "),
    _p("cut-here", r"\[ cut here \]"),
    _p("info", r"\bINFO: "),
    _p("hung-task", r"blocked for more than \d+ seconds"),
    _p("stack-corruption", r"stack-protector: |stack guard page was hit"),
    _p("call-trace", r"Call Trace:"),
)

_CUT_HERE = re.compile(r"\[ cut here \]")
_END_TRACE = re.compile(r"---\[ end trace [0-9a-f]+ \]---")
# A splat block is at most this many lines; longer and its tail is judged.
_MAX_BLOCK = 120


@dataclass(frozen=True)
class AllowedSplat:
    """A known boot-time splat from the emulated hardware, allowed only before any module load."""

    name: str
    kernel: str
    host: str
    warning: re.Pattern[str]
    why: str


BOOT_NOISE: tuple[AllowedSplat, ...] = (
    AllowedSplat(
        name="6.12-bochs-parse_legacy",
        kernel="6.12",
        host="bochs",
        warning=re.compile(
            r"WARNING: CPU: \d+ PID: \d+ at arch/x86/kernel/cpu/topology_common\.c:\d+ "
            r"parse_legacy\+"
        ),
        why="Bochs' CPUID topology leaves upset 6.12's parse_legacy() at boot",
    ),
)


def boot_noise(kernel: str, host: str) -> tuple[AllowedSplat, ...]:
    return tuple(a for a in BOOT_NOISE if a.kernel == kernel and a.host == host)


@dataclass(frozen=True)
class Finding:
    kind: str
    line: str
    where: str  # "dmesg", "console", "boot dmesg", ...
    allowed_by: str | None = None

    def describe(self) -> str:
        return f"{self.kind}: {self.line.strip()} ({self.where})"


def classify_line(line: str) -> str | None:
    for pattern in PATTERNS:
        if pattern.regex.search(line):
            return pattern.kind
    return None


def _allowed_ranges(
    lines: Sequence[str], allow: Sequence[AllowedSplat]
) -> list[tuple[int, int, str]]:
    ranges: list[tuple[int, int, str]] = []
    for i, line in enumerate(lines):
        for entry in allow:
            if not entry.warning.search(line):
                continue
            start = i - 1 if i > 0 and _CUT_HERE.search(lines[i - 1]) else i
            end = i
            for j in range(i + 1, min(len(lines), i + _MAX_BLOCK)):
                if _END_TRACE.search(lines[j]):
                    end = j
                    break
                if _CUT_HERE.search(lines[j]):
                    break  # the next splat starts: stop before it
            ranges.append((start, end, entry.name))
    return ranges


def find_splats(
    lines: Sequence[str], where: str, allow: Sequence[AllowedSplat] = ()
) -> list[Finding]:
    """Every splat line in `lines`; lines inside an allowed block carry allowed_by."""
    ranges = _allowed_ranges(lines, allow)
    findings: list[Finding] = []
    for i, line in enumerate(lines):
        kind = classify_line(line)
        if kind is None:
            continue
        allowed_by = next((name for lo, hi, name in ranges if lo <= i <= hi), None)
        findings.append(Finding(kind, line, where, allowed_by))
    return findings


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """Drop repeats of the same log line (printk seen on the console and again in dmesg)."""
    seen: set[str] = set()
    out: list[Finding] = []
    for f in findings:
        key = f.line.strip()
        if key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out


def failing(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.allowed_by is None]


# Taint bits, /proc/sys/kernel/tainted; see Documentation/admin-guide/tainted-kernels.rst.
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"
TAINT_OOT_MODULE = 1 << 12  # O: out-of-tree module loaded (kvmx)
TAINT_UNSIGNED_MODULE = 1 << 13  # E: unsigned module loaded (kvmx)
ALLOWED_TAINT = TAINT_OOT_MODULE | TAINT_UNSIGNED_MODULE


def taint_letters(mask: int) -> str:
    letters = []
    for bit in range(max(mask.bit_length(), 0)):
        if mask & (1 << bit):
            letters.append(TAINT_LETTERS[bit] if bit < len(TAINT_LETTERS) else f"bit{bit}")
    return "".join(letters) or "-"


def bad_taint(before: int, after: int) -> int:
    """Taint bits that appeared since `before`, other than O and E."""
    return (after & ~before) & ~ALLOWED_TAINT
