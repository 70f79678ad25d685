"""The course's pictures, in plain matplotlib. Every function returns a ``Figure``.

Masks are shown as RGB images: red = NCR/NET, green = ED, blue = ET (the three label channels
in order), so overlapping predictions mix colours. Images are channels-first tensors or arrays
as the datasets yield them: image (4, H, W), mask or probabilities (3, H, W).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .data.kaggle import MASK_CHANNELS, MODALITIES, REGIONS

CHANNEL_COLOURS = ("red", "green", "blue")


def _numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def mask_to_rgb(mask) -> np.ndarray:
    """(3, H, W) mask or probabilities in [0, 1] → (H, W, 3) float RGB image."""
    mask = _numpy(mask)
    if mask.ndim != 3 or mask.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) mask, got shape {mask.shape}")
    return np.clip(mask.transpose(1, 2, 0).astype(np.float32), 0, 1)  # float: 1 is full colour


def _legend(ax) -> None:
    ax.legend(handles=[Patch(color=c, label=n) for c, n in zip(CHANNEL_COLOURS, MASK_CHANNELS)],
              loc="lower right", fontsize="small", framealpha=0.8)


def _off(axes) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def show_modalities(image, mask=None, title: str | None = None) -> Figure:
    """The four MRI channels (FLAIR, T1, T1ce, T2) of one (4, H, W) slice, and its mask."""
    image = _numpy(image)
    n = 4 + (mask is not None)
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3.2), constrained_layout=True)
    for ax, channel, name in zip(axes, image, MODALITIES):
        ax.imshow(channel, cmap="gray")
        ax.set_title(name)
    if mask is not None:
        axes[-1].imshow(mask_to_rgb(mask))
        axes[-1].set_title("mask (R NCR, G ED, B ET)")
    _off(axes)
    if title:
        fig.suptitle(title)
    return fig


def show_prediction(image, target, probs, threshold: float | None = None,
                    title: str | None = None) -> Figure:
    """FLAIR, the ground-truth mask and the prediction as RGB, side by side.

    Args:
        image: (4, H, W) input slice (FLAIR is shown).
        target: (3, H, W) binary ground truth.
        probs: (3, H, W) predicted probabilities.
        threshold: if given, also show the prediction binarized at this probability.
    """
    from .metrics import binarize, dice

    panels = [("FLAIR", _numpy(image)[0], None), ("ground truth", mask_to_rgb(target), None),
              ("prediction (probabilities)", mask_to_rgb(probs), None)]
    if threshold is not None:
        binary = binarize(torch.as_tensor(_numpy(probs)), threshold, logits=False)
        scores = dice(binary[None], torch.as_tensor(_numpy(target))[None])
        label = ", ".join(f"{n} {v:.2f}" for n, v in zip(MASK_CHANNELS, scores.tolist()))
        panels.append((f"binarized at {threshold:.2f}", mask_to_rgb(binary), f"Dice {label}"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6),
                             constrained_layout=True)
    for ax, (name, picture, caption) in zip(axes, panels):
        ax.imshow(picture, cmap="gray")
        ax.set_title(name, fontsize="medium")
        if caption:
            ax.set_xlabel(caption, fontsize="small")
    _legend(axes[1])
    _off(axes)
    if title:
        fig.suptitle(title)
    return fig


def plot_history(history, title: str | None = None) -> Figure:
    """Training and validation loss, and validation Dice per channel/region, per epoch.

    ``history`` is a :class:`unet_lib.train.History` or a list of its records.
    """
    records = getattr(history, "records", history)
    epochs = [r["epoch"] for r in records]
    with_val = all("val" in r for r in records) and records
    fig, axes = plt.subplots(1, 2 if with_val else 1, figsize=(11 if with_val else 5.5, 3.8),
                             constrained_layout=True, squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, [r["train_loss"] for r in records], "o-", label="training")
    if with_val:
        ax.plot(epochs, [r["val_loss"] for r in records], "s-", label="validation")
    ax.set(xlabel="epoch", ylabel="BCE loss", yscale="log", title="loss")
    ax.legend()
    if with_val:
        ax = axes[0, 1]
        for name in records[0]["val"]["dice"]:
            ax.plot(epochs, [r["val"]["dice"][name] for r in records], "o-", label=name)
        ax.set(xlabel="epoch", ylabel="Dice", ylim=(0, 1), title="validation Dice")
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title)
    return fig


def show_attention(image, maps: Sequence, title: str | None = None, alpha: float = 0.5,
                   stretch: bool = True) -> Figure:
    """Attention coefficients of each gate over the input's FLAIR channel.

    Args:
        image: (4, H, W) input slice.
        maps: the gates' maps for this slice, each (1, h, w) or (h, w), as returned by
            ``AttentionUNet(x, return_attention=True)`` (deepest gate first).
        stretch: spread each map's colours over its own range (written in the panel's title)
            rather than over [0, 1]: gates early in training stay close to 0.5, and their
            pattern would be invisible on the full scale.
    """
    image = _numpy(image)
    fig, axes = plt.subplots(1, len(maps) + 1, figsize=(3 * (len(maps) + 1), 3.4),
                             constrained_layout=True)
    axes[0].imshow(grey_picture(image[0]), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("FLAIR")
    for ax, attention in zip(axes[1:], maps):
        values = _numpy(attention).reshape(np.shape(attention)[-2:])
        ax.imshow(attention_overlay(image[0], values, alpha, stretch))
        h, w = values.shape
        scale = "stretched" if stretch and stretched(values) else "0…1 scale"
        ax.set_title(f"gate at {h}×{w}\nα {values.min():.2f} – {values.max():.2f} ({scale})",
                     fontsize="medium")
    fig.supxlabel("dark purple = suppressed most, yellow = passed most; a map spanning at least "
                  f"{MIN_STRETCH} is stretched to its own range", fontsize="small")
    _off(axes)
    if title:
        fig.suptitle(title)
    return fig


# --- pictures for the static sliders (unet_lib.slider): arrays, not figures -----------------

def grey_picture(channel) -> np.ndarray:
    """(H, W) MRI channel → (H, W) grey levels in [0, 1], clipped at the 1st/99.5th
    percentile of the non-background pixels (the z-scored background is the minimum)."""
    channel = _numpy(channel).astype(np.float32)
    inside = channel[channel > channel.min()]
    if inside.size == 0:
        return np.zeros_like(channel)
    low, high = np.percentile(inside, [1, 99.5])
    return np.clip((channel - low) / max(high - low, 1e-6), 0, 1)


#: the smallest range of attention coefficients that ``stretch`` spreads over the colour map
MIN_STRETCH = 0.02


def stretched(attention) -> bool:
    """Whether a map's range is wide enough (:data:`MIN_STRETCH`) to stretch its colours."""
    values = _numpy(attention)
    return float(values.max() - values.min()) >= MIN_STRETCH


