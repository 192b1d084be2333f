"""Command-line parsing (ci/testhost)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testhost_lib.cli import _flatten, build_parser, main
from testhost_lib import model
from testhost_lib.model import Cpu, Impl, Mmu

CI = Path(__file__).resolve().parents[1]


def parse(*argv: str) -> object:
    return build_parser().parse_args(list(argv))


def test_run_repeated_and_comma_lists() -> None:
    args = build_parser().parse_args([
        "run", "--kernel", "6.1", "--cpu", "amd", "--impl", "kvmx", "--impl", "kvm",
        "--mmu", "tdp,shadow", "--mmu", "tdp", "--suite", "smoke", "--suite", "vm,smoke"])
    assert args.kernel == "6.1" and args.cpu is Cpu.AMD
    assert _flatten(args.impl) == [Impl.KVMX, Impl.KVM]
    assert _flatten(args.mmu) == [Mmu.TDP, Mmu.SHADOW]
    assert _flatten(args.suite) == ["smoke", "vm"]
    assert args.timeout is None and not args.quiet


@pytest.mark.parametrize("argv", [
    ["run", "--kernel", "6.2", "--cpu", "amd", "--impl", "kvm", "--mmu", "tdp", "--suite", "s"],
    ["run", "--kernel", "6.1", "--cpu", "arm", "--impl", "kvm", "--mmu", "tdp", "--suite", "s"],
    ["run", "--kernel", "6.1", "--cpu", "amd", "--impl", "xen", "--mmu", "tdp", "--suite", "s"],
    ["run", "--kernel", "6.1", "--cpu", "amd", "--impl", "kvm", "--mmu", "ept", "--suite", "s"],
    ["run", "--kernel", "6.1", "--cpu", "amd", "--impl", "kvm", "--mmu", "tdp"],
    ["run", "--kernel", "6.1", "--cpu", "amd", "--impl", "kvm", "--mmu", "tdp", "--suite", "s",
     "--timeout", "-1"],
    ["matrix"],
    ["shell", "--kernel", "6.1"],
])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2


def test_matrix_options() -> None:
    args = build_parser().parse_args(
        ["matrix", "--jobs", "3", "--only-cpu", "intel", "--only-kernel", "6.1", "--suite", "smoke"])
    assert args.jobs == 3 and args.only_cpu is Cpu.INTEL and args.only_kernel == "6.1"
    assert build_parser().parse_args(["matrix", "--suite", "smoke"]).jobs == 2


def test_shell_options() -> None:
    args = build_parser().parse_args(["shell", "--kernel", "6.12", "--cpu", "intel"])
    assert args.impl is None and args.mmu is None
    args = build_parser().parse_args(
        ["shell", "--kernel", "6.1", "--cpu", "amd", "--impl", "kvmx", "--mmu", "shadow"])
    assert args.impl is Impl.KVMX and args.mmu is Mmu.SHADOW


def test_module_params_and_kernel_args() -> None:
    args = build_parser().parse_args([
        "run", "--kernel", "6.1", "--cpu", "amd", "--impl", "kvm", "--mmu", "tdp",
        "--suite", "s", "--module-param", "kvm-amd.nested=0", "--kernel-arg", "loglevel=7"])
    assert args.module_param == [("kvm_amd", "nested=0")]
    assert args.kernel_arg == ["loglevel=7"]
    with pytest.raises(SystemExit):
        parse("run", "--kernel", "6.1", "--cpu", "amd", "--impl", "kvm", "--mmu", "tdp",
              "--suite", "s", "--module-param", "nodot")


def test_empty_matrix_selection_is_harness_error(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Every cpu x kernel pair is in the matrix, so narrow it to one host first.
    monkeypatch.setattr(model, "MATRIX_HOSTS", ((Cpu.AMD, "6.1"),))
    code = main(["matrix", "--only-cpu", "intel", "--only-kernel", "6.12", "--suite", "smoke"])
    assert code == 2
    assert "no cell" in capsys.readouterr().err


def test_help_documents_exit_statuses() -> None:
    out = subprocess.run([str(CI / "testhost"), "--help"], capture_output=True, text=True,
                         check=True).stdout
    for code in range(7):
        assert f"\n  {code}  " in out
    assert "2 > 3 > 4 > 1 > 6 > 5 > 0" in out
