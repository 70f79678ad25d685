"""Sentences chapter 7 reads off the test patients' scores: whether a patient's HD95 stands
out while its Dice does not (:func:`standing_out`, :func:`hd95_sentence`), which patient the
chapter draws (:func:`patient_to_draw`, :func:`hd95_case`), the empty-region rule's part in the
gap between per-patient and all-pixel Dice (:func:`empty_region_reading`), and which model
comparisons a test settles (:func:`settled_sentence`).

``patients``: model name → its :class:`~unet_lib.patients.PatientScores` on the test patients,
each row ``{"volume", "dice": {region: …}, "hd95": {…}, "empty": [regions the truth lacks]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from unet_lib.outlines import HD95_ONE_EMPTY

from ..notebook import counted

#: an HD95 at least this many times the largest of its model's other patients' stands out
STANDS_OUT = 1.5

#: and at least this much farther, in mm (two voxels of 2.5 mm are not an outlier)
FARTHER_MM = 5.0


@dataclass(frozen=True)
class StandingOut:
    """A patient whose whole-tumour HD95 stands out from its model's other patients' while its
    Dice is among theirs: ``row`` (of ``model``'s scores), ``others`` (the model's other
    patients whose outlines were both there), ``ratio`` (its HD95 ÷ the largest of theirs)
    and ``empty`` (how many of the model's patients had an outline empty, left out)."""

    model: str
    row: dict
    others: list
    ratio: float
    empty: int


def _measured(rows: Sequence[dict], region: str = "WT") -> list[dict]:
    """The rows whose ``region`` HD95 was measured between two outlines (an outline empty
    scores :data:`~unet_lib.outlines.HD95_ONE_EMPTY`)."""
    return [row for row in rows if row["hd95"][region] < HD95_ONE_EMPTY]


def _candidates(name: str, rows: Sequence[dict]):
    """``(ratio, row, others)`` for each of a model's patients whose whole-tumour Dice is at
    least the lower quartile of its other patients' and whose HD95 lies :data:`FARTHER_MM`
    beyond the largest of theirs (``ratio``: its HD95 ÷ that largest)."""
    measured = _measured(rows)
    for row in measured:
        others = [other for other in measured if other is not row]
        if not others:
            continue
        farthest_other = max(other["hd95"]["WT"] for other in others)
        lower_quartile = np.percentile([other["dice"]["WT"] for other in others], 25)
        if (farthest_other > 0 and row["hd95"]["WT"] >= farthest_other + FARTHER_MM
                and row["dice"]["WT"] >= lower_quartile):
            yield row["hd95"]["WT"] / farthest_other, row, others


def standing_out(patients: Mapping, stands_out: float = STANDS_OUT) -> StandingOut | None:
    """The patient, of any model, whose whole-tumour HD95 stands farthest above its model's
    other patients' — at least ``stands_out`` times their largest and :data:`FARTHER_MM`
    beyond it — while its Dice is no lower than their lower quartile: a distance the Dice
    does not show. ``None`` if no patient does."""
    found = max(((ratio, name, row, others) for name, scores in patients.items()
                 for ratio, row, others in _candidates(name, scores.rows)),
                key=lambda candidate: candidate[0], default=None)
    if found is None or found[0] < stands_out:
        return None
    ratio, name, row, others = found
    return StandingOut(model=name, row=row, others=others, ratio=ratio,
                       empty=len(patients[name].rows) - len(others) - 1)


def _span(rows: Sequence[dict], metric: str, digits: int) -> str:
    values = sorted(row[metric]["WT"] for row in rows)
    return f"{values[0]:.{digits}f}" + (f" to {values[-1]:.{digits}f}" if len(values) > 1 else "")


def hd95_sentence(patients: Mapping, found: StandingOut | None,
                  stands_out: float = STANDS_OUT) -> str:
    """The book's "In the run that built this page, …": the patient :func:`standing_out`
    found, with its Dice and HD95 against its model's other patients'; else (none stood out
    ``stands_out`` times) each model's mean and median whole-tumour HD95 and its mean Dice."""
    if found:
        row, others = found.row, found.others
        return (f"the {found.model} U-Net scored test patient {row['volume']}'s whole tumour "
                f"with a Dice of {row['dice']['WT']:.2f}, among those of its other patients "
                f"({_span(others, 'dice', 2)}), yet its HD95 there is {row['hd95']['WT']:.1f} "
                f"mm, against {_span(others, 'hd95', 1)} mm on the others"
                + (" whose outlines were both there" if found.empty else "")
                + f": {found.ratio:.1f} times their largest. The next section draws this "
                  f"patient")
    summaries = {name: scores.summary() for name, scores in patients.items()}
    return (f"no patient's whole-tumour HD95 stands out {stands_out:g} times above its model's "
            f"other patients' with a Dice as good as theirs. Over the patients, the "
            f"whole-tumour HD95 averaged " + ", ".join(
                f"{s['hd95']['WT']['mean']:.1f} mm (median {s['hd95']['WT']['median']:.1f}) "
                f"for the {name} U-Net" for name, s in summaries.items())
            + ", and the Dice " + ", ".join(f"{s['dice']['WT']['mean']:.2f}"
                                            for s in summaries.values()))


def patient_to_draw(patients: Mapping, found: StandingOut | None) -> tuple[str, dict]:
    """``(model, row)``: the patient whose outlines chapter 7 draws — the one
    :func:`standing_out` found, if any; else the largest whole-tumour HD95 between two
    outlines of the model whose mean HD95 is largest (any model's, if none of that model's
    was measured).

    Raises:
        ValueError: no patient has both outlines (every prediction or truth is empty)."""
    if found:
        return found.model, found.row
    far = max(patients, key=lambda name: patients[name].summary()["hd95"]["WT"]["mean"])
    measured = [(name, row) for name in patients for row in _measured(patients[name].rows)]
    if not measured:
        raise ValueError("no test patient has both a predicted and a true whole tumour: there "
                         "are no outlines to draw (every model predicted none, or the truths "
                         "are empty)")
    return max(measured, key=lambda pair: (pair[0] == far, pair[1]["hd95"]["WT"]))


def hd95_case(patients: Mapping, model: str, row: dict, found: StandingOut | None) -> str:
    """How the book names the drawn patient (:func:`patient_to_draw`): why it was chosen, and
    which of the model's patients have an outline empty, with nothing to draw."""
    missing = [other["volume"] for other in patients[model].rows
               if other["hd95"]["WT"] >= HD95_ONE_EMPTY]
    return (f"{model} U-Net's test patient {row['volume']}, whose whole-tumour HD95 "
            f"({row['hd95']['WT']:.1f} mm) stands out from its other patients' while its Dice "
            f"does not" if found else
            f"{model} U-Net's largest whole-tumour HD95 between two outlines (test patient "
            f"{row['volume']}, {row['hd95']['WT']:.1f} mm)") + (
        f"; its {HD95_ONE_EMPTY} mm for {counted('patient', missing)} says an outline is "
        f"empty, with nothing to draw" if missing else "")


def rule_share(gap: float, gap_without: float) -> str:
    """The empty-region rule's part in ``gap`` (per-patient mean Dice minus the Dice over all
    pixels), given the gap without the patients it scores (``gap_without``): all of it, more
    than all of it (the gap turns sign without them), a share of it, or none: the gap is wider
    without them (the rule works against it)."""
    if abs(gap_without) < 0.0005:
        return "The empty-region rule makes up all of the gap"
    if gap_without * gap < 0:
        return (f"The empty-region rule makes up more than the whole gap: without it the "
                f"per-patient mean lies {abs(gap_without):.3f} "
                f"{'below' if gap_without < 0 else 'above'} the score over all pixels")
    if abs(gap_without) < abs(gap):
        share = 1 - gap_without / gap
        return ("The empty-region rule makes up " + (
            "nearly all of the gap" if share >= 0.995 else "hardly any of the gap"
            if share < 0.005 else f"{share * 100:.0f} % of the gap"))
    return f"The empty-region rule narrows the gap: without it the gap is {gap_without:+.3f}"


def _scored(values: Sequence[float]) -> str:
    """What a model scored on the patients that lack a region (each 1, where it marked none,
    or 0, where it marked some): ``"a whole 1 there (it marked none)"``, ``"0 there (it marked
    some)"``, ``"1 on 2 of them (it marked none)"``, or ``"1 on 2 of them and 0 on 1 of them
    (1: it marked none; 0: it marked some)"``."""
    hits, alarms = sum(v == 1 for v in values), sum(v == 0 for v in values)
    if hits + alarms < len(values):  # not the BraTS rule's scores: say them as they are
        return ", ".join(f"{v:.2f}" for v in values)
    if len(values) == 1:
        return "a whole 1 there (it marked none)" if hits else "0 there (it marked some)"
    if not alarms or not hits:
        return (f"1 on {hits} of them (it marked none)" if hits else
                f"0 on {alarms} of them (it marked some)")
    return (f"1 on {hits} of them and 0 on {alarms} of them (1: it marked none; 0: it marked "
            f"some)")


def empty_region_reading(model: str, rows: Sequence[dict], all_pixels: float,
                         region: str = "ET") -> str:
    """How many of ``model``'s test patients (``rows``) lack ``region`` in the truth, what
    the model scored on them (1 where it marked none, 0 where it marked some), and what its
    per-patient mean is without them, against ``all_pixels`` (its Dice over all the patients'
    pixels): the :func:`rule_share` of the gap between the two."""
    present = [row["dice"][region] for row in rows if region not in row["empty"]]
    absent = [row["dice"][region] for row in rows if region in row["empty"]]
    if not absent or not present:
        return (f"Every test patient has {region} in the truth here, so the empty-region rule "
                f"plays no part in the gap" if not absent else
                f"No test patient has {region} in the truth here: every one of them scores by "
                f"the empty-region rule")
    gap = float(np.mean([row["dice"][region] for row in rows])) - all_pixels
    mean_present = float(np.mean(present))
    one = len(absent) == 1
    return (f"{len(absent)} of the {len(rows)} test patients ha{'s' if one else 've'} no "
            f"{region} in the truth, and the {model} U-Net scored {_scored(absent)}. Without "
            f"{'it' if one else 'them'}, its {region} per-patient mean is {mean_present:.3f}, "
            f"against {all_pixels:.3f} over all {len(rows)} patients' pixels. "
            + rule_share(gap, mean_present - all_pixels))


def settled_sentence(comparisons: Sequence[dict]) -> str:
    """How many model comparisons (rows ``{"region", "higher mean", "than", "settled"}``,
    settled ``"yes"`` at p < 0.05) the sign-flip test settles, and which."""
    settled = [c for c in comparisons if c["settled"] == "yes"]
    several = len(comparisons) != 1
    return f"Of the {len(comparisons)} comparison{'s' if several else ''}, " + (
        f"{len(settled)} reach{'es' if len(settled) == 1 else ''} p < 0.05: " + "; ".join(
            f"{c['higher mean']} over {c['than']} in {c['region']}" for c in settled)
        if settled else "none reaches p < 0.05") + "."
