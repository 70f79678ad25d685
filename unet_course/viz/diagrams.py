"""Diagrams drawn from the modules themselves: the whole U (:func:`draw_unet`, chapters 1 and
3), the attention gate and the Improved U-Net's level block. Every label (layer kind, kernel,
channels, sizes) is read from the module given, so a diagram cannot disagree with the code."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from torch import nn

from unet_lib.models import AttentionGate, InvertedBottleneckBlock

#: box colours by kind of layer
COLOURS = {"conv": "#cfe2f3", "norm": "#fff2cc", "act": "#d9ead3", "op": "#f4cccc",
           "io": "#eeeeee"}


def describe_layer(layer: nn.Module) -> tuple[str, str]:
    """``(label, kind)`` of one layer, from its own attributes."""
    if isinstance(layer, nn.Conv2d):
        k = "×".join(str(v) for v in layer.kernel_size)
        depthwise = layer.groups > 1 and layer.groups == layer.in_channels
        name = "depthwise " if depthwise else ""
        bias = "" if layer.bias is not None else ", no bias"
        return f"{name}{k} conv\n{layer.in_channels} → {layer.out_channels}{bias}", "conv"
    if isinstance(layer, nn.BatchNorm2d):
        return f"BatchNorm\n{layer.num_features}", "norm"
    if isinstance(layer, nn.ReLU):
        return "ReLU", "act"
    return type(layer).__name__, "op"


def _box(ax, x: float, y: float, text: str, kind: str, width: float = 1.5,
         fontsize: float = 9, height: float = 0.7) -> None:
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.04", fc=COLOURS[kind], ec="#555555"))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, text: str | None = None) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10,
                                 color="#333333", shrinkA=0, shrinkB=0))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, ha="center",
                fontsize=8.5, color="#333333")


def _canvas(width: float, height: float, title: str) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_axis_off()
    ax.set_title(title, fontsize=12)
    return fig, ax


def draw_gate(gate: AttentionGate, skip_size: int = 120, title: str | None = None) -> Figure:
    """The attention gate: x and g projected by W_x and W_g, g's projection resized
    bilinearly to x's grid, added, ReLU, ψ, sigmoid → α, and α·x. Channel counts from
    ``gate``; map sizes for a skip of ``skip_size``² pixels."""
    c_x, c_g = gate.w_x.in_channels, gate.w_g.in_channels
    fig, ax = _canvas(11, 3.2, title or "attention gate (unet_lib.models.AttentionGate)")
    h, half = skip_size, skip_size // 2
    _box(ax, 0.9, 2, f"skip x\n{c_x} × {h}×{h}", "io")
    _box(ax, 0.9, 0.6, f"gating g\n{c_g} × {half}×{half}", "io")
    _box(ax, 3.0, 2, "W_x: " + describe_layer(gate.w_x)[0], "conv", 1.8)
    _box(ax, 3.0, 0.6, "W_g: " + describe_layer(gate.w_g)[0], "conv", 1.8)
    _box(ax, 5.0, 0.6, f"bilinear resize\n{half}×{half} → {h}×{h}", "op", 1.6, fontsize=8)
    _box(ax, 5.0, 2, "+", "op", 0.5)
    _box(ax, 6.2, 2, "ReLU", "act", 0.8)
    _box(ax, 7.6, 2, "ψ: " + describe_layer(gate.psi)[0], "conv", 1.6)
    _box(ax, 9.0, 2, "sigmoid\n→ α", "act", 0.9)
    _box(ax, 10.3, 2, "α · x", "op", 0.9)
    for a, b in (((1.65, 2), (2.1, 2)), ((1.65, 0.6), (2.1, 0.6)), ((3.9, 0.6), (4.2, 0.6)),
                 ((3.9, 2), (4.75, 2)), ((5.0, 0.95), (5.0, 1.65)), ((5.25, 2), (5.8, 2)),
                 ((6.6, 2), (6.8, 2)), ((8.4, 2), (8.55, 2)), ((9.45, 2), (9.85, 2))):
        _arrow(ax, a, b)
    ax.plot([0.9, 0.9, 10.3], [2.35, 2.75, 2.75], color="#333333", lw=1)  # x goes ahead
    _arrow(ax, (10.3, 2.75), (10.3, 2.35))
    ax.text(5.6, 2.82, "x itself, to be weighted by α", ha="center", fontsize=8.5,
            color="#333333")
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 3.0)
    return fig


def draw_block(block: InvertedBottleneckBlock, title: str | None = None) -> Figure:
    """The Improved U-Net's level block, top to bottom: the projection (when the widths
    differ), then the residual branch layer by layer, the addition and the last ReLU — read
    from ``block`` — with the residual connection drawn beside them."""
    layers = [layer for layer in block.residual.modules()
              if not isinstance(layer, (nn.Sequential, nn.Identity, type(block.residual)))
              and not list(layer.children())]  # nn.Identity: a batch norm switched off
    stages = [("input", "io")]
    if isinstance(block.project, nn.Conv2d):
        stages.append(("projection: " + describe_layer(block.project)[0].replace("\n", " "),
                       "conv"))
    stages += [(text.replace("\n", ", "), kind) for text, kind in map(describe_layer, layers)]
    stages += [("+ (projected) input", "op"), ("ReLU", "act")]
    step, width, x = 0.8, 3.6, 2.0
    fig, ax = _canvas(5.2, step * len(stages) + 0.6,
                      title or "Improved U-Net level\n(unet_lib.models.InvertedBottleneckBlock)")
    ys = [-step * i for i in range(len(stages))]
    for y, (text, kind) in zip(ys, stages):
        _box(ax, x, y, text, kind, width, fontsize=9, height=0.5)
    for a, b in zip(ys, ys[1:]):
        _arrow(ax, (x, a - 0.25), (x, b + 0.25))
    start = ys[1] if isinstance(block.project, nn.Conv2d) else ys[0]  # after the projection
    right, side = x + width / 2, x + width / 2 + 0.35
    ax.plot([right, side, side], [start, start, ys[-2]], color="#333333", lw=1)
    _arrow(ax, (side, ys[-2]), (right + 0.02, ys[-2]))
    ax.text(side + 0.1, (start + ys[-2]) / 2, "shortcut:\nthe input\nadded back", va="center",
            fontsize=8.5)
    ax.set_xlim(0, 5.2)
    ax.set_ylim(ys[-1] - 0.45, 0.45)
    return fig


def draw_unet(model, image_size: int = 240, title: str | None = None) -> Figure:
    """The U shape of ``model``: one box per encoder/decoder level, labelled with its
    channels and size, arrows for max-pool (down), transposed convolution (up) and skips
    (``concat``, ``add``, or ``gate`` for attention)."""
    from unet_lib.summary import level_table

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
        ax.text(x, y, f"{c} ch\n{h}×{w}", ha="center", va="center", fontsize=11)
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
        if model.attention:  # the gate on the skip, driven by the coarser decoder level (g)
            gate_x = 2 * depth - level - 1
            ax.annotate("", xy=(gate_x, -level - 0.1), xytext=(gate_x, -level - 1 + 0.3),
                        arrowprops=dict(arrow, color="#8e44ad", ls=":"))
            ax.plot(gate_x, -level, marker="D", ms=9, color="#8e44ad")
            ax.text(gate_x + 0.06, -level - 0.5, "g", color="#8e44ad", fontsize=11)
            if level == 0:  # the deeper skips are too short for the words
                ax.text(depth, 0.08, "skip → gate → concat", ha="center", va="bottom",
                        color="grey", fontsize=11)
        else:
            ax.text(depth, -level + 0.08, skip, ha="center", va="bottom", color="grey",
                    fontsize=11)
    ax.text(0, 0.55, f"input {model.in_channels} ch", ha="center")
    ax.text(2 * depth, 0.55, f"1×1 head → {model.out_channels} ch", ha="center")
    handles = [Patch(fc="#aed6f1", ec="k", label="encoder level"),
               Patch(fc="#f0b27a", ec="k", label="bottleneck"),
               Patch(fc="#a9dfbf", ec="k", label="decoder level"),
               Patch(color="#c0392b", label="2×2 max-pool"),
               Patch(color="#27ae60", label="2×2 transposed conv"),
               Patch(color="grey", label=f"skip ({skip})")]
    if model.attention:
        handles.append(Patch(color="#8e44ad", label="attention gate, gated by the level below (g)"))
    ax.legend(handles=handles, loc="lower right", fontsize="small")
    ax.set_xlim(-0.7, 2 * depth + 0.7)
    ax.set_ylim(-depth - 0.6, 0.9)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig
