"""The import contract (``[tool.importlinter]`` in pyproject.toml, run by ``make lint``) bites.

Each test copies the packages and the contract into a temporary folder, plants one import
that breaks the layering, and runs the real ``lint-imports`` there: it must fail and name the
module that broke it. The untouched copy must pass, so a failure below is the planted import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("device_profiles", "firmware_bridge", "monitor", "sim", "benchmarks", "thermal_dose")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture
def tree(pristine: Path, tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(pristine, root)
    return root


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path: the contract is judged on it, not on the installed tree.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def plant(root: Path, module: str, line: str) -> str:
    """Write ``module`` (dotted) with one import line; returns its dotted name."""
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(f'"""Planted by a test: this import breaks the layering."""\n\n{line}\n')
    return module


def test_item1_the_untouched_tree_keeps_every_contract(pristine: Path) -> None:
    out = lint_imports(pristine)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("line", "target"),
    [
        ("import monitor.cli.main", "monitor.cli"),  # the CLI
        ("from sim.runner import SimRunner", "sim"),  # the simulator
        ("import fastapi", "fastapi"),  # a web framework
        ("from rich.text import Text", "rich"),  # terminal UI
        ("from monitor.record.sqlite_store import SessionLog", "monitor.record"),  # the store
    ],
)
def test_item1_a_core_module_that_imports_upwards_fails_the_contract(
    tree: Path, line: str, target: str
) -> None:
    module = plant(tree, "monitor.core.planted", line)
    out = lint_imports(tree)
    assert out.returncode != 0, out.stdout
    assert "monitor.core (the safety core)" in out.stdout and "BROKEN" in out.stdout
    assert f"{module} -> {target}" in out.stdout


def test_item1_an_indirect_import_through_a_helper_is_caught_too(tree: Path) -> None:
    """Core imports a harmless-looking helper in the bridge that pulls in the CLI."""
    plant(tree, "firmware_bridge.helper", "import monitor.cli.live_view")
    plant(tree, "monitor.core.planted", "import firmware_bridge.helper")
    out = lint_imports(tree)
    assert out.returncode != 0, out.stdout
    assert "monitor.core (the safety core)" in out.stdout
    assert "firmware_bridge imports nothing of monitor" in out.stdout


def test_item1_the_simulator_may_not_reach_into_the_bridge(tree: Path) -> None:
    plant(tree, "sim.planted", "from firmware_bridge.live import Ch")
    out = lint_imports(tree)
    assert out.returncode != 0, out.stdout
    assert "sim.planted -> firmware_bridge" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "target", "contract"),
    [
        ("monitor.core.planted", "import monitor.incidents.hook", "monitor.incidents",
         "monitor.core (the safety core)"),
        ("monitor.incidents.planted", "import monitor.cli.main", "monitor.cli",
         "monitor.incidents (clinic records)"),
        ("monitor.incidents.planted", "import monitor.reports.plot", "monitor.reports",
         "monitor.incidents (clinic records)"),
        ("monitor.reports.planted", "from sim.runner import SimRunner", "sim",
         "monitor.reports imports"),
    ],
)  # fmt: skip
def test_item2_incidents_and_reports_stay_below_the_ui_and_the_core_knows_neither(
    tree: Path, module: str, line: str, target: str, contract: str
) -> None:
    plant(tree, module, line)
    out = lint_imports(tree)
    assert out.returncode != 0, out.stdout
    assert contract in out.stdout and f"{module} -> {target}" in out.stdout


@pytest.mark.parametrize(
    ("line", "target"),
    [
        ("from sim.skin import SkinModel", "sim"),
        ("from monitor.core.checks import CHECKS", "monitor"),
        ("from device_profiles.schema import SkinType", "device_profiles"),
    ],
)
def test_issue13_item2_the_shared_dose_module_imports_nothing_of_laserguard(
    tree: Path, line: str, target: str
) -> None:
    """thermal_dose is shared by the simulator and the safety core: it must stay at the
    bottom, or one of them would pull the other in through it."""
    module = plant(tree, "thermal_dose.planted", line)
    out = lint_imports(tree)
    assert out.returncode != 0, out.stdout
    assert "thermal_dose imports nothing of LaserGuard" in out.stdout
    assert f"{module} -> {target}" in out.stdout
