"""The house: the core library stands without the course, and its modules stay small."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import unet_lib

ROOT = Path(__file__).resolve().parents[1]

BLOCK_MATPLOTLIB = """
import importlib, importlib.abc, pkgutil, sys
class NoMatplotlib(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("matplotlib", "unet_course"):
            raise ImportError(f"{name} is blocked: the core must not need it")
sys.meta_path.insert(0, NoMatplotlib())
import unet_lib
names = [m.name for m in pkgutil.walk_packages(unet_lib.__path__, "unet_lib.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print("imported", len(names))
"""


def test_every_core_module_imports_without_matplotlib_or_the_course():
    result = subprocess.run([sys.executable, "-c", BLOCK_MATPLOTLIB], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 20


def test_no_module_of_the_library_or_the_course_is_over_310_lines():
    sizes = {path.relative_to(ROOT): len(path.read_text().splitlines())
             for package in ("unet_lib", "unet_course")
             for path in (ROOT / package).rglob("*.py")}
    assert {path: n for path, n in sizes.items() if n > 310} == {}


def test_every_core_module_has_a_docstring():
    names = [module.name for module in pkgutil.walk_packages(unet_lib.__path__, "unet_lib.")
             if not module.name.endswith("__main__")]
    missing = [name for name in names
               if not (importlib.import_module(name).__doc__ or "").strip()]
    assert missing == []


def test_no_name_is_undefined_and_no_import_unused():
    """pyflakes' checks (ruff's F rules) over the code: an undefined name is a NameError that
    waits for the one line that uses it (``BraTSSlices(tumour_only=True)`` once called a
    function that had been removed)."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F",
                             "--output-format", "concise", "unet_lib", "unet_course", "tests",
                             "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_packages_lines_fit_100_characters():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "E501",
                             "--line-length", "100", "--output-format", "concise", "unet_lib",
                             "unet_course"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
