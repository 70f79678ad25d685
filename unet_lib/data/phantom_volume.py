"""One volume of the BraTS-like phantom: a synthetic brain with a tumour, made in 3-D.

BraTS cannot be redistributed, so every notebook, test and the README's command train on
this phantom (:mod:`unet_lib.data.phantom` writes a folder of volumes in the Kaggle format).
Each volume is made in 3D and then cut into axial slices, so neighbouring slices agree as in
a real scan.

How a volume is made (all sizes relative, so any ``image_size`` and ``n_slices`` work):

1. **Brain**: an ellipsoid with a wobbly surface (smooth random field), longer along the
   columns — stored slices show the head turned by 90°, as in the release. Cortical grey
   matter forms a shell of random thickness, white matter fills the inside, deep grey nuclei
   sit beside two crescent-shaped ventricles, and CSF lines the sulci at the surface.
2. **Healthy look-alikes**: small white-matter hyperintensities (bright in FLAIR and T2, like
   oedema) and vessels (bright in T1ce, like enhancing tumour). With CSF (dark in T1, bright
   in T2) they make every single modality ambiguous: no threshold on one channel finds the
   tumour.
3. **Tumour** (one focus, sometimes two): a randomly distorted ball. Distance from its centre
   sets nested regions — oedema halo (ED, label 2) around a core; the core is an enhancing rim
   (ET, label 4) around necrosis (NCR/NET, label 1). One tumour in four is low-grade with no
   enhancing part.
4. **Contrasts** per tissue and modality (FLAIR, T1, T1ce, T2) with per-volume jitter, soft
   (partial-volume) edges, texture, a smooth multiplicative bias field, Gaussian noise, and
   integer "scanner" values. Outside the brain everything is exactly 0 (skull-stripped).
5. Each slice is z-scored per channel (:func:`zscore_slice`), blank slices stay all zero.

Differences from BraTS are listed in the book's data card (``book/data_card.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .normalize import zscore_slice

# Mean intensity of each tissue in FLAIR, T1, T1ce, T2 (relative units, before bias and noise).
TISSUE_CONTRAST = {
    "white_matter": (0.50, 0.80, 0.72, 0.38),
    "grey_matter": (0.62, 0.62, 0.60, 0.52),
    "deep_grey": (0.60, 0.68, 0.64, 0.50),
    "csf": (0.12, 0.22, 0.20, 0.95),
    "wm_lesion": (0.86, 0.62, 0.62, 0.78),   # healthy mimic of oedema in FLAIR and T2
    "vessel": (0.50, 0.70, 1.05, 0.42),      # healthy mimic of enhancing tumour in T1ce
    "oedema": (0.88, 0.56, 0.56, 0.80),
    "necrosis": (0.60, 0.36, 0.30, 0.88),
    "enhancing": (0.78, 0.56, 1.05, 0.68),
}


@dataclass(frozen=True)
class PhantomVolume:
    """One synthetic volume: ``image`` float64 (D, H, W, 4), already z-scored per slice,
    and ``labels`` uint8 (D, H, W) with BraTS labels {0, 1, 2, 4}."""

    image: np.ndarray
    labels: np.ndarray


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int, int], cells: int
                  ) -> torch.Tensor:
    """A smooth random field of unit standard deviation, varying over about ``cells`` cells
    across a slice (trilinear interpolation of coarse Gaussian noise). float32 ``shape``."""
    coarse = rng.standard_normal((max(2, cells * shape[0] // shape[1] + 2), cells + 2, cells + 2))
    field = F.interpolate(torch.from_numpy(coarse.astype(np.float32))[None, None], size=shape,
                          mode="trilinear", align_corners=True)[0, 0]
    return (field - field.mean()) / (field.std() + 1e-6)


def _soft(signed_distance: torch.Tensor, width: float) -> torch.Tensor:
    """Partial-volume weight in [0, 1]: 1 inside (distance > 0), soft over ``width``."""
    return torch.sigmoid(signed_distance / width)


def make_volume(rng: np.random.Generator, image_size: int = 240, n_slices: int = 155
                ) -> PhantomVolume:
    """Make one phantom volume of ``n_slices`` slices of ``image_size × image_size`` pixels:
    a brain with its healthy anatomy (:func:`_anatomy`), a tumour's nested regions
    (:func:`_tumour`), then the four MRI channels painted from both (:func:`_paint`).

    All randomness comes from ``rng``, drawn in that order; the arithmetic runs in float32
    torch on the CPU.
    """
    across = torch.linspace(-1, 1, image_size)
    grid = torch.meshgrid(torch.linspace(-1, 1, n_slices), across, across, indexing="ij")
    edge = 0.7 * 2.0 / image_size  # partial-volume width: 0.7 pixel
    anatomy = _anatomy(rng, grid, edge)
    labels, tumour_layers = _tumour(rng, grid, anatomy, edge)
    image = _paint(rng, anatomy, tumour_layers, edge)
    for s in range(n_slices):
        image[s] = zscore_slice(image[s])
    return PhantomVolume(image=image, labels=labels.numpy())


@dataclass
class _Anatomy:
    """A healthy brain on the volume's (D, H, W) grid: where it is, and its tissues as
    partial-volume weights in [0, 1] (``layers``, painted in their order)."""

    axes: tuple[float, float, float]  # the brain ellipsoid's half-axes (z, y, x)
    brain: torch.Tensor                # bool: inside the brain
    depth_in: torch.Tensor             # ≈ distance from the brain surface, inwards
    layers: list[tuple[str, torch.Tensor]]


def _anatomy(rng: np.random.Generator, grid: tuple[torch.Tensor, ...], edge: float) -> _Anatomy:
    """Step 1: the brain and its healthy anatomy: grey matter, sulci, ventricles, deep grey
    nuclei, white-matter lesions, vessels."""
    z, y, x = grid
    shape, uniform = tuple(z.shape), rng.uniform
    axes = (uniform(0.84, 0.92), uniform(0.52, 0.60), uniform(0.70, 0.78))
    radius = torch.sqrt((z / axes[0]) ** 2 + (y / axes[1]) ** 2 + (x / axes[2]) ** 2)
    radius *= 1 + 0.035 * _smooth_field(rng, shape, 4)
    depth_in = (1 - radius) * (axes[1] + axes[2]) / 2
    grey = _soft(0.10 + 0.04 * _smooth_field(rng, shape, 10) - depth_in, edge)
    sulci = _soft(0.022 + 0.02 * _smooth_field(rng, shape, 14) - depth_in, edge)
    sulci *= 0.35 + 0.65 * _soft(_smooth_field(rng, shape, 16) - 0.3, 0.3)
    ventricles = torch.zeros(shape)
    spread = uniform(0.10, 0.14)
    for side in (-1, 1):
        vx = (x - uniform(-0.05, 0.05)) / uniform(0.30, 0.38)
        vy = (y - side * spread) / uniform(0.035, 0.055) - side * 0.6 * vx ** 2  # crescent
        vz = (z - uniform(-0.05, 0.15)) / uniform(0.25, 0.35)
        ventricles = torch.maximum(ventricles, _soft(1 - torch.sqrt(vz ** 2 + vy ** 2 + vx ** 2),
                                                     0.15))
    deep = torch.zeros(shape)
    for side in (-1, 1):
        d = torch.sqrt(((z - 0.05) / 0.2) ** 2 + ((y - side * 0.2) / 0.09) ** 2 + (x / 0.14) ** 2)
        deep = torch.maximum(deep, _soft(1 - d, 0.15))
    lesions = _soft(_smooth_field(rng, shape, 22) - uniform(2.3, 2.8), 0.12)
    lesions *= (1 - grey) * (depth_in > 0.08)
    vessels = _soft(0.045 - _smooth_field(rng, shape, 18).abs(), 0.015) * (depth_in > 0.02)
    vessels *= _soft(_smooth_field(rng, shape, 6) - 0.8, 0.2)  # only in some places
    layers = [("grey_matter", grey), ("deep_grey", deep),
              ("csf", torch.maximum(ventricles, sulci)), ("wm_lesion", lesions),
              ("vessel", vessels)]
    return _Anatomy(axes, radius < 1, depth_in, layers)


def _tumour(rng: np.random.Generator, grid: tuple[torch.Tensor, ...], anatomy: _Anatomy,
            edge: float) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """Step 2: one tumour (sometimes two foci), nested regions by a distorted distance from
    each focus' centre: oedema, enhancing core, necrosis (none enhancing in a low-grade one).

    Returns:
        ``(labels, layers)``: the (D, H, W) uint8 BraTS labels (0, 1 NCR/NET, 2 ED, 4 ET),
        zero outside the brain, and the tumour's partial-volume weights, painted after the
        healthy tissues.
    """
    z, y, x = grid
    shape, uniform = tuple(z.shape), rng.uniform
    labels = torch.zeros(shape, dtype=torch.uint8)
    oedema_w, core_w, necrosis_w = torch.zeros(shape), torch.zeros(shape), torch.zeros(shape)
    low_grade = rng.random() < 0.25
    for _ in range(1 if rng.random() < 0.85 else 2):
        centre = _tumour_centre(rng, np.array(anatomy.axes))
        extent = (uniform(0.20, 0.42), uniform(0.14, 0.36), uniform(0.14, 0.36))
        distance = torch.sqrt(((z - centre[0]) / extent[0]) ** 2
                              + ((y - centre[1]) / extent[1]) ** 2
                              + ((x - centre[2]) / extent[2]) ** 2)
        distance += 0.13 * _smooth_field(rng, shape, 10) * torch.clamp(distance, max=1.2)
        core = uniform(0.5, 0.8)
        necrosis = core if low_grade else core * uniform(0.4, 0.75)  # low grade: no rim
        width = edge / ((extent[1] + extent[2]) / 2)
        oedema_w = torch.maximum(oedema_w, _soft(1 - distance, width))
        core_w = torch.maximum(core_w, _soft(core - distance, width))
        necrosis_w = torch.maximum(necrosis_w, _soft(necrosis - distance, width))
        focus = torch.where(distance < 1, 2, 0)
        focus = torch.where(distance < core, 4, focus)
        focus = torch.where(distance < necrosis, 1, focus).to(torch.uint8)
        labels = torch.where((focus > 0) & ((labels == 0) | (labels == 2)), focus, labels)
    labels = torch.where(anatomy.brain, labels, 0)
    return labels, [("oedema", oedema_w), ("enhancing", core_w), ("necrosis", necrosis_w)]


def _paint(rng: np.random.Generator, anatomy: _Anatomy,
           tumour_layers: list[tuple[str, torch.Tensor]], edge: float) -> np.ndarray:
    """Step 3: the four channels (FLAIR, T1, T1ce, T2) as integer scanner values, (D, H, W, 4)
    float64, zero outside the brain: white matter, then each tissue blended over it by its
    partial-volume weight, with texture, smooth shading and noise."""
    shape = tuple(anatomy.brain.shape)
    uniform = rng.uniform
    texture = 1 + 0.04 * _smooth_field(rng, shape, 30)
    shading = torch.exp(0.12 * _smooth_field(rng, shape, 2)) * _soft(anatomy.depth_in, edge)
    scale = uniform(300, 900)
    noise_level = uniform(0.025, 0.05)
    image = np.zeros(shape + (4,), np.float64)
    for channel in range(4):
        value = torch.full(shape, TISSUE_CONTRAST["white_matter"][channel] * uniform(0.93, 1.07))
        for name, weight in anatomy.layers + tumour_layers:
            value += weight * (TISSUE_CONTRAST[name][channel] * uniform(0.93, 1.07) - value)
        noise = torch.from_numpy(rng.standard_normal(shape, np.float32))
        value = value * texture * shading + noise_level * noise
        value = torch.round(value.clamp(min=0) * scale)  # integer scanner values
        image[..., channel] = torch.where(anatomy.brain, value, 0).numpy()
    return image


def _tumour_centre(rng: np.random.Generator, axes: np.ndarray) -> np.ndarray:
    """A random point well inside the brain ellipsoid, off the midline more often than not."""
    while True:
        point = rng.uniform(-0.55, 0.55, 3) * axes
        if np.sum((point / axes) ** 2) < 0.55 ** 2 and abs(point[1]) > 0.03:
            return point
