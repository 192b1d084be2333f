"""Start an emulator, follow its console live, enforce the timeout, kill by PID.

Every emulator runs in its own session with stdin from /dev/null; on timeout or
interruption the runner signals that process and its descendants, each by PID
(TERM, then KILL: Bochs catches TERM and keeps running).
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .console import MARKER
from .hosts import Launch
from .layout import HarnessError

_live: dict[int, subprocess.Popen[bytes]] = {}
_live_lock = threading.Lock()
_stopping = threading.Event()
DONE_MARKER = f"{MARKER} done"


@dataclass(frozen=True)
class EmulatorRun:
    argv: tuple[str, ...]
    exit_code: int | None
    timed_out: bool
    done_seen: bool
    killed_after_done: bool
    wall_seconds: float
    timeout: float


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    tree = _children()
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pgid: int, pids: list[int], sig: int) -> None:
    """Signal the emulator's own process group and each listed PID (some left the group)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def kill_tree(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """TERM the emulator, its process group and its descendants, then KILL what is left.

    The emulator was started as the leader of a new session, so its process
    group id is its PID: that group holds only processes this runner started.
    """
    pids = descendants(proc.pid) + [proc.pid] if proc.poll() is None else []
    if not pids:
        return
    _signal(proc.pid, pids, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    alive = [p for p in pids + descendants(proc.pid) if _exists(p)]
    _signal(proc.pid, alive, signal.SIGKILL)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def stop() -> None:
    """Interrupted: start no more emulators and kill every one this process started."""
    _stopping.set()
    with _live_lock:
        procs = list(_live.values())
    for proc in procs:
        kill_tree(proc, grace=1.0)


def _start(
    launch: Launch, cwd: Path, output: Path, stdin: int | None = None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(dict(launch.env))
    if _stopping.is_set():
        raise HarnessError("interrupted")
    with open(output, "wb") as out:
        try:
            proc = subprocess.Popen(
                launch.argv, stdin=subprocess.DEVNULL if stdin is None else stdin,
                stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                start_new_session=True,
            )
        except OSError as err:
            raise HarnessError(f"cannot start {launch.argv[0]}: {err}") from err
    with _live_lock:
        _live[proc.pid] = proc
    return proc


def _forget(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.pop(proc.pid, None)


class ScreenDrain:
    """Read and discard what an emulator draws on a pty it opened itself.

    Debian's Bochs is built with its debugger, and then its `term` display
    draws the VGA screen into a pty of its own, announced on stderr for a user
    to attach to.  Nobody attaches.  Once the kernel's buffers for that pty
    are full (tens of KiB: a text screen with a blinking cursor fills them
    in 10-20 minutes), Bochs blocks in write(2); the guest stops dead with no
    further console output and the boot idles until its timeout.  Reading the
    pty for the whole run keeps Bochs going; raw mode also stops the pty from
    echoing the screen back into Bochs as keystrokes for the guest.
    """

    def __init__(self, pattern: str, output: Path, pid: int) -> None:
        self._pattern = re.compile(pattern)
        self._output = output
        self._pid = pid
        self._stop = threading.Event()
        self.path: str | None = None
        self.drained = 0
        self._thread = threading.Thread(target=self._run, name="screen-drain", daemon=True)
        self._thread.start()

    def _find(self) -> str | None:
        try:
            with open(self._output, "rb") as f:
                head = f.read(1 << 16).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        m = self._pattern.search(head)
        return m.group(1) if m else None

    def _owned(self, path: str) -> bool:
        """Whether the emulator still holds the master of `path` (so that no one else has it)."""
        index = path.rsplit("/", 1)[-1]
        fds = Path(f"/proc/{self._pid}/fd")
        try:
            entries = list(fds.iterdir())
        except OSError:
            return False
        for entry in entries:
            try:
                if os.readlink(entry) != "/dev/ptmx":
                    continue
                info = Path(f"/proc/{self._pid}/fdinfo/{entry.name}").read_text()
            except OSError:
                continue
            if f"tty-index:\t{index}\n" in info or "tty-index:" not in info:
                return True
        return False

    def _open(self) -> int | None:
        path = self._find()
        if path is None or not self._owned(path):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            # Raw: a full buffer without a newline is readable (canonical mode would wait for
            # one forever), and no echo.  TCSANOW: flushing here would strand the kernel's
            # queued input without waking the reader.
            tty.setraw(fd, termios.TCSANOW)
        except termios.error:
            pass
        self.path = path
        return fd

    def _run(self) -> None:
        fd: int | None = None
        try:
            while not self._stop.is_set():
                if fd is None:
                    fd = self._open()
                    if fd is None:
                        self._stop.wait(0.1)
                    continue
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    continue
                try:
                    data = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    return
                self.drained += len(data)
        except OSError:
            return  # the pty is gone (EIO once the emulator closed its side)
        finally:
            if fd is not None:
                os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _drain_screen(
    launch: Launch, output: Path, proc: subprocess.Popen[bytes]
) -> ScreenDrain | None:
    return ScreenDrain(launch.screen_pty, output, proc.pid) if launch.screen_pty else None


class ConsoleTail:
    """Complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def lines(self, final: bool = False) -> Iterator[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        self._offset += len(data)
        self._partial += data
        *complete, self._partial = self._partial.split(b"\n")
        if final and self._partial:
            complete.append(self._partial)
            self._partial = b""
        for raw in complete:
            yield raw.decode("utf-8", errors="replace").replace("\r", "").replace("\x00", "")


def run_batch(
    launch: Launch,
    console: Path,
    output: Path,
    cwd: Path,
    timeout: float,
    exit_grace: float,
    on_line: Callable[[str], None],
) -> EmulatorRun:
    """Run one boot to its end; `on_line` gets each console line as it appears."""
    start = time.monotonic()
    deadline = start + timeout
    done_seen = False
    timed_out = False
    killed_after_done = False
    tail = ConsoleTail(console)
    proc = _start(launch, cwd, output)
    screen = _drain_screen(launch, output, proc)
    try:
        while True:
            for line in tail.lines():
                on_line(line)
                if not done_seen and DONE_MARKER in line:
                    done_seen = True
                    deadline = min(deadline, time.monotonic() + exit_grace)
            if proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                kill_tree(proc)
                killed_after_done = done_seen
                timed_out = not done_seen
                break
            time.sleep(0.2)
        for line in tail.lines(final=True):
            on_line(line)
    finally:
        kill_tree(proc)
        _forget(proc)
        if screen is not None:
            screen.stop()
    return EmulatorRun(
        argv=launch.argv,
        exit_code=proc.returncode,
        timed_out=timed_out,
        done_seen=done_seen,
        killed_after_done=killed_after_done,
        wall_seconds=time.monotonic() - start,
        timeout=timeout,
    )


ESCAPE = b"\x1d"  # Ctrl-]


def run_interactive(
    prepare: Callable[[str], Launch], cwd: Path, output: Path, log: Path, timeout: float
) -> int:
    """Bridge the user's terminal to the guest console through a pty; Ctrl-] ends it."""
    master, slave = os.openpty()
    tty.setraw(slave)
    launch = prepare(os.ttyname(slave))
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    proc = _start(launch, cwd, output)
    screen = _drain_screen(launch, output, proc)
    deadline = time.monotonic() + timeout
    inputs = [master, stdin]
    try:
        if saved is not None:
            tty.setraw(stdin)
        with open(log, "wb") as logf:
            while proc.poll() is None and time.monotonic() < deadline:
                ready, _, _ = select.select(inputs, [], [], 0.2)
                if master in ready:
                    try:
                        data = os.read(master, 4096)
                    except OSError:
                        data = b""
                    os.write(sys.stdout.fileno(), data)
                    logf.write(data)
                    logf.flush()
                if stdin in ready:
                    data = os.read(stdin, 1024)
                    if ESCAPE in data:
                        break
                    if not data:  # piped input ended: keep the console until the guest ends
                        inputs.remove(stdin)
                    os.write(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        kill_tree(proc)
        _forget(proc)
        if screen is not None:
            screen.stop()
        os.close(master)
        os.close(slave)
    print(f"\r\ntesthost: console saved to {log}", flush=True)
    return 0
