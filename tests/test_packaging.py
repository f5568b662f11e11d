"""`pip install .` gives the two commands and ships the search spaces (they live in spaces/ at the
top of the project, outside the packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_the_wheel_ships_spaces_and_console_scripts(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so building leaves nothing in the project
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("minitron", "search", "spaces"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", str(tmp_path / "wheel")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "wheel").glob("minitron_search-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    shipped = {Path(n).name for n in names if n.startswith("search/spaces/")}
    assert shipped == {p.name for p in (ROOT / "spaces").glob("*.yaml")}
    assert "minitron-search = search.cli.main:main" in entry_points
    assert "minitron = minitron.__main__:main" in entry_points

    site = tmp_path / "site"
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    dry = subprocess.run(
        [str(site / "bin" / "minitron-search"), "--budget", "4.5B", "--space", "llama-3.1-8b", "--dry-run"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert f"space    {site / 'search' / 'spaces' / 'llama-3.1-8b.yaml'}" in dry.stdout
    commands = subprocess.run(
        [str(site / "bin" / "minitron"), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert commands.returncode == 0 and "prune" in commands.stdout and "evaluate" in commands.stdout
