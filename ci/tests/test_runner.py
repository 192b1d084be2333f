"""Emulator process handling with stand-in emulators: streaming, timeout, kill by PID."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testhost_lib.hosts import BOCHS_SCREEN_PTY, Launch
from testhost_lib.layout import HarnessError
from testhost_lib.runner import ConsoleTail, ScreenDrain, run_batch


def fake_emulator(tmp_path: Path, body: str) -> tuple[Launch, Path]:
    console = tmp_path / "console.log"
    script = tmp_path / "emu.sh"
    script.write_text(f"#!/bin/sh\nCONSOLE={console}\n{body}\n")
    script.chmod(0o755)
    return Launch((str(script),)), console


def run(tmp_path: Path, body: str, timeout: float = 10.0, grace: float = 5.0) -> tuple[list[str], object]:
    launch, console = fake_emulator(tmp_path, body)
    lines: list[str] = []
    result = run_batch(launch, console, tmp_path / "emu.out", tmp_path, timeout, grace, lines.append)
    return lines, result


def alive(pid: int) -> bool:
    """Still running (not gone, not a zombie) one second from now."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.05)
    return True


def test_streams_lines_and_sees_final_marker(tmp_path: Path) -> None:
    lines, result = run(tmp_path, 'printf "a\\r\\nb\\n@@TH done t=1\\ntail" >$CONSOLE')
    assert lines == ["a", "b", "@@TH done t=1", "tail"]
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert result.done_seen and not result.timed_out  # type: ignore[attr-defined]


def test_timeout_kills_emulator_and_children(tmp_path: Path) -> None:
    body = 'echo booting >$CONSOLE; sleep 1000 & echo $! >child.pid; wait'
    start = time.monotonic()
    lines, result = run(tmp_path, body, timeout=1.0)
    assert time.monotonic() - start < 10
    assert result.timed_out and not result.done_seen  # type: ignore[attr-defined]
    assert lines == ["booting"]
    child = int((tmp_path / "child.pid").read_text())
    assert not alive(child)


def test_term_ignoring_emulator_is_killed(tmp_path: Path) -> None:
    # Bochs catches SIGTERM and keeps going: the runner must escalate to SIGKILL.
    body = "trap '' TERM; echo $$ >self.pid; while :; do sleep 0.1; done"
    _, result = run(tmp_path, body, timeout=1.0)
    assert result.timed_out  # type: ignore[attr-defined]
    assert not alive(int((tmp_path / "self.pid").read_text()))


def test_hang_after_final_marker_is_not_a_timeout(tmp_path: Path) -> None:
    body = 'echo "@@TH done t=9" >$CONSOLE; exec sleep 1000'
    _, result = run(tmp_path, body, timeout=60.0, grace=0.5)
    assert result.done_seen and result.killed_after_done  # type: ignore[attr-defined]
    assert not result.timed_out  # type: ignore[attr-defined]
    assert result.wall_seconds < 30  # type: ignore[attr-defined]


def test_missing_emulator_is_harness_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="cannot start"):
        run_batch(Launch(("/nonexistent/qemu",)), tmp_path / "c", tmp_path / "o", tmp_path,
                  1.0, 1.0, print)


def test_console_tail_partial_lines(tmp_path: Path) -> None:
    path = tmp_path / "c"
    tail = ConsoleTail(path)
    assert list(tail.lines()) == []
    path.write_bytes(b"one\ntw")
    assert list(tail.lines()) == ["one"]
    with open(path, "ab") as f:
        f.write(b"o\n\xffthree")
    assert list(tail.lines()) == ["two"]
    assert list(tail.lines(final=True)) == ["\ufffdthree"]


# Bochs' term display as Debian builds it (gui/term.cc, BX_DEBUGGER_TERM): it opens a pty, says so
# on stderr, and draws the screen into it with blocking writes. 300 KB is several times what the
# kernel buffers for a pty nobody reads, so without a reader this stand-in blocks for good.
_SCREEN_EMULATOR = r"""
import os, sys
master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
import fcntl, struct
fcntl.ioctl(master, 0x40045431, struct.pack("i", 0))  # TIOCSPTLCK: unlock the slave
n = struct.unpack("I", fcntl.ioctl(master, 0x80045430, bytes(4)))[0]  # TIOCGPTN
sys.stderr.write('\nBochs connected to screen "/dev/pts/%d"\n' % n)
sys.stderr.flush()
screen = b"\x1b[H" + b"x" * 2000
for _ in range(150):
    os.write(master, screen)
with open(sys.argv[1], "w") as console:
    console.write("@@TH done t=1\n")
"""


def test_bochs_screen_pattern_matches_its_message() -> None:
    # The exact line Bochs 2.7 prints (gui/term.cc) when its term display opens its pty.
    m = re.search(BOCHS_SCREEN_PTY, '\nBochs connected to screen "/dev/pts/17"\n')
    assert m and m.group(1) == "/dev/pts/17"


@pytest.mark.skipif(not Path("/dev/ptmx").exists(), reason="no /dev/ptmx")
def test_emulator_screen_pty_is_drained(tmp_path: Path) -> None:
    # Regression: Bochs stopped dead, idle and silent, once its unread screen pty filled up.
    script = tmp_path / "screen_emu.py"
    script.write_text(_SCREEN_EMULATOR)
    console = tmp_path / "console.log"
    launch = Launch((sys.executable, str(script), str(console)), screen_pty=BOCHS_SCREEN_PTY)
    lines: list[str] = []
    result = run_batch(launch, console, tmp_path / "emu.out", tmp_path, 20.0, 5.0, lines.append)
    assert not result.timed_out, "the emulator blocked writing its screen"
    assert result.done_seen and lines == ["@@TH done t=1"]


@pytest.mark.skipif(not Path("/dev/ptmx").exists(), reason="no /dev/ptmx")
def test_screen_drain_reads_only_the_emulators_own_pty(tmp_path: Path) -> None:
    # A pty named in the output but not held by the emulator (it exited, the number went to
    # someone else's terminal) is never opened, let alone put into raw mode.
    master, slave = os.openpty()
    try:
        out = tmp_path / "emu.out"
        out.write_text(f'\nBochs connected to screen "{os.ttyname(slave)}"\n')
        other = subprocess.Popen(["sleep", "30"])
        try:
            stranger = ScreenDrain(BOCHS_SCREEN_PTY, out, other.pid)
            time.sleep(0.5)
            stranger.stop()
            assert stranger.path is None
        finally:
            other.kill()
            other.wait()
        own = ScreenDrain(BOCHS_SCREEN_PTY, out, os.getpid())
        deadline = time.monotonic() + 5
        while own.path is None and time.monotonic() < deadline:
            time.sleep(0.05)
        own.stop()
        assert own.path == os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)