def attention_overlay(channel, attention, alpha: float = 0.5, stretch: bool = False
                      ) -> np.ndarray:
    """A gate's coefficients (h, w), upsampled bilinearly to the (H, W) channel's size and
    blended over it with the ``inferno`` colour map → (H, W, 3) RGB in [0, 1].

    ``stretch`` maps the coefficients' own min…max (rather than 0…1) to the colour map when
    they span at least :data:`MIN_STRETCH`; a flatter map is drawn on the 0…1 scale, so that
    noise is not blown up into a pattern."""
    import torch.nn.functional as F

    grey = grey_picture(channel)
    attention = torch.as_tensor(_numpy(attention), dtype=torch.float32)
    attention = attention.reshape(1, 1, *attention.shape[-2:])
    up = F.interpolate(attention, size=grey.shape, mode="bilinear", align_corners=False)
    up = up[0, 0].clamp(0, 1)
    if stretched(attention) and stretch:
        low, high = attention.min(), attention.max()
        up = (up - low) / (high - low)
    colours = plt.get_cmap("inferno")(up.clamp(0, 1).numpy())[..., :3]
    return (1 - alpha) * grey[..., None] + alpha * colours


def _dice_caption(binary: torch.Tensor, target: torch.Tensor) -> str:
    from .metrics import dice, to_regions

    scores = dice(to_regions(binary[None]), to_regions(target[None]))
    return ", ".join(f"{name} {value:.2f}" for name, value in zip(REGIONS, scores.tolist()))


