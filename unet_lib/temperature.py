"""Temperature scaling (Guo et al. 2017): a fix for over- or under-confident probabilities
after training, one number per channel.

The logits are divided by a temperature ``T`` before the sigmoid: ``T > 1`` pulls every
probability towards 0.5 (a model too sure of itself), ``T < 1`` pushes them apart. ``T`` is
chosen on the validation patients, as the one whose probabilities give the lowest BCE there
(a proper score: lowest where probabilities are frequencies), and judged on the test patients.
Nothing a threshold of 0.5 decides can change, since ``σ(z / T) > 0.5`` exactly where
``z > 0`` (up to rounding: float32 gives ``σ(z) = 0.5`` for ``|z|`` below about 1e-7): Dice,
precision and recall at 0.5 stay as they were. What a temperature cannot do is move the point
where the model says 0.5: a model that calls a channel too often at every level needs a shift
as well (Platt scaling: ``σ(a z + b)``, two numbers per channel, which moves the decisions at
0.5 as another threshold would).

>>> fitted = fit_temperature(model, val_set)        # one pass over the validation slices
>>> fitted.best                                     # (3,) one temperature per channel
>>> reliability(TemperatureScaled(model, fitted.best), test_set)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from .data.brats import MASK_CHANNELS
from .inference import logit_batches, nothing_to_score
from .runtime import resolve_device, tally_device

#: the temperatures tried by default: 81 from 1/4 to 8, each about 4.4 % above the last
TEMPERATURES = np.geomspace(0.25, 8.0, 81)


@dataclass(frozen=True)
class TemperatureFit:
    """The validation BCE of each channel at each temperature tried.

    Attributes:
        temperatures: (K,) the temperatures tried, increasing.
        loss: (3, K) the mean BCE per pixel of each channel (NCR/NET, ED, ET) at each.
        loss_as_trained: (3,) the same at T = 1, the model as it was trained.
        pixels: how many pixels of each channel the means are over.
    """

    temperatures: np.ndarray
    loss: np.ndarray
    loss_as_trained: np.ndarray
    pixels: int

    @property
    def best(self) -> np.ndarray:
        """(3,) the temperature of lowest validation BCE, per channel (at the grid's end
        where the lowest lies beyond it: :attr:`at_edge` says so)."""
        return self.temperatures[self.loss.argmin(axis=1)]

    @property
    def at_edge(self) -> np.ndarray:
        """(3,) bool: whether a channel's best is the first or last temperature tried, where
        the lowest BCE may lie beyond the grid (widen ``temperatures`` then)."""
        best = self.loss.argmin(axis=1)
        return (best == 0) | (best == len(self.temperatures) - 1)

    def by_channel(self) -> dict[str, float]:
        """``{channel: its best temperature}``."""
        return dict(zip(MASK_CHANNELS, self.best.tolist()))


def bce_by_temperature(logits: torch.Tensor, targets: torch.Tensor,
                       temperatures: torch.Tensor) -> torch.Tensor:
    """(3, K) the BCE of ``σ(logits / t)`` against ``targets``, summed over the pixels of each
    channel, for every ``t`` of ``temperatures`` (K,); logits and targets (N, 3, H, W). The
    temperatures are taken one at a time (no (K, N, 3, H, W) array is made), in float32,
    summed in float64."""
    if logits.shape != targets.shape or logits.ndim != 4 or logits.shape[1] != 3:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} "
                         f"must both be (N, 3, H, W)")
    z, y = logits.detach().float(), targets.detach().float()
    sums = [(F.softplus(z / t) - y * z / t).sum(dim=(0, 2, 3), dtype=torch.float64)
            for t in temperatures.tolist()]
    return torch.stack(sums, dim=1)


@torch.no_grad()
def fit_temperature(model: nn.Module, data: Dataset, temperatures=None, batch_size: int = 32,
                    device: torch.device | str | None = None, amp: bool = True
                    ) -> TemperatureFit:
    """The validation BCE of ``model``'s probabilities on ``data`` (a dataset of (image,
    mask) samples: the validation patients, never the test ones) at each of ``temperatures``
    (default :data:`TEMPERATURES`), in one pass; its :attr:`~TemperatureFit.best` is the
    temperature to use. Unusable samples are left out, as the scores leave them out."""
    grid = np.asarray(TEMPERATURES if temperatures is None else temperatures, dtype=np.float64)
    if grid.ndim != 1 or len(grid) < 2 or not (grid > 0).all() or (np.diff(grid) <= 0).any():
        raise ValueError(f"temperatures: give two or more positive numbers in increasing "
                         f"order; got {np.asarray(temperatures).tolist()!r}")
    device = resolve_device(device)
    tally = tally_device(device)
    total, pixels, skipped = None, 0, []
    on_grid = torch.as_tensor(np.append(grid, 1.0))  # and as trained, last
    for logits, masks, bad in logit_batches(model, data, batch_size, device, amp,
                                            on_device=tally == device):
        skipped.extend(str(sample) for sample in bad)
        if logits is None:
            continue
        if masks is None:
            raise ValueError("data holds images only: fitting a temperature needs (image, "
                             "mask) samples")
        sums = bce_by_temperature(logits, masks, on_grid)
        total = sums if total is None else total + sums
        pixels += logits[:, 0].numel()
    if total is None:
        raise nothing_to_score(data, skipped)
    loss = (total / pixels).cpu().numpy()
    if not np.isfinite(loss).all():  # argmin would pick the first temperature, unsaid
        raise ValueError("the model's logits hold NaN or infinite values on these data (an "
                         "overflow in mixed precision?): no temperature can be fitted")
    return TemperatureFit(grid, loss[:, :-1], loss[:, -1], pixels)


class TemperatureScaled(nn.Module):
    """``model`` whose logits are divided by a temperature per channel: every function that
    takes a model (:func:`~unet_lib.calibration.reliability`,
    :func:`~unet_lib.inference.predict`, :func:`~unet_lib.inference.evaluate`) then reads
    the scaled probabilities. ``temperature``: (3,) or one number for every channel. It
    carries the model's ``trained_image_size`` and ``trained_threshold`` (so that scoring
    resizes as for the model and cuts at the same threshold: at 0.5 the decisions are the
    model's; at another the scaled probabilities decide otherwise), not its attention maps or
    checkpoints: take those from the model itself."""

    def __init__(self, model: nn.Module, temperature):
        super().__init__()
        t = torch.as_tensor(np.asarray(temperature, dtype=np.float32)).flatten()
        if t.numel() == 1:
            t = t.expand(len(MASK_CHANNELS)).clone()
        if t.numel() != len(MASK_CHANNELS) or not bool(((t > 0) & t.isfinite()).all()):
            raise ValueError(f"temperature: give one positive, finite number per channel "
                             f"({', '.join(MASK_CHANNELS)}) or one for all; got "
                             f"{t.tolist()}")
        self.model = model
        where = next(model.parameters(), t).device  # beside the model's weights, on a GPU too
        self.register_buffer("temperature", t.view(1, -1, 1, 1).to(where))
        self.trained_image_size = getattr(model, "trained_image_size", None)
        self.trained_threshold = getattr(model, "trained_threshold", None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) the model's logits over the temperature."""
        return self.model(images) / self.temperature
