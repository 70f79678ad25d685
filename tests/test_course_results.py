"""What the quick course's own models reached, read from the results its chapters saved.

The chapters save each model's held-out test scores (chapter 7) and the Attention U-Net's
attention contrast (chapter 8) in the run folder's ``results.json``
(:meth:`unet_course.TrainedModel.test_scores`, :meth:`~unet_course.TrainedModel.record`).
``make test`` runs the notebooks first, so these tests then check the very models the book
shows. Without those results they are skipped, unless ``UNET_REQUIRE_COURSE_RESULTS=1`` (the
Makefile's ``test`` sets it), which turns a skip into a failure.
"""

from __future__ import annotations

import os

import pytest

from unet_course.session import course_home
from unet_lib.recipe import RunRecipe
from unet_lib.results import read_results

pytestmark = pytest.mark.slow

#: what the quick book must show, per region, on the held-out test volumes at threshold 0.5
#: (issue "Results that teach")
LEAST_DICE = {"WT": 0.85, "TC": 0.75, "ET": 0.70, "NCR/NET": 0.50}
LEAST_TEST_VOLUMES = 4
#: mean α inside the whole tumour minus in the rest of the brain (the air left out), at the
#: finest gate, on the shown slices: +0.86 measured (2026-11-28; +0.19 when the air counted)
LEAST_CONTRAST = 0.5


def _results(name: str) -> dict:
    key = RunRecipe.for_scale("quick", model=name).key()
    folder = course_home() / "runs" / "course" / f"{name}-quick-{key}"
    saved = read_results(folder)
    if "test at 0.5" not in saved:
        reason = f"{folder}: no saved test scores (run the chapters: make notebooks)"
        if os.environ.get("UNET_REQUIRE_COURSE_RESULTS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return saved


#: (model, region) pairs measured short of their figure, kept visible as expected failures
#: (pytest reports XPASS when one reaches it). None since the Classic U-Net starts from the
#: U-Net paper's weights (its test TC Dice had been 0.7495).
SHORT: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("name, region", [
    pytest.param(name, region, marks=pytest.mark.xfail(reason=SHORT[(name, region)],
                                                       strict=False))
    if (name, region) in SHORT else (name, region)
    for name in ("classic", "improved", "attention") for region in LEAST_DICE])
def test_every_quick_model_meets_the_course_figures_on_held_out_volumes(name, region):
    scores = _results(name)["test at 0.5"]
    assert len(scores["volumes"]) >= LEAST_TEST_VOLUMES
    dice = scores["all_pixels"]["dice"][region]
    assert dice >= LEAST_DICE[region], f"{name}: test Dice {region} {dice:.4f}"


def test_the_quick_attention_gates_attend_to_the_tumour():
    saved = _results("attention")
    contrast = saved["attention_contrast"]
    finest = contrast["inside"][-1] - contrast["outside"][-1]
    assert finest >= LEAST_CONTRAST, f"finest gate: inside − outside = {finest:.3f}"