def threshold_slider(images, targets, probs, names: Sequence[str],
                     thresholds: Sequence[float] = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2)),
                     start_threshold: float = 0.5, title: str | None = None):
    """A static :class:`~unet_lib.slider.ImageSlider` over slices and thresholds: FLAIR,
    ground truth, probabilities as RGB, and the prediction binarized at the chosen threshold,
    with the Dice of every channel and region in the caption.

    Args:
        images: (N, 4, H, W) inputs; targets: (N, 3, H, W) binary masks;
        probs: (N, 3, H, W) predicted probabilities; names: N slice labels.
        thresholds: the slider's positions (19 from 0.05 to 0.95 by default).
        start_threshold: the slider's first position (the closest of ``thresholds``).
    """
    from .metrics import binarize
    from .slider import ImageSlider

    images, targets, probs = (torch.as_tensor(_numpy(x)) for x in (images, targets, probs))
    if not len(images) == len(targets) == len(probs) == len(names):
        raise ValueError(f"images, targets, probs and names must have the same length, got "
                         f"{len(images)}, {len(targets)}, {len(probs)} and {len(names)}")
    thresholds = [float(t) for t in thresholds]
    if any(not 0 <= t <= 1 for t in thresholds):
        raise ValueError(f"thresholds must lie in [0, 1], got {thresholds}")
    start = int(np.argmin([abs(t - start_threshold) for t in thresholds]))
    binary = {}

    def binarized(position):
        if position not in binary:
            i, j = position
            binary[position] = binarize(probs[i], thresholds[j], logits=False)
        return binary[position]

    def pictures(position):
        i, _ = position
        return [grey_picture(images[i, 0]), mask_to_rgb(targets[i]), mask_to_rgb(probs[i]),
                mask_to_rgb(binarized(position))]

    def caption(position):
        i, j = position
        return (f"{names[i]}; threshold {thresholds[j]:.2f}: Dice "
                f"{_dice_caption(binarized(position), targets[i])}")

    return ImageSlider({"slice": list(names), "threshold": [f"{t:.2f}" for t in thresholds]},
                       ["FLAIR", "ground truth", "probabilities as RGB", "binarized"],
                       pictures, caption, start=(0, start), title=title, width=150,
                       note="red NCR/NET · green ED · blue ET (overlaps mix: green + blue = "
                            "cyan)")


def attention_slider(images, targets, maps: Sequence, names: Sequence[str],
                     title: str | None = None, start_gate: int = -1):
    """A static slider over slices and gate levels: FLAIR, the ground truth, and one gate's
    attention coefficients over FLAIR, with the mean coefficient inside and outside the whole
    tumour in the caption.

    Args:
        images: (N, 4, H, W); targets: (N, 3, H, W);
        maps: one (N, 1, h, w) tensor per gate, deepest first (as the model returns them);
        names: N slice labels.
        start_gate: the gate shown first (index into ``maps``; default the last,
            full-resolution one).
    """
    from .slider import ImageSlider

    images, targets = torch.as_tensor(_numpy(images)), torch.as_tensor(_numpy(targets))
    maps = [torch.as_tensor(_numpy(m)) for m in maps]
    levels = [f"{m.shape[-2]}×{m.shape[-1]}" for m in maps]

    def pictures(position):
        i, g = position
        return [grey_picture(images[i, 0]), mask_to_rgb(targets[i]),
                attention_overlay(images[i, 0], maps[g][i], stretch=True)]

    def caption(position):
        i, g = position
        inside, outside = attention_inside_outside(maps[g][i], targets[i])
        scale = ("colours stretched to this range" if stretched(maps[g][i])
                 else "too flat to stretch: colours on the 0…1 scale")
        return (f"{names[i]}; gate at {levels[g]}: α from {maps[g][i].min():.2f} to "
                f"{maps[g][i].max():.2f} ({scale}); mean inside the tumour {inside:.3f}, "
                f"outside {outside:.3f}")

    return ImageSlider({"slice": list(names), "gate": levels},
                       ["FLAIR", "ground truth", "attention α over FLAIR"],
                       pictures, caption, title=title, start=(0, start_gate % len(maps)),
                       note="α over FLAIR: dark purple = lowest α of the map (skip "
                            "suppressed most), yellow = highest (passed most)")


def attention_inside_outside(attention, target) -> tuple[float, float]:
    """Mean attention coefficient inside and outside the whole tumour of one slice.

    Args:
        attention: (1, h, w) or (h, w) coefficients of one gate.
        target: (3, H, W) binary mask; its union (WT) is resized to (h, w) by nearest pixel.

    Returns:
        ``(inside, outside)``; ``nan`` for a side with no pixels.
    """
    import torch.nn.functional as F

    attention = torch.as_tensor(_numpy(attention), dtype=torch.float32).reshape(
        *np.shape(attention)[-2:])
    tumour = torch.as_tensor(_numpy(target)).amax(0)[None, None].float()
    tumour = F.interpolate(tumour, size=attention.shape, mode="nearest")[0, 0] > 0.5
    inside = attention[tumour].mean().item() if tumour.any() else float("nan")
    outside = attention[~tumour].mean().item() if (~tumour).any() else float("nan")
    return inside, outside


