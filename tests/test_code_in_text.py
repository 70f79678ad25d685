"""The Python a reader copies from the text, not from a code cell: the "to try" blocks of the
chapters, the instructor page's recipes and the README's examples. No cell runs them (they
train for minutes, or need a notebook's variables), so they are checked as far as can be
without running: they parse, every name they import from the course's packages exists, and
every keyword they pass to its functions, classes and methods is one the callee takes."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest

from unet_course.session import CourseSetup, TrainedModel
from unet_lib.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^( *)```python\n(.*?)^\1```", flags=re.S | re.M)
#: names the blocks give to course objects, and the class each one is
OBJECTS = {"setup": CourseSetup, "other": CourseSetup, "mine": CourseSetup,
           "dice_setup": CourseSetup, "weighted": TrainedModel, "adam": TrainedModel,
           "longer": TrainedModel, "improved_dice": TrainedModel, "improved": TrainedModel,
           "classic": TrainedModel}


def blocks() -> list[tuple[str, str, str]]:
    """``(where, code, imports around it)`` for every Python fence in the chapters' text (the
    imports of the chapter's code cells are in force there), the book's pages and the README.
    """
    found = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        around = "\n".join(_imports("".join(cell["source"])) for cell in cells
                           if cell["cell_type"] == "code")
        for number, cell in enumerate(cells):
            if cell["cell_type"] == "markdown":
                found += [(f"{path.name} cell {number}", code, around)
                          for code in _fences("".join(cell["source"]))]
    for path in [*sorted((ROOT / "book").glob("*.md")), ROOT / "README.md"]:
        found += [(path.name, code, "") for code in _fences(path.read_text())]
    return found


def _imports(code: str) -> str:
    """The import statements of a code cell, as code."""
    return "\n".join(ast.unparse(node) for node in ast.walk(ast.parse(code))
                     if isinstance(node, (ast.Import, ast.ImportFrom)))


def _fences(text: str) -> list[str]:
    return [textwrap.dedent(code) for _, code in FENCE.findall(text)]


def _imported(tree: ast.AST) -> dict[str, object]:
    """``{local name: object}`` of the block's imports from unet_lib and unet_course."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.split(".")[0] in ("unet_lib",
                                                                             "unet_course"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):  # a submodule: from unet_course import labs
                    importlib.import_module(f"{node.module}.{alias.name}")
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("unet_lib", "unet_course"):
                    names[alias.asname or alias.name] = importlib.import_module(alias.name)
    return names


def _callee(func: ast.expr, names: dict):
    """The object a call's ``func`` names, where the block says what it is; else ``None``."""
    if isinstance(func, ast.Name):
        return names.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner = names.get(func.value.id, OBJECTS.get(func.value.id))
        if owner is not None:
            assert hasattr(owner, func.attr), f"{func.value.id} has no {func.attr}"
            return getattr(owner, func.attr)
    return None


def _accepts(callee, keyword: str) -> bool:
    if callee in (CourseSetup.variant,):  # **changes: the training settings
        return keyword in {f.name for f in TrainConfig.__dataclass_fields__.values()}
    parameters = inspect.signature(callee).parameters
    return keyword in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def test_the_text_holds_the_blocks_this_test_knows_of():
    where = [place for place, _, _ in blocks()]
    # chapter 4's four tries, chapters 7 and 8's, the instructor page's three, the README's
    assert len(where) >= 12, where
    assert any(place.startswith("08_attention_maps") for place in where)


@pytest.mark.parametrize("where, code, around", blocks(),
                         ids=[place for place, _, _ in blocks()])
def test_code_in_the_text_parses_imports_what_exists_and_passes_known_keywords(where, code,
                                                                               around):
    tree = ast.parse(code, filename=where)
    names = {**_imported(ast.parse(around)), **_imported(tree)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = _callee(node.func, names)
        if callee is None or not callable(callee):
            continue
        for keyword in node.keywords:
            if keyword.arg is not None:  # not **mapping
                assert _accepts(callee, keyword.arg), (
                    f"{where}: {ast.unparse(node.func)}() takes no {keyword.arg}=")
