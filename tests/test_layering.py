"""The library never imports Ray or Optuna: only `search/` does."""

import subprocess
import sys

from tests.conftest import ROOT

CODE = """
import importlib, pkgutil, sys
import minitron
for module in pkgutil.walk_packages(minitron.__path__, "minitron."):
    importlib.import_module(module.name)
print(sorted(name for name in sys.modules if name.split(".")[0] in ("ray", "optuna")))
"""


def test_minitron_never_imports_ray_or_optuna() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
