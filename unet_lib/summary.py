"""Tables that describe a model: each stage's output shape and parameters, as the book shows
them."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .models import UNet, count_parameters
from .runtime import running_on


def level_table(model: UNet, image_size: int = 240) -> list[dict]:
    """One row per stage of a U-Net for a (1, in_channels, image_size, image_size) input.

    Returns:
        Rows in execution order, each ``{"stage": str, "level": int, "shape": (C, H, W),
        "parameters": int}``. Stages: ``encoder l`` (l = 0 … depth; the last is the
        bottleneck), then per decoder level ``up l``, ``gate l`` (attention only),
        ``decoder l``, and ``head``. ``level`` is l (the head is level 0).
    """
    stages: list[tuple[str, int, nn.Module]] = []
    for level, block in enumerate(model.encoder):
        name = "bottleneck" if level == model.depth else f"encoder {level}"
        stages.append((name, level, block))
    for i, level in enumerate(reversed(range(model.depth))):
        stages.append((f"up {level}", level, model.decoder[i].up))
        if model.attention:
            stages.append((f"gate {level}", level, model.decoder[i].gate))
        stages.append((f"decoder {level}", level, model.decoder[i].block))
    stages.append(("head", 0, model.head))

    rows, handles = [], []
    for name, level, module in stages:
        def record(module, inputs, output, name=name, level=level):
            output = output[0] if isinstance(output, tuple) else output
            rows.append({"stage": name, "level": level, "shape": tuple(output.shape[1:]),
                         "parameters": count_parameters(module)})
        handles.append(module.register_forward_hook(record))
    weight = next(model.parameters())  # a model on a GPU, or in float64, is run as it is
    try:
        with torch.no_grad(), running_on(model, weight.device):  # in eval mode, then as it came
            model(torch.zeros(1, model.in_channels, image_size, image_size,
                              device=weight.device, dtype=weight.dtype))
    finally:
        for handle in handles:
            handle.remove()
    return rows


def parameters_by_level(model: UNet) -> list[dict]:
    """Parameters per level of the U, encoder and decoder together (the head counts to level
    0): one ``{"level": l, "channels": C_l, "parameters": int}`` per level, ``C_l`` the level's
    width (``base_filters · 2^l``). The parameters add up to the model's."""
    rows = level_table(model, image_size=16 * 2 ** max(model.depth - 4, 0))
    channels = {row["level"]: row["shape"][0] for row in rows
                if row["stage"].startswith(("encoder", "bottleneck"))}
    totals: dict[int, int] = {}
    for row in rows:
        totals[row["level"]] = totals.get(row["level"], 0) + row["parameters"]
    return [{"level": level, "channels": channels[level], "parameters": totals[level]}
            for level in sorted(totals)]


def signal_by_level(model: UNet, x: torch.Tensor) -> list[dict]:
    """How strong the signal is after each encoder level: one ``{"stage": str, "level": l,
    "mean square": float}`` per level (``encoder l``, the last ``bottleneck``), the mean of the
    squared features of ``x`` (N, in_channels, H, W, H and W multiples of ``2^depth``) there,
    divided by the input's. Near 1 the signal keeps its size; far below, it fades level by
    level (a network of ReLUs whose weights start too small). The model runs in eval mode (a
    batch norm's running statistics are read, not updated) and is left in its own."""
    squares = []
    where = next(model.parameters()).device  # a model on a GPU is run there
    features = x = x.to(where)
    with torch.no_grad(), running_on(model, where):  # in eval mode, then as it came
        for level, block in enumerate(model.encoder):
            features = block(model.pool(features) if level else features)
            squares.append(features.pow(2).mean().item())
    reference = x.pow(2).mean().item()
    return [{"stage": "bottleneck" if level == model.depth else f"encoder {level}",
             "level": level, "mean square": square / reference}
            for level, square in enumerate(squares)]


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None,
                   formats: dict[str, str] | None = None, caption: str | None = None) -> str:
    """A Markdown table of ``rows`` (dicts), in the order of ``columns`` (default: the first
    row's keys); ``formats`` maps a column to a format spec such as ``",d"`` or ``".3f"``.
    ``caption``, what the table shows, goes on the line before it as an HTML comment,
    ``<!-- table: ... -->``: invisible in JupyterLab, the book's build makes it the table's
    ``<caption>`` (``book/_ext/table_captions.py``)."""
    if caption is not None and (not caption.strip() or "--" in caption):
        raise ValueError(f"caption = {caption!r}: say what the table shows, without '--' "
                         f"(it would end the HTML comment that carries it)")
    columns = list(columns or rows[0])
    formats = formats or {}

    def cell(row, column):
        value = row.get(column, "")
        if isinstance(value, tuple):
            return " × ".join(str(v) for v in value)
        return format(value, formats[column]) if column in formats else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for row in rows]
    if caption is not None:
        lines.insert(0, f"<!-- table: {' '.join(caption.split())} -->")
    return "\n".join(lines)
