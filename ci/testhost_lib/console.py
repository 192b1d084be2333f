"""Split a test host's console log into kernel messages, marker lines and suite output.

The guest's /init (initramfs.py) frames everything with marker lines
`@@TH <event> [args] [key=value ...] [msg=free text]`.  The serial console
carries both printk output and userspace output, and a kernel message can cut
into the middle of a userspace line: the printk text goes to the kernel stream
and the two halves of the userspace line are joined again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

MARKER = "@@TH"
_MARKER = re.compile(r"@@TH (\S+)(.*)$")
# A printk line on the console, or a line of `dmesg` / `dmesg -r` output.
_KERNEL_START = re.compile(r"^(?:<\d+>)?\[\s*\d+\.\d+\] ")
_KERNEL_INSIDE = re.compile(r"\[\s*\d+\.\d{6}\] ")
_LEVEL = re.compile(r"^<\d+>")
_PANIC = re.compile(r"Kernel panic - not syncing.*")


@dataclass(frozen=True)
class Line:
    kind: str  # "kernel" or "user"
    text: str


@dataclass(frozen=True)
class Marker:
    event: str
    args: tuple[str, ...]
    fields: dict[str, str]

    def field_int(self, key: str) -> int | None:
        try:
            return int(self.fields[key])
        except (KeyError, ValueError):
            return None

    def field_float(self, key: str) -> float | None:
        try:
            return float(self.fields[key])
        except (KeyError, ValueError):
            return None


def normalize(text: str) -> list[str]:
    """Console bytes (decoded) to lines: CRLF, stray CR and NUL removed."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _joined(text: str) -> Line:
    # A rejoined `dmesg` line (it starts like a printk line) stays a kernel line.
    return Line("kernel" if _KERNEL_START.match(text) else "user", text)


def classify(lines: Iterable[str]) -> list[Line]:
    """Separate kernel messages from userspace output, rejoining cut userspace lines.

    Userspace output includes the `dmesg` dumps of /init, whose lines look like
    printk lines: a printk can cut into those too.  A line that starts like a
    printk line and holds another printk prefix further in is such a cut dump
    line, since the kernel never cuts into its own console lines.
    """
    out: list[Line] = []
    pending = ""
    for raw in lines:
        start = _KERNEL_START.match(raw)
        inside = _KERNEL_INSIDE.search(raw, start.end() if start else 1)
        if inside:
            pending += raw[: inside.start()]
            out.append(Line("kernel", raw[inside.start() :]))
            continue
        if start:
            out.append(Line("kernel", raw))
            continue
        out.append(_joined(pending + raw))
        pending = ""
    if pending:
        out.append(_joined(pending))
    return out


def strip_level(line: str) -> str:
    """`<4>[ 1.0] text` (dmesg -r) to `[ 1.0] text`."""
    return _LEVEL.sub("", line, count=1)


def parse_marker(text: str) -> Marker | None:
    m = _MARKER.search(text)
    if not m:
        return None
    rest = m.group(2).strip()
    message = ""
    at = rest.find("msg=")
    if at >= 0 and (at == 0 or rest[at - 1] == " "):
        message = rest[at + 4 :].strip()
        rest = rest[:at]
    args: list[str] = []
    fields: dict[str, str] = {}
    for token in rest.split():
        key, eq, value = token.partition("=")
        if eq:
            fields[key] = value
        else:
            args.append(token)
    if at >= 0:
        fields["msg"] = message
    return Marker(m.group(1), tuple(args), fields)


@dataclass
class SuiteRun:
    name: str
    lines: list[str] = field(default_factory=list)  # userspace output only
    exit_code: int | None = None  # None: the end marker never came
    t_begin: float | None = None
    t_end: float | None = None


@dataclass
class ConfigRun:
    name: str
    console: list[str] = field(default_factory=list)  # raw slice, markers included
    kernel: list[str] = field(default_factory=list)  # printk lines outside the dmesg dump
    suites: list[SuiteRun] = field(default_factory=list)
    load_failures: list[str] = field(default_factory=list)
    rmmod_failures: list[str] = field(default_factory=list)
    device_missing: str | None = None
    taint: int | None = None
    params: dict[str, str] = field(default_factory=dict)  # "kvm_amd.npt" -> "Y"
    dmesg: list[str] | None = None
    ended: bool = False
    t_begin: float | None = None
    t_end: float | None = None


