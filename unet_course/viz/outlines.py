"""Where an HD95 comes from: one patient's outlines and their distances, in pictures.

Chapter 7 scores patients with the 95th-percentile Hausdorff distance. These pictures take one
patient (:func:`unet_lib.patient_volume.predict_patient`) and show what that number is made of
(:class:`unet_lib.outlines.OutlineDistances`):

* :func:`distance_curves` — for each direction, the share of one outline's voxels that lie
  within a distance of the other outline; HD95 is the later of the two curves' crossings of
  95 % (the larger distance);
* :func:`outline_slider` — a static slider through the patient's slices: each outline voxel
  coloured by its distance to the other outline, those beyond HD95 in warm colours;
* what the curves show, in a sentence: :func:`unet_course.readings.outlines.read_curves`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from unet_lib.outlines import OutlineDistances, SurfaceDistances
from unet_lib.patient_volume import PatientVolume

from .frames import figure_pixels, grey_picture, head_window, place_clear_of_lines
from .slider import ImageSlider

#: the two directions, as the pictures name them
DIRECTIONS = {"prediction_to_truth": "predicted outline → nearest true outline",
              "truth_to_prediction": "true outline → nearest predicted outline"}
#: the two directions' curves: colour, and a line of their own
CURVE_STYLES = (dict(color="tab:blue", ls="-"), dict(color="tab:orange", ls="--"))
#: the most slices one slider shows (every k-th beyond that; the slice it opens on is kept)
MOST_SLICES = 48


def distance_curves(outlines: OutlineDistances, title: str | None = None) -> Figure:
    """The share of each outline's voxels within a distance of the other outline, both ways,
    whole (left) and its top enlarged (right): a curve reaches 95 % at that direction's 95th
    percentile; HD95 is the larger of the two, the plain Hausdorff distance where the last
    curve reaches 100 %. A pyplot figure, as the rest of :mod:`unet_course.viz`."""
    fig, (whole, top) = plt.subplots(1, 2, figsize=(10.5, 4.2), width_ratios=(1, 1.25),
                                     layout="constrained")
    q = outlines.percentile
    for (name, label), style in zip(DIRECTIONS.items(), CURVE_STYLES):
        distances: SurfaceDistances = getattr(outlines, name)
        x = np.sort(distances.distances)
        for ax in (whole, top):
            ax.step(np.concatenate([[0.0], x]), np.arange(len(x) + 1) / len(x), where="post",
                    lw=2, label=f"{label} ({len(x)} voxels)", **style)
            ax.plot([distances.percentile(q)], [q / 100], "o", ms=8, mfc="white",
                    color=style["color"])
    low = min(0.85, q / 100 - 0.05)
    for ax in (whole, top):
        ax.axhline(q / 100, color="0.3", lw=0.8, ls=":")
        ax.set(xlabel="distance to the other outline (mm)", xlim=(0, None))
    whole.set(ylim=(0, 1.03), ylabel="share of the outline's voxels\nwithin that distance",
              title="the whole curves")
    whole.set_yticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "25 %", "50 %", "75 %", "100 %"])
    top.set(ylim=(low, 1.01), title=f"their top, enlarged: where they cross {q:g} %")
    ticks = np.round(np.arange(low, 1.0001, 0.05), 2)
    top.set_yticks(ticks, [f"{100 * t:g} %" for t in ticks])
    right_edge = outlines.hd95 > 0.7 * top.get_xlim()[1]  # its label then goes to the left
    top.annotate(f"HD95 = {outlines.hd95:.1f} mm", (outlines.hd95, q / 100),
                 xytext=(-12 if right_edge else 12, -30), textcoords="offset points",
                 ha="right" if right_edge else "left", fontsize=12,
                 arrowprops=dict(arrowstyle="->", color="black"))
    farthest = top.annotate(f"farthest voxel: {outlines.hausdorff:.1f} mm\n(the plain "
                            f"Hausdorff distance)", (outlines.hausdorff, 1.0),
                            textcoords="axes fraction", va="center", fontsize=11,
                            xytext=LABEL_PLACES[0][0], bbox=dict(boxstyle="round", fc="white",
                                                                 ec="0.8", alpha=0.9),
                            arrowprops=dict(arrowstyle="->", color="0.3"))
    # below both panels: inside, it hid a curve where the enlarged top runs low
    fig.legend(*whole.get_legend_handles_labels(), loc="outside lower center", ncols=2,
               fontsize=10)
    if title:
        fig.suptitle(title)
    place_clear_of_lines(farthest, top, LABEL_PLACES)
    return fig


#: where the farthest voxel's label may go (axes fraction, alignment), tried in turn: right of
#: HD95 and below 95 % no curve runs (each has passed 95 % by then), so the corner comes first
LABEL_PLACES = (((0.97, 0.1), "right"), ((0.97, 0.45), "right"), ((0.5, 0.25), "center"),
                ((0.5, 0.7), "center"), ((0.3, 0.88), "center"), ((0.03, 0.3), "left"))


def outline_slider(case: PatientVolume, region: str = "WT",
                   outlines: OutlineDistances | None = None, title: str | None = None,
                   most_slices: int = MOST_SLICES, width: int = 320) -> ImageSlider:
    """A static slider through the slices of ``case`` that hold either outline of ``region``:
    on FLAIR, one panel per direction, each outline voxel coloured by its distance to the
    other outline (in 3-D: the nearest may lie on another slice), the other outline white,
    the voxels farther than HD95 in orange to red, larger; a colour key under each. It
    starts at the slice with the most such voxels in the direction that gives the HD95."""
    outlines = outlines or case.outlines(region)
    hd95, longest = outlines.hd95, max(outlines.hausdorff, 1e-6)
    start_slice = _most_beyond(getattr(outlines, outlines.deciding), hd95)
    shown = _slices_shown(outlines, start_slice, most_slices)
    other = {"prediction_to_truth": outlines.truth_to_prediction,
             "truth_to_prediction": outlines.prediction_to_truth}

    points = np.concatenate([outlines.prediction_to_truth.points,
                             outlines.truth_to_prediction.points])
    window = head_window(case.image[0], holding=points[:, 1:])
    key = _colour_key(hd95, longest, width)

    def pictures(position):
        z = shown[position[0]]
        flair = grey_picture(case.image[0, z])
        return [np.concatenate([_outline_picture(flair, getattr(outlines, name), other[name],
                                                 z, hd95, longest, width, window), key])
                for name in DIRECTIONS]

    def caption(position):
        z = shown[position[0]]
        parts = []
        for name, label, owner in (("prediction_to_truth", "predicted", "prediction"),
                                   ("truth_to_prediction", "true", "truth")):
            distances: SurfaceDistances = getattr(outlines, name)
            here = distances.distances[distances.points[:, 0] == z]
            parts.append(f"{label} outline: {len(here)} voxel{'s' * (len(here) != 1)} here, "
                         f"farthest {here.max():.1f} mm away, {int((here > hd95).sum())} beyond "
                         f"HD95" if len(here) else
                         f"{label} outline: none (the {owner} has no {region} on this slice)")
        return (f"slice {z} (of 0 to {case.image.shape[1] - 1}; patient {case.volume}, "
                f"{region}): "
                + "; ".join(parts) + f". HD95 of the patient: {hd95:.1f} mm.")

    return ImageSlider({"slice": [str(z) for z in shown]},
                       list(DIRECTIONS.values()), pictures, caption,
                       start=(shown.index(start_slice),), title=title, width=width,
                       note="on FLAIR: each outline voxel coloured by its distance to the "
                            "other outline (white), blue (on it) to yellow (HD95), the key "
                            "under each picture; orange to red, drawn larger: farther than "
                            "HD95. The outline is the 3-D "
                            "surface: where the region's cross-section changes from one slice "
                            "to the next, the voxels inside it are outline too.")


def _most_beyond(distances: SurfaceDistances, hd95: float) -> int:
    """The slice with the most voxels farther than ``hd95`` (the farthest voxel's if none)."""
    beyond = distances.points[distances.beyond(hd95), 0]
    if len(beyond) == 0:
        return int(distances.points[distances.farthest(), 0])
    slices, counts = np.unique(beyond, return_counts=True)
    return int(slices[np.argmax(counts)])


def _slices_shown(outlines: OutlineDistances, start_slice: int, most: int) -> list[int]:
    """The slices holding either outline, every k-th of them if more than ``most``, always
    with ``start_slice``."""
    held = sorted({int(z) for d in (outlines.prediction_to_truth, outlines.truth_to_prediction)
                   for z in d.points[:, 0]})
    step = -(-len(held) // max(most - 1, 1))
    return sorted(set(held[::step]) | {start_slice})


def _outline_picture(flair: np.ndarray, distances: SurfaceDistances, other: SurfaceDistances,
                     z: int, hd95: float, longest: float, width: int,
                     window: tuple[int, int, int, int]) -> np.ndarray:
    """(width, width, 3) picture of slice ``z`` inside ``window`` (:func:`head_window`):
    dimmed FLAIR, ``other``'s outline white, ``distances``' outline coloured by distance, the
    voxels beyond ``hd95`` drawn larger."""
    top, bottom, left, right = window
    voxel = 0.72 * width / (bottom - top)  # one voxel's side in points (100 dpi)
    fig = Figure(figsize=(width / 100, width / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    shades = np.round(flair * 15) / 15  # 16 grey levels: FLAIR is context, and PNGs shrink
    ax.imshow(0.5 * shades, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    white = other.points[other.points[:, 0] == z]
    ax.scatter(white[:, 2], white[:, 1], s=(0.5 * voxel) ** 2, marker="s", color="white",
               linewidths=0)
    here = distances.points[:, 0] == z
    points, values = distances.points[here], distances.distances[here]
    colours = distance_colours(hd95, longest)
    far = values > hd95
    for chosen, side in ((~far, 0.8), (far, 1.3)):  # beyond HD95 drawn larger, and on top
        ax.scatter(points[chosen, 2], points[chosen, 1], s=(side * voxel) ** 2, marker="s",
                   linewidths=0, c=colours(values[chosen]))
    ax.set(xlim=(left - 0.5, right - 0.5), ylim=(bottom - 0.5, top - 0.5))
    ax.set_axis_off()
    return figure_pixels(fig)


def distance_colours(hd95: float, longest: float):
    """The slider's colours as a function of distances in mm (an array → (N, 4) RGBA): light
    blue (on the other outline) to yellow at ``hd95`` (by the square root of the distance, so
    that the small distances of an outline's bulk differ), then orange to vermilion beyond it, up
    to ``longest``: bright on dimmed FLAIR, and the two parts apart for colour-blind eyes
    (Okabe-Ito colours). Each part has its own map, so the colour changes exactly at HD95."""
    from matplotlib.colors import LinearSegmentedColormap

    near = LinearSegmentedColormap.from_list("near", ["#56b4e9", "#f0e442"])
    far = LinearSegmentedColormap.from_list("far", ["#e69f00", "#d55e00"])

    def colours(distances) -> np.ndarray:
        distances = np.atleast_1d(np.asarray(distances, dtype=np.float64))
        inside = distances <= hd95
        out = np.empty((len(distances), 4))
        # the square root spreads the colours of the outline's bulk, near 0, over more hues
        out[inside] = near(np.sqrt(distances[inside] / max(hd95, 1e-9)))
        out[~inside] = far((distances[~inside] - hd95) / max(longest - hd95, 1e-9))
        return out

    return colours


def _colour_key(hd95: float, longest: float, width: int) -> np.ndarray:
    """The distance colours from 0 to ``longest`` mm, a few round distances and HD95 marked:
    a (h, ``width``, 3) strip to go under a picture."""
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(width / 100, 1.15), dpi=100)  # lettering as large as the captions'
    ax = fig.add_axes((0.05, 0.5, 0.9, 0.2))
    colours = distance_colours(hd95, longest)(np.linspace(0, longest, 512))[None, :, :3]
    ax.imshow(colours, aspect="auto", extent=(0, longest, 0, 1))
    ax.axvline(hd95, color="black", lw=1.5)
    ax.text(hd95, 1.1, f"HD95 {hd95:.1f}", ha="center", va="bottom", fontsize=11,
            transform=ax.get_xaxis_transform())
    ax.set_yticks([])
    ticks = [t for t in MaxNLocator(5).tick_values(0, longest) if 0 <= t <= longest]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=11)
    ax.set_xlabel("mm to the other outline", fontsize=11, labelpad=1)
    return figure_pixels(fig)
