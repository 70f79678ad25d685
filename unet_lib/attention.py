"""What the Attention U-Net's gates look at: their maps for a batch of slices
(:func:`attention_maps`), and the mean coefficient inside the tumour against the rest of the
brain (:func:`attention_contrast`), the air around the head left out (:func:`brain_mask`).
Chapter 8 draws and reads them."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .config import check_batch_size
from .data.samples import SkippedSample
from .inference import mask_on_grid
from .runtime import resolve_device, running_on, tuned_for_full_batches


def brain_mask(image) -> torch.Tensor:
    """(H, W) bool: the pixels inside the head of one slice ``image`` (C, H, W). BraTS is
    skull-stripped: outside the brain every modality is 0 before z-scoring, and after it each
    channel's lowest value; a pixel above that in any channel is brain."""
    image = torch.as_tensor(image, dtype=torch.float32)
    if image.dim() != 3:
        raise ValueError(f"brain_mask takes one slice, (C, H, W); got shape {tuple(image.shape)}")
    lowest = image.flatten(1).amin(1)[:, None, None]
    return (image > lowest + 1e-4).any(0)


def attention_inside_outside(attention, target, brain=None) -> tuple[float, float]:
    """Mean attention coefficient inside the whole tumour of one slice, and outside it.

    Args:
        attention: (1, h, w) or (h, w) coefficients of one gate.
        target: (3, H, W) binary mask; its union (WT) is resized to (h, w) by nearest pixel.
        brain: (H, W) bool, the head (:func:`brain_mask`): "outside" is then the rest of the
            brain, the air around the head left out (its features are the same everywhere,
            and it fills most of a slice); ``None``, or a mask with no pixel: every pixel
            outside the tumour.

    Returns:
        ``(inside, outside)``; ``nan`` for a side with no pixels.
    """
    attention = torch.as_tensor(attention, dtype=torch.float32).cpu()  # masks may be on a GPU
    if attention.dim() not in (2, 3) or attention.numel() != attention.shape[-2:].numel():
        raise ValueError(f"attention must be one gate's map of one slice, (h, w) or (1, h, w); "
                         f"got shape {tuple(attention.shape)}")
    attention = attention.reshape(attention.shape[-2:])
    tumour = mask_on_grid(torch.as_tensor(target).cpu().amax(0), attention.shape)
    rest = ~tumour
    if brain is not None and torch.as_tensor(brain).any():
        rest &= mask_on_grid(torch.as_tensor(brain).cpu(), attention.shape)
    inside = attention[tumour].mean().item() if tumour.any() else float("nan")
    outside = attention[rest].mean().item() if rest.any() else float("nan")
    return inside, outside


@torch.no_grad()
def attention_contrast(model, dataset, indices: Sequence[int], batch_size: int = 32,
                       device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean attention coefficient inside the whole tumour and in the rest of the brain (the air
    around the head left out, :func:`attention_inside_outside`), per gate, averaged over the
    slices ``indices`` of ``dataset`` (unusable samples are left out; a slice whose tumour
    vanishes on a coarse gate's grid counts only outside).

    Returns:
        ``(inside, outside)``: arrays with one value per gate, deepest first.

    Raises:
        ValueError: no index given, or none of their samples usable.
    """
    usable = [s for s in (dataset[i] for i in indices) if not isinstance(s, SkippedSample)]
    if not usable:
        raise ValueError(f"no usable slice among the {len(indices)} indices given: nothing "
                         f"to average the attention over")
    # one call: the model moves to the device once, and attention_maps cuts the batches
    maps = attention_maps(model, torch.stack([image for image, _ in usable]), batch_size,
                          device)
    inside: list[list[float]] = [[] for _ in maps]
    outside: list[list[float]] = [[] for _ in maps]
    for g, attention in enumerate(maps):
        for (image, mask), alpha in zip(usable, attention):
            a, b = attention_inside_outside(alpha, mask, brain_mask(image))
            inside[g].append(a)
            outside[g].append(b)
    return (np.array([np.nanmean(v) for v in inside]), np.array([np.nanmean(v) for v in outside]))


@torch.no_grad()
def attention_maps(model: nn.Module, images: torch.Tensor, batch_size: int = 32,
                   device: torch.device | str | None = None) -> list[torch.Tensor]:
    """The attention gates' maps of an Attention U-Net for ``images`` (N, 4, H, W), computed
    on ``device`` batch by batch (the model goes back to where it was).

    Returns:
        One float32 (N, 1, h, w) tensor on the CPU per gate, deepest first, as
        :meth:`unet_lib.models.unet.UNet.forward` returns them (the last at H × W).
    """
    if len(images) == 0:
        raise ValueError("attention_maps: images holds no image (shape "
                         f"{tuple(images.shape)}); pass (N, 4, H, W) with N ≥ 1")
    device = resolve_device(device)
    check_batch_size(batch_size)
    with running_on(model, device):
        per_batch = []
        for batch in images.split(batch_size):
            with tuned_for_full_batches(len(batch), batch_size):
                per_batch.append(model(batch.to(device), return_attention=True)[1])
    return [torch.cat([maps[g].float().cpu() for maps in per_batch])
            for g in range(len(per_batch[0]))]
