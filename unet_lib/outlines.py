"""How far apart two outlines lie: surface voxels, their distances, and the HD95 built on them.

Dice counts overlapping voxels. The Hausdorff distances ask where the outlines are: from
every voxel on the surface of one mask, the distance to the nearest surface voxel of the
other. :class:`SurfaceDistances` keeps those distances *and* the voxels they join, so that a
picture can show which part of an outline makes a score large;
:func:`hausdorff95` reduces them to the one number BraTS reports.

>>> both = OutlineDistances.between(pred[0], truth[0], spacing=(1, 1, 1))   # one region
>>> both.hd95, both.deciding, both.prediction_to_truth.farthest()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: HD95 of a region that is empty in exactly one of prediction and reference, in mm: the value
#: the BraTS challenge's evaluation uses (the diagonal of its 240×240×155 mm volume, 373.13)
HD95_ONE_EMPTY = 373.13


def surface(mask: np.ndarray) -> np.ndarray:
    """The surface voxels (bool, same shape) of a binary mask (bool or 0/1): the mask minus its
    erosion by the 6-neighbour (in 2-D, 4-neighbour) cross; voxels on the array's border count
    as surface."""
    from scipy import ndimage

    mask = np.asarray(mask) != 0  # 0/1 floats or ints as well as bool

    return mask & ~ndimage.binary_erosion(mask)


@dataclass(frozen=True)
class SurfaceDistances:
    """From every surface voxel of one mask to the nearest surface voxel of another.

    Attributes:
        points: (N, d) int64 voxel indices of the first mask's surface voxels (d = 2 or 3).
        nearest: (N, d) int64 the second mask's surface voxel nearest to each of them.
        distances: (N,) float64 the distance of each pair, in the units of the spacing (mm).
    """

    points: np.ndarray
    nearest: np.ndarray
    distances: np.ndarray

    def percentile(self, q: float = 95.0) -> float:
        """The ``q``-th percentile of the distances (linear interpolation, as HD95 takes it)."""
        return float(np.percentile(self.distances, q))

    def farthest(self) -> int:
        """The index (into ``points``) of the voxel farthest from the other outline; the
        first such on a tie."""
        return int(np.argmax(self.distances))

    def beyond(self, distance: float) -> np.ndarray:
        """(N,) bool: which voxels lie farther than ``distance`` from the other outline."""
        return self.distances > distance


def surface_distances(a, b, spacing) -> SurfaceDistances:
    """The distances from each surface voxel of mask ``a`` to the nearest surface voxel of mask
    ``b`` (same shape, both non-empty), with ``spacing`` the voxel size along each axis."""
    from scipy.spatial import cKDTree

    scale = np.asarray(spacing, dtype=np.float64)
    if scale.shape != (np.ndim(a),) or np.shape(a) != np.shape(b):
        raise ValueError(f"masks {np.shape(a)} and {np.shape(b)} must have the same shape, and "
                         f"spacing {tuple(np.atleast_1d(scale))} one voxel size per axis")
    points = np.argwhere(surface(a))
    targets = np.argwhere(surface(b))
    if len(points) == 0 or len(targets) == 0:
        raise ValueError("surface distances need two non-empty masks: the "
                         + ("first" if len(points) == 0 else "second") + " is empty")
    distances, which = cKDTree(targets * scale).query(points * scale, k=1)
    return SurfaceDistances(points, targets[which], np.asarray(distances, dtype=np.float64))


@dataclass(frozen=True)
class OutlineDistances:
    """The surface distances between the prediction and the truth of one region, both ways.

    ``hd95`` is the larger of the two directions' 95th percentiles (``percentile``); the
    direction that gives it is ``deciding``: ``"prediction_to_truth"`` when predicted outline
    lies far from the truth (a false blob), ``"truth_to_prediction"`` when part of the truth
    lies far from anything predicted (a missed part).
    """

    prediction_to_truth: SurfaceDistances
    truth_to_prediction: SurfaceDistances
    percentile: float = 95.0

    @classmethod
    def between(cls, pred, truth, spacing, percentile: float = 95.0) -> "OutlineDistances":
        """Both directions for binary masks ``pred`` and ``truth`` (D, H, W) or (H, W),
        tensors or arrays, neither empty; ``spacing`` one voxel size per axis, in mm."""
        pred, truth = as_bool(pred), as_bool(truth)
        if pred.shape != truth.shape or pred.ndim != len(spacing):
            raise ValueError(f"pred {pred.shape} and truth {truth.shape} must be masks of the "
                             f"same shape, one axis per spacing value ({len(spacing)})")
        for name, mask in (("pred", pred), ("truth", truth)):
            if not mask.any():
                raise ValueError(f"{name} is empty: there is no outline to measure from (HD95 "
                                 f"is then {HD95_ONE_EMPTY} mm by the BraTS convention)")
        return cls(surface_distances(pred, truth, spacing),
                   surface_distances(truth, pred, spacing), percentile)

    @property
    def deciding(self) -> str:
        """The direction whose percentile is the HD95 (the prediction's on a tie)."""
        return ("prediction_to_truth" if self.prediction_to_truth.percentile(self.percentile)
                >= self.truth_to_prediction.percentile(self.percentile)
                else "truth_to_prediction")

    @property
    def hd95(self) -> float:
        """The symmetric percentile Hausdorff distance, in mm: the ``percentile``-th (95 unless
        set otherwise) of the deciding direction."""
        return getattr(self, self.deciding).percentile(self.percentile)

    @property
    def hausdorff(self) -> float:
        """The plain (100th percentile) Hausdorff distance: the farthest voxel either way."""
        return float(max(self.prediction_to_truth.distances.max(),
                         self.truth_to_prediction.distances.max()))


def hausdorff95(pred, target, spacing=(1.0, 1.0, 1.0), percentile: float = 95.0) -> np.ndarray:
    """The 95th-percentile Hausdorff distance (HD95) between binary masks, per channel, in mm.

    For each channel: the surface voxels of prediction and reference (:func:`surface`), the
    distance from every surface voxel of one to the nearest surface voxel of the other, the
    95th percentile of those distances in each direction (linear interpolation), and the larger
    of the two (the symmetric form; :class:`OutlineDistances` keeps the distances themselves).
    Dice counts overlapping voxels; HD95 says how far the outlines lie apart, so a small false
    positive far from the tumour, which barely moves Dice, shows as a large HD95. The same
    definition as MONAI's ``compute_hausdorff_distance(..., percentile=95, directed=False)``.

    Empty masks, as the BraTS evaluation: both empty → 0; exactly one empty →
    :data:`HD95_ONE_EMPTY` (373.13 mm), whatever the volume's size.

    Args:
        pred, target: binary masks (C, D, H, W), tensors or arrays; 2-D masks (C, H, W) with a
            2-element ``spacing``. The channel axis is always there (one mask: ``mask[None]``):
            a (3, H, W) stack would otherwise read as one volume 3 slices deep.
        spacing: the voxel size along each spatial axis, in mm (BraTS: 1 mm).

    Returns:
        float64 array (C,) of distances in mm.
    """
    pred, target = as_bool(pred), as_bool(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {pred.shape} and "
                         f"{target.shape}")
    if np.ndim(spacing) != 1:
        raise ValueError(f"spacing must be one voxel size per spatial axis, in mm, e.g. "
                         f"(1, 1, 1) for (D, H, W); got {spacing!r}")
    spatial = len(spacing)
    if pred.ndim != spatial + 1:
        axes = ", ".join("DHW"[-spatial:])
        raise ValueError(f"expected masks (C, {axes}) for a spacing of {spatial} axes, got "
                         f"shape {pred.shape}: " + (
                             f"one mask ({axes}) needs its channel axis first: mask[None]"
                             if pred.ndim == spatial else
                             "give one spacing per spatial axis, after the channel axis (2-D "
                             "masks (C, H, W): spacing=(1, 1))"))
    distances = np.empty(len(pred))
    for c, (p, t) in enumerate(zip(pred, target)):
        if not p.any() and not t.any():
            distances[c] = 0.0
        elif not p.any() or not t.any():
            distances[c] = HD95_ONE_EMPTY
        else:
            distances[c] = OutlineDistances.between(p, t, spacing, percentile).hd95
    return distances


def as_bool(mask) -> np.ndarray:
    """A mask (tensor on any device, or array; bool, 0/1 or probabilities) as a bool array,
    true above 0.5."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask) > 0.5
