"""What chapter 7's distance curves show, in a sentence (:func:`read_curves`): which direction
decides a patient's HD95, and where the HD95 lies against the widest jump of that direction's
curve (:class:`unet_lib.outlines.OutlineDistances`; the curves are drawn by
:func:`unet_course.viz.outlines.distance_curves`)."""

from __future__ import annotations

import numpy as np

from unet_lib.outlines import OutlineDistances, SurfaceDistances

#: the two directions of an :class:`~unet_lib.outlines.OutlineDistances`
DIRECTIONS = ("prediction_to_truth", "truth_to_prediction")


def read_curves(outlines: OutlineDistances, gap_mm: float = 5.0) -> str:
    """What the distance curves show, in a sentence for the book: which direction's curve
    decides, and where its HD95 lies against the curve's widest jump (a stretch of at least
    ``gap_mm`` with no voxel): among the voxels beyond it (they are over 5 % of the outline and
    set HD95), before it (under 5 %: they move only the plain Hausdorff distance), or inside
    it; or, without such a jump, in the curve's tail."""
    deciding: SurfaceDistances = getattr(outlines, outlines.deciding)
    other: SurfaceDistances = getattr(outlines, next(name for name in DIRECTIONS
                                                     if name != outlines.deciding))
    which = "predicted" if outlines.deciding == "prediction_to_truth" else "true"
    hd95, ranked = outlines.hd95, np.sort(deciding.distances)
    gaps = np.diff(ranked)
    if not len(gaps) or gaps.max() < gap_mm:
        return (f"Here the {which} outline's curve decides, and it runs on without a wide "
                f"gap: HD95 ({hd95:.1f} mm) lies in its tail, where its last 5 % of voxels "
                f"begin")
    # the widest jump at or below the 95th percentile's rank, else the widest above it
    below = gaps[:int(np.ceil(0.95 * (len(ranked) - 1)))]
    gap = int(np.argmax(below)) if len(below) and below.max() >= gap_mm else int(np.argmax(gaps))
    near_side, far_side = ranked[gap], ranked[gap + 1]
    n_far = len(ranked) - gap - 1
    share = n_far / len(ranked)
    beyond_gap = ("the one voxel beyond that gap is" if n_far == 1
                  else f"the {n_far} beyond that gap are")
    jump = (f"Here the {which} outline's curve decides, and it jumps: none of its "
            f"{len(ranked)} voxels lies between {near_side:.1f} and {far_side:.1f} mm from the "
            f"other outline, and {beyond_gap} {100 * share:.2f} % of them")
    if hd95 >= far_side:
        without = max(near_side, other.percentile(outlines.percentile))
        return (f"{jump}: {'just ' if share < 0.06 else ''}over 5 %, so its 95th percentile "
                f"lands among them, and HD95 ({hd95:.1f} mm) says where those far voxels are, "
                f"not how close the rest came. Had they been fewer than 5 % of the outline, "
                f"HD95 would have been about {without:.1f} mm")
    if hd95 <= near_side:
        far_slice = int(deciding.points[deciding.farthest(), 0])
        return (f"{jump}: under 5 %, so its 95th percentile stays on the near side of the gap, "
                f"and HD95 ({hd95:.1f} mm) says how close the bulk came; the far "
                f"{'voxel' if n_far == 1 else 'voxels'}, up to {ranked[-1]:.1f} mm away (the "
                f"farthest on slice {far_slice}), {'moves' if n_far == 1 else 'move'} only the "
                f"plain Hausdorff distance")
    return (f"{jump}: about 5 %, so its 95th percentile falls inside the gap, between the last "
            f"near voxel and the first far one (HD95 {hd95:.1f} mm): one voxel more or less "
            f"beyond the gap moves it a long way")
