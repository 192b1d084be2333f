"""Static checks run as tests: mypy --strict and simple style rules."""

from __future__ import annotations

import io
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

CI = Path(__file__).resolve().parents[1]
SOURCES = sorted(CI.glob("testhost_lib/*.py")) + sorted(CI.glob("tests/*.py")) + [CI / "testhost"]


def test_mypy_strict() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "testhost_lib", "testhost", *[str(p.relative_to(CI)) for p in CI.glob("tests/*.py")]],
        cwd=CI, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _string_lines(text: str) -> set[int]:
    """Line numbers covered by string literals (the /init templates hold tabs)."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(CI)))
def test_style(path: Path) -> None:
    text = path.read_text()
    limit = 100 if path.parent.name == "testhost_lib" else 110  # tests quote long log lines
    assert text.endswith("\n"), "missing final newline"
    strings = _string_lines(text)
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{path.name}:{number}"
        assert "\t" not in line or number in strings, f"{where}: tab outside a string"
        assert line == line.rstrip(), f"{where}: trailing whitespace"
        assert len(line) <= limit, f"{where}: {len(line)} columns"
    compile(text, str(path), "exec")


def test_entry_script_is_executable() -> None:
    entry = CI / "testhost"
    assert entry.stat().st_mode & 0o111
    assert entry.read_text().startswith("#!/usr/bin/python3\n")
