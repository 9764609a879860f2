"""Issue 8 item 1: ``benchmarks`` adds its ``bench`` command through an entry point, so
``monitor`` imports nothing of it (benchmarks import monitor, to measure it: one way only)."""

from __future__ import annotations

import ast
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

from benchmarks.run import run_bench
from monitor.cli import main as cli
from monitor.cli.exit_status import ExitStatus

MONITOR = Path(cli.__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at any depth of its code (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
    return found


def test_item1_monitor_never_imports_benchmarks() -> None:
    files = sorted(MONITOR.rglob("*.py"))
    assert len(files) > 20  # the whole package, not an empty folder
    offenders = {
        str(path.relative_to(MONITOR.parent)): sorted(
            m for m in imported_modules(path) if m == "benchmarks" or m.startswith("benchmarks.")
        )
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_item1_bench_is_registered_through_its_entry_point() -> None:
    (bench,) = [ep for ep in entry_points(group=cli.COMMANDS_GROUP) if ep.name == "bench"]
    assert bench.value == "benchmarks.run:register"
    args = cli.build_parser().parse_args(["bench", "--quick", "--only", "gate"])
    assert args.func is run_bench
    assert (args.quick, args.only) == (True, "gate")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("no_such_package.cli:register", "ModuleNotFoundError"),
        ("sim.cli:add_sim_parser", "ArgumentError"),  # a second `sim`: a name already taken
    ],
    ids=["missing-module", "name-taken"],
)
def test_item1_a_broken_command_is_left_out_in_one_line_and_the_others_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, error: str
) -> None:
    real = list(entry_points(group=cli.COMMANDS_GROUP))
    broken = EntryPoint(name="broken", value=value, group=cli.COMMANDS_GROUP)
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken, *real])
    code = cli.main(["check", "--skin-type", "III", "--fluence", "120", "--pulse-ms", "30",
                     "--spot-mm", "3", "--rate-hz", "1"])  # fmt: skip
    assert code == ExitStatus.OK
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith(f"laserguard: the broken command ({value}) is left out: {error}")
    assert "bench" in cli.build_parser().format_help()  # the others are still there