def draw_unet(model, image_size: int = 240, title: str | None = None) -> Figure:
    """The U shape of ``model``: one box per encoder/decoder level, labelled with its
    channels and size, arrows for max-pool (down), transposed convolution (up) and skips
    (``concat``, ``add``, or ``gate`` for attention)."""
    from .summary import level_table

    rows = {row["stage"]: row for row in level_table(model, image_size)}
    depth = model.depth
    fig, ax = plt.subplots(figsize=(11, 4.6), constrained_layout=True)
    boxes = {}
    for level in range(depth + 1):
        name = "bottleneck" if level == depth else f"encoder {level}"
        boxes[("enc", level)] = (level, -level, rows[name]["shape"])
        if level < depth:
            boxes[("dec", level)] = (2 * depth - level, -level, rows[f"decoder {level}"]["shape"])
    for (kind, level), (x, y, (c, h, w)) in boxes.items():
        colour = "#f0b27a" if level == depth else ("#aed6f1" if kind == "enc" else "#a9dfbf")
        ax.add_patch(plt.Rectangle((x - 0.42, y - 0.3), 0.84, 0.6, color=colour, ec="k"))
        ax.text(x, y, f"{c} ch\n{h}×{w}", ha="center", va="center", fontsize=9)
    skip = "gate" if model.attention else ("add" if model.additive_skips else "concat")
    arrow = dict(arrowstyle="->", lw=1.5)
    for level in range(depth):
        ax.annotate("", xy=(level + 1, -level - 1 + 0.3), xytext=(level, -level - 0.3),
                    arrowprops=dict(arrow, color="#c0392b"))
        ax.annotate("", xy=(2 * depth - level, -level - 0.3),
                    xytext=(2 * depth - level - 1, -level - 1 + 0.3),
                    arrowprops=dict(arrow, color="#27ae60"))
        ax.annotate("", xy=(2 * depth - level - 0.42, -level), xytext=(level + 0.42, -level),
                    arrowprops=dict(arrow, color="grey", ls="--"))
        ax.text(depth, -level + 0.08, skip, ha="center", va="bottom", color="grey", fontsize=9)
    ax.text(0, 0.55, f"input {model.in_channels} ch", ha="center")
    ax.text(2 * depth, 0.55, f"1×1 head → {model.out_channels} ch", ha="center")
    handles = [Patch(color="#c0392b", label="2×2 max-pool"),
               Patch(color="#27ae60", label="2×2 transposed conv"),
               Patch(color="grey", label=f"skip ({skip})")]
    ax.legend(handles=handles, loc="lower right", fontsize="small")
    ax.set_xlim(-0.7, 2 * depth + 0.7)
    ax.set_ylim(-depth - 0.6, 0.9)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig


def plot_histories(histories: dict, metric: str = "WT", title: str | None = None) -> Figure:
    """Validation loss and validation Dice of one channel or region (``metric``) per epoch,
    for several models: ``{name: History or records}``."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    for name, history in histories.items():
        records = getattr(history, "records", history)
        epochs = [r["epoch"] for r in records]
        axes[0].plot(epochs, [r["val_loss"] for r in records], "o-", label=name)
        axes[1].plot(epochs, [r["val"]["dice"][metric] for r in records], "o-", label=name)
    axes[0].set(xlabel="epoch", ylabel="BCE loss", yscale="log", title="validation loss")
    axes[1].set(xlabel="epoch", ylabel="Dice", ylim=(0, 1), title=f"validation Dice, {metric}")
    for ax in axes:
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


@torch.no_grad()
def attention_contrast(model, dataset, indices: Sequence[int], batch_size: int = 32,
                       device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean attention coefficient inside and outside the whole tumour, per gate, averaged over
    the slices ``indices`` of ``dataset`` (unusable samples are left out; a slice whose tumour
    vanishes on a coarse gate's grid counts only outside).

    Returns:
        ``(inside, outside)``: arrays with one value per gate, deepest first.
    """
    from .train import pick_device

    device = pick_device("auto") if device is None else torch.device(device)
    home = next(model.parameters(), torch.empty(0)).device  # where to put the model back
    model = model.to(device).eval()
    inside: list[list[float]] = []
    outside: list[list[float]] = []
    samples = (dataset[i] for i in indices)
    usable = [s for s in samples if isinstance(s, tuple)]
    for start in range(0, len(usable), batch_size):
        batch = usable[start:start + batch_size]
        images = torch.stack([image for image, _ in batch]).to(device)
        _, maps = model(images, return_attention=True)
        for g, attention in enumerate(maps):
            if len(inside) <= g:
                inside.append([]), outside.append([])
            for (_, mask), alpha in zip(batch, attention.float().cpu()):
                a, b = attention_inside_outside(alpha, mask)
                inside[g].append(a)
                outside[g].append(b)
    model.to(home)
    return (np.array([np.nanmean(v) for v in inside]), np.array([np.nanmean(v) for v in outside]))
