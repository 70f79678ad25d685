"""The book's sources: every notebook listed, committed without outputs, thin over unet_lib,
with lab exercises whose solutions are folded away; a build configuration that fails on
errors and needs no network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_nine_chapters_all_in_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    assert [p.stem for p in NOTEBOOKS] == [
        "01_classic_unet", "02_improved_unet", "03_attention_unet", "04_training",
        "05_visualizing_predictions", "06_performance", "07_brats_evaluation",
        "08_attention_maps", "09_losses_and_calibration"]
    assert all(f"book/{p.stem}" in listed for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    for cell in cells(path):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, source(cell)[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_calls_unet_lib_and_reimplements_nothing(path):
    # the solutions of the coding exercises rebuild a piece of unet_lib on purpose; the
    # chapter's own code calls it
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code"
                     and not ("exercises.check_" in source(c)
                              and "hide-cell" in c["metadata"].get("tags", [])))
    assert "from unet_lib" in code
    assert "sys.path" not in code  # one preamble: the installed packages, no path tricks
    for pattern in (r"^\s*class ", r"nn\.Module", r"\.backward\(", r"optimizer\.step",
                    r"def dice", r"def precision", r"def recall"):
        assert not re.search(pattern, code, re.MULTILINE), f"{path.name}: {pattern}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_page_s_own_checks_are_in_cells_removed_from_the_book(path):
    for cell in cells(path):
        if cell["cell_type"] == "code" and re.search(r"^\s*assert ", source(cell), re.MULTILINE):
            assert "remove-cell" in cell["metadata"].get("tags", []), source(cell)[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_ends_with_checked_exercises_and_folded_solutions(path):
    code_cells = [c for c in cells(path) if c["cell_type"] == "code"]
    solutions = [c for c in code_cells if "hide-cell" in c["metadata"].get("tags", [])]
    exercises = [c for c in code_cells if "= None" in source(c) and "labs.check_" in source(c)]
    # coding exercises: a skeleton whose body is "...", and a check cell of its own
    coding = [c for c in code_cells if "exercises.check_" in source(c)
              and "hide-cell" not in c["metadata"].get("tags", [])]
    assert len(exercises) >= 2 and len(solutions) == len(exercises) + len(coding)
    for cell in solutions:
        assert source(cell).startswith("# Solution")
        assert "labs.check_" in source(cell) or "exercises.check_" in source(cell)
        # folded in the book, with the button saying what it shows, and in JupyterLab too
        # (which reads the cell's jupyter metadata, not the book's tags)
        assert cell["metadata"]["mystnb"]["code_prompt_show"] == "Show the solution"
        assert cell["metadata"]["jupyter"] == {"source_hidden": True, "outputs_hidden": True}
    assert any("## Lab exercises" in source(c) for c in cells(path) if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_the_book_hides_is_collapsed_in_jupyterlab_as_well(path):
    for cell in cells(path):
        tags = set(cell["metadata"].get("tags", []))
        if tags & {"hide-cell", "remove-cell", "hide-input", "remove-input"}:
            assert cell["metadata"].get("jupyter", {}).get("source_hidden"), source(cell)[:80]


CODING_CHAPTERS = ["01_classic_unet", "02_improved_unet", "03_attention_unet", "04_training",
                   "06_performance", "07_brats_evaluation"]


@pytest.mark.parametrize("name", CODING_CHAPTERS)
def test_coding_exercises_have_a_skeleton_a_check_and_a_folded_solution(name):
    code_cells = [c for c in cells(ROOT / "book" / f"{name}.ipynb") if c["cell_type"] == "code"]
    checks = [i for i, c in enumerate(code_cells) if source(c).startswith("exercises.check_")]
    assert checks, f"{name} has no coding exercise"
    for i in checks:
        skeleton, solution = source(code_cells[i - 1]), code_cells[i + 1]
        assert "    ..." in skeleton and "def " in skeleton  # a body for the student to write
        assert "hide-cell" in solution["metadata"]["tags"]
        assert source(code_cells[i]) in source(solution)  # the solution runs the same check


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_is_a_lesson_with_objectives_time_and_what_to_remember(path):
    text = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")
    assert "In this chapter" in text and "**Time**" in text
    assert "## What to remember" in text
    assert text.index("## What to remember") < text.index("## Lab exercises")


def test_build_fails_on_errors_and_pages_load_nothing_from_a_cdn():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "force"
    assert config["execute"]["allow_errors"] is False
    sphinx = config["sphinx"]
    assert sphinx["config"]["nb_ipywidgets_js"] == {}  # no require.js / widget manager CDN
    assert "sphinx-mathjax-offline" in sphinx["extra_extensions"]  # MathJax from the package
    makefile = (ROOT / "Makefile").read_text()
    assert "jupyter-book build . -W -n --keep-going" in makefile


def test_the_data_card_gives_the_sizes_the_scales_use():
    from unet_lib.recipe import SCALES

    card = (ROOT / "book" / "data_card.md").read_text()
    for name, scale in SCALES.items():
        phantom = scale.phantom
        row = next(line for line in card.splitlines() if line.startswith(f"| `{name}`"))
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert cells[1:4] == [str(phantom.n_volumes), str(phantom.n_slices),
                              f"{phantom.image_size}×{phantom.image_size}"], row
        # a BraTS head is 240 mm across and 155 mm deep
        assert cells[4] == f"{240 / phantom.image_size:.2g} mm, {155 / phantom.n_slices:.2g} mm"


def test_the_parameter_counts_quoted_in_the_text_are_the_models():
    from unet_lib.models import build_model, count_parameters

    millions = {name: f"{count_parameters(build_model(name, base_filters=32)) / 1e6:.2f} M"
                for name in ("classic", "improved", "attention")}
    intro = (ROOT / "book" / "intro.md").read_text()
    for name, quoted in millions.items():
        row = next(line for line in intro.splitlines()
                   if line.startswith(f"| **{name.capitalize()} U-Net**"))
        assert row.rstrip(" |").endswith(quoted), (row, quoted)
    chapter_1 = "".join(source(cell) for cell in cells(ROOT / "book" / "01_classic_unet.ipynb"))
    assert f"{millions['classic']} parameters at 32 first filters" in chapter_1


def test_chapter_3_quotes_both_models_step_rates_from_one_benchmark_table():
    # a rate from one table beside another's makes an epoch look faster than its steps
    table = (ROOT / "benchmarks" / "h200-2026-11-27" / "bench-channels-last.md").read_text()
    rate = {row.split("|")[1].strip(): float(row.split("|")[4])
            for row in table.splitlines() if re.match(r"\| [a-z]+ \| [0-9]", row)}
    text = " ".join("".join(source(cell) for cell in cells(
        ROOT / "book" / "03_attention_unet.ipynb") if cell["cell_type"] == "markdown").split())
    assert (f"ran at {rate['attention']:.0f} images/s against the Classic's "
            f"{rate['classic']:.0f}") in text


def test_the_intro_says_which_models_the_newest_reference_run_lacks():
    # the intro promises the slides' configuration in chapter 7: it must say what is not there
    from unet_course.bundles import reference_bundles

    bundles = reference_bundles()
    intro = " ".join((ROOT / "book" / "intro.md").read_text().split())
    start = intro.index("chapter 7's reference run show")
    promise = intro[start:intro.index("- **", start)]
    if not bundles:
        pytest.skip("no reference run is committed")
    folder, bundle, _ = bundles[-1]
    missing = [name for name in ("classic", "improved", "attention")
               if name not in bundle["models"]]
    held = " and the ".join(name.capitalize() for name in bundle["models"]) + " U-Net"
    assert f"holds the {held}" in promise, (folder.name, promise)
    for name in missing:
        assert f"its {name.capitalize()} U-Net trained, but" in promise, (folder.name, promise)
    assert bundle["date"] in promise and bundle["machine"]["device"] in promise, promise


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_a_text_alternative(path):
    # the built page's <img alt=...>: what a screen reader reads instead of the picture
    showing = [cell for cell in cells(path) if cell["cell_type"] == "code"
               and "plt.show()" in source(cell)]
    for cell in showing:
        alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
        assert len(alt) > 40, source(cell)[:120]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_has_its_own_id_as_nbformat_4_5_requires(path):
    # a cell without one is a warning now, "a hard error in future nbformat versions"
    ids = [cell.get("id") for cell in cells(path)]
    assert all(isinstance(i, str) and i for i in ids) and len(set(ids)) == len(ids)
