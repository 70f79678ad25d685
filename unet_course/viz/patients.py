"""Per-patient scores, drawn as chapter 7 compares them: paired.

A box plot of four patients draws quartiles that four points cannot give, and hides that the
models were scored on the *same* patients. :func:`show_patient_scores` draws every patient as
one marker per model, joined by a line across the models (what the paired tests compare),
each model's mean as a black bar, and a patient whose truth lacks the region hollow: the
empty-region rule scores it (Dice 1 or 0, HD95 0 or 373 mm), not an overlap.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from unet_lib.data import REGIONS
from unet_lib.outlines import HD95_ONE_EMPTY
from unet_lib.patients import PatientScores

from .frames import score_axis_floor

#: a marker per patient, so that colour is not the only thing that tells them apart
PATIENT_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">", "h")
#: the most patients drawn each in a colour and marker of their own, with a legend entry;
#: beyond, every patient is grey (a legend of dozens of patients reads as nothing)
MOST_NAMED = len(PATIENT_MARKERS)
#: the mean's bar: its half-width on the models' axis
MEAN_HALF_WIDTH = 0.22
METRIC_LABELS = {"dice": "Dice", "precision": "precision", "recall": "recall",
                 "hd95": "HD95 (mm, log scale above 1)"}
#: what a hollow marker means, in the legend
ABSENT_LABEL = "region absent from the truth (rule: Dice 1 or 0, HD95 0 or 373 mm)"


def patient_order(scores: Mapping[str, PatientScores]) -> list:
    """The volumes every model scored, in the first model's order; a ValueError naming the
    model when there is none, when one has no patient or a patient twice, or when they were
    not scored on the same patients (nothing to pair)."""
    if not scores:
        raise ValueError("scores: no model to draw; give {model name: PatientScores}")
    orders = {name: [row["volume"] for row in s.rows] for name, s in scores.items()}
    first = next(iter(orders.values()))
    for name, order in orders.items():
        if not order or len(set(order)) != len(order):
            raise ValueError(f"{name} was scored on volumes {order}: give each test patient "
                             f"once, at least one")
        if sorted(order) != sorted(first):
            raise ValueError(f"{name} was scored on volumes {order}, the others on {first}: "
                             f"pair them on the same test patients")
    return first


def paired_values(scores: Mapping[str, PatientScores], metric: str, region: str,
                  volumes: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """``(values, absent)``: (patients, models) the scores of each patient under each model, in
    the order of ``volumes``, and (patients,) whether the patient's truth lacks ``region``; a
    ValueError where the models disagree on that (they were not scored on the same truth)."""
    values = np.empty((len(volumes), len(scores)))
    absent = np.zeros((len(volumes), len(scores)), dtype=bool)
    for m, s in enumerate(scores.values()):
        by_volume = {row["volume"]: row for row in s.rows}
        for p, volume in enumerate(volumes):
            values[p, m] = by_volume[volume][metric][region]
            absent[p, m] = region in by_volume[volume].get("empty", ())
    for p in np.flatnonzero(absent.any(axis=1) != absent.all(axis=1)):
        said = [name for name, lacks in zip(scores, absent[p]) if lacks]
        raise ValueError(f"volume {volumes[p]}: {', '.join(said)} scored it without {region} "
                         f"in the truth, the other models with it: score them on the same data")
    return values, absent[:, 0]


def show_patient_scores(scores: Mapping[str, PatientScores],
                        regions: Sequence[str] = REGIONS,
                        metrics: Sequence[str] = ("dice", "hd95")) -> Figure:
    """One panel per metric (rows) and region (columns): each model's score of every patient
    (x: the models of ``scores``, in order), a patient's scores joined by a thin line, the
    model's mean over the patients as a black bar, the patients whose truth lacks the region
    hollow. A panel of scores in [0, 1] starts at 0 or just below its lowest value
    (:func:`~unet_course.viz.frames.score_axis_floor`), and its title says where: one region's
    patients are told apart however low another region's scores run. HD95 on a log scale
    (linear below 1 mm) from 0 to 373 mm (one outline empty). A pyplot figure."""
    volumes = patient_order(scores)
    named = len(volumes) <= MOST_NAMED
    models = list(scores)
    x = np.arange(len(models))
    fig, axes = plt.subplots(len(metrics), len(regions), figsize=(4 * len(regions), 3.2 *
                             len(metrics)), squeeze=False, layout="constrained")
    hollow_seen = False
    for row, metric in enumerate(metrics):
        for ax, region in zip(axes[row], regions):
            values, absent = paired_values(scores, metric, region, volumes)
            floor = 0.0 if metric == "hd95" else score_axis_floor(values.ravel())
            for p, (patient_values, empty) in enumerate(zip(values, absent)):
                colour = f"C{p}" if named else "0.45"
                marker = PATIENT_MARKERS[p] if named else "o"
                ax.plot(x, patient_values, color=colour, lw=0.9, alpha=0.6)
                ax.plot(x, patient_values, ls="none", marker=marker, ms=7, color=colour,
                        mfc="white" if empty else colour, mew=1.5)
                hollow_seen |= bool(empty)
            ax.hlines(values.mean(axis=0), x - MEAN_HALF_WIDTH, x + MEAN_HALF_WIDTH,
                      color="black", lw=2.5, zorder=3)
            ax.set_xticks(x, models)
            ax.set_xlim(-0.5, len(models) - 0.5)
            ax.set_title(f"{METRIC_LABELS.get(metric, metric)}, {region}"
                         + (f" (axis from {floor:.1f})" if floor > 0 else ""))
            if metric == "hd95":  # from 0 (outlines agree) to 373 mm (a region missed)
                ax.set_yscale("symlog", linthresh=1)
                ax.set_ylim(-0.3, 500)  # a 0 drawn whole, not cut by the axis
                ax.set_yticks([0, 1, 3, 10, 30, 100, HD95_ONE_EMPTY],
                              ["0", "1", "3", "10", "30", "100", f"{HD95_ONE_EMPTY:.0f}"])
            else:
                ax.set_ylim(floor - 0.02, 1.02)
    first_rows = {row["volume"]: row for row in next(iter(scores.values())).rows}
    labels = [first_rows[v].get("case", f"patient {v}") for v in volumes]  # a BraTS ID if known
    fig.legend(handles=_legend(labels, named, hollow_seen), loc="outside lower center",
               ncols=3, frameon=False, fontsize=10)
    fig.suptitle(f"each test patient's scores under each model ({len(volumes)} patients; a "
                 f"line joins one patient's scores)")
    return fig


def _legend(labels: Sequence[str], named: bool, hollow_seen: bool) -> list:
    handles = ([Line2D([], [], color=f"C{p}", marker=PATIENT_MARKERS[p], lw=0.9,
                       label=label) for p, label in enumerate(labels)]
               if named else [Line2D([], [], color="0.45", marker="o", lw=0.9,
                                     label="one patient")])
    handles.append(Line2D([], [], color="black", lw=2.5, label="mean over the patients"))
    if hollow_seen:
        handles.append(Line2D([], [], ls="none", marker="o", color="0.3", mfc="white",
                              label=ABSENT_LABEL))
    return handles
