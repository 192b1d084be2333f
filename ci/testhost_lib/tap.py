"""A TAP 13 / kselftest parser for one suite's output.

Input is the suite's console lines with kernel messages already taken out
(console.py does that).  The parser never raises on bad input: whatever is
wrong with the stream becomes a problem string, and a problem fails the suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

_VERSION = re.compile(r"^TAP version (\d+)\s*$")
_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*?))?\s*$")
_POINT = re.compile(r"^(not ok|ok)\b(?:\s+(\d+))?(?:\s*-)?\s*(.*?)\s*$")
_DIRECTIVE = re.compile(r"(?<!\\)#\s*(SKIP|TODO|XFAIL)\S*\s*(.*)$", re.IGNORECASE)
_BAIL = re.compile(r"^Bail out!\s*(.*?)\s*$")
_CLOSING = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$")

PASS = "pass"
FAIL = "fail"
SKIP = "skip"


@dataclass(frozen=True)
class TestPoint:
    number: int
    ok: bool
    description: str
    directive: str | None = None  # "SKIP", "TODO" or "XFAIL"
    reason: str = ""

    @property
    def outcome(self) -> str:
        if self.directive == "SKIP":
            return SKIP if self.ok else FAIL  # "not ok # SKIP" is still a failure
        if self.directive == "TODO" and not self.ok:
            return SKIP  # an expected failure, reported but not failing
        return PASS if self.ok else FAIL


@dataclass
class TapResult:
    points: list[TestPoint] = field(default_factory=list)
    plan: int | None = None
    plan_comment: str = ""
    version: int | None = None
    bail_out: str | None = None
    closing: tuple[int, int, int] | None = None
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for p in self.points if p.outcome == outcome)

    @property
    def passed(self) -> int:
        return self.count(PASS)

    @property
    def failed(self) -> int:
        return self.count(FAIL)

    @property
    def skipped(self) -> int:
        return self.count(SKIP)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.problems

    def failures(self) -> list[TestPoint]:
        return [p for p in self.points if p.outcome == FAIL]


def closing_line(passed: int, failed: int, skipped: int) -> str:
    """The `N passed, N failed[, N skipped]` line of build-layout.md."""
    text = f"{passed} passed, {failed} failed"
    return text + (f", {skipped} skipped" if skipped else "")


def _point(match: re.Match[str], expected: int) -> TestPoint:
    ok = match.group(1) == "ok"
    number = int(match.group(2)) if match.group(2) else expected
    rest = match.group(3)
    directive: str | None = None
    reason = ""
    found = _DIRECTIVE.search(rest)
    if found:
        directive = found.group(1).upper()
        reason = found.group(2).strip()
        rest = rest[: found.start()].rstrip()
    else:
        hash_at = rest.find(" # ")
        if hash_at >= 0:  # any other directive, e.g. kselftest's "# error"
            reason = rest[hash_at + 3 :].strip()
            rest = rest[:hash_at].rstrip()
    return TestPoint(number, ok, rest.replace("\\#", "#"), directive, reason)


def parse_tap(lines: Iterable[str]) -> TapResult:
    """Parse the top level of a TAP stream; indented (nested) lines are kept but not counted."""
    result = TapResult()
    plans = 0
    out_of_sequence = False
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if line[0] in " \t":
            result.lines.append(line)
            continue
        if m := _VERSION.match(line):
            result.version = int(m.group(1))
        elif m := _PLAN.match(line):
            plans += 1
            result.plan = int(m.group(1))
            result.plan_comment = (m.group(2) or "").strip()
        elif m := _POINT.match(line):
            point = _point(m, len(result.points) + 1)
            if point.number != len(result.points) + 1 and not out_of_sequence:
                out_of_sequence = True
                result.problems.append(
                    f"test number {point.number} out of sequence "
                    f"(expected {len(result.points) + 1})"
                )
            result.points.append(point)
        elif m := _BAIL.match(line):
            result.bail_out = m.group(1)
            result.problems.append(f"bailed out: {m.group(1) or '(no reason)'}")
        elif m := _CLOSING.match(line):
            result.closing = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
        elif not line.startswith("#"):
            continue  # not TAP: stray output of the suite
        result.lines.append(line)

    if plans > 1:
        result.problems.append(f"{plans} plans (TAP allows one)")
    if result.plan is None:
        if result.points:
            result.problems.append(f"no plan (saw {len(result.points)} tests)")
    elif result.plan != len(result.points) and result.bail_out is None:
        result.problems.append(
            f"planned {result.plan} tests but saw {len(result.points)}"
        )
    counted = (result.passed, result.failed, result.skipped)
    if result.closing is not None and result.closing != counted:
        result.problems.append(
            f"closing line says '{closing_line(*result.closing)}' "
            f"but the TAP says '{closing_line(*counted)}'"
        )
    return result