@dataclass
class Transcript:
    release: str | None = None
    boot_taint: int | None = None
    boot_dmesg: list[str] = field(default_factory=list)
    boot_kernel: list[str] = field(default_factory=list)  # printk before the first config
    tail_kernel: list[str] = field(default_factory=list)  # printk after the last config
    configs: dict[str, ConfigRun] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    done: bool = False
    t_done: float | None = None
    panic: str | None = None
    lines: int = 0  # console lines seen at all

    @property
    def boot_seen(self) -> bool:
        return self.boot_taint is not None


def parse_console(raw_lines: Iterable[str]) -> Transcript:
    """Build the transcript of one boot from its console lines."""
    tr = Transcript()
    config: ConfigRun | None = None
    suite: SuiteRun | None = None
    dump: list[str] | None = None  # the dmesg section being read
    # Console printk lines seen during a dump.  A `dmesg -r` dump's own lines carry
    # `<level>`; when it has any, the level-less kernel lines in it were the console's.
    dump_printk: list[tuple[int, str, list[str]]] = []
    dump_levels = False

    def end_dump() -> None:
        if dump is not None and dump_levels:
            for index, _, _ in reversed(dump_printk):
                del dump[index]
            for _, text, target in dump_printk:
                target.append(text)
        dump_printk.clear()

    for line in classify(raw_lines):
        tr.lines += 1
        if config is not None:
            config.console.append(line.text)
        if line.kind == "kernel" and tr.panic is None:
            if found := _PANIC.search(line.text):
                tr.panic = found.group(0)
        marker = parse_marker(line.text) if line.kind == "user" else None
        if marker is None:
            target = config.kernel if config is not None else (
                tr.tail_kernel if tr.order else tr.boot_kernel
            )
            if dump is not None:
                if _LEVEL.match(line.text):
                    dump_levels = True
                elif line.kind == "kernel":
                    dump_printk.append((len(dump), line.text, target))
                dump.append(strip_level(line.text))
            elif line.kind == "kernel":
                target.append(line.text)
            elif suite is not None:
                suite.lines.append(line.text)
            continue
        event, args = marker.event, marker.args
        if event == "boot":
            tr.release = marker.fields.get("release")
            tr.boot_taint = marker.field_int("taint")
        elif event == "dmesg-begin":
            end_dump()
            dump = []
            dump_levels = False
            if config is not None and args and args[0] == config.name:
                config.dmesg = dump
            elif config is None:
                tr.boot_dmesg = dump
        elif event == "dmesg-end":
            end_dump()
            dump = None
        elif event == "cfg-begin" and args:
            config = ConfigRun(args[0], console=[line.text], t_begin=marker.field_float("t"))
            tr.configs[config.name] = config
            tr.order.append(config.name)
            suite = None
        elif config is None:
            if event == "done":
                tr.done = True
                tr.t_done = marker.field_float("t")
        elif event == "suite-begin" and args:
            suite = SuiteRun(args[0], t_begin=marker.field_float("t"))
            config.suites.append(suite)
        elif event == "suite-end":
            if suite is not None:
                suite.exit_code = marker.field_int("rc")
                suite.t_end = marker.field_float("t")
            suite = None
        elif event == "load-fail":
            name = args[0] if args else "?"
            config.load_failures.append(
                f"insmod {name} failed (exit {marker.fields.get('rc', '?')}): "
                f"{marker.fields.get('msg', '')}".rstrip(": ")
            )
        elif event == "rmmod-fail":
            name = args[0] if args else "?"
            config.rmmod_failures.append(
                f"rmmod {name} failed (exit {marker.fields.get('rc', '?')}): "
                f"{marker.fields.get('msg', '')}".rstrip(": ")
            )
        elif event == "dev-missing":
            config.device_missing = args[0] if args else "?"
        elif event == "param" and len(args) >= 2:
            config.params[args[0]] = " ".join(args[1:])
        elif event == "taint" and args:
            try:
                config.taint = int(args[0])
            except ValueError:
                pass
        elif event == "cfg-end":
            config.ended = True
            config.t_end = marker.field_float("t")
            config = None
            suite = None
    end_dump()
    return tr
