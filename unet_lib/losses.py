"""The training losses: BCE-with-logits (the slides) and BCE plus a soft Dice loss.

BCE averages over pixels, so on BraTS, where about 1 % of pixels are tumour, a model lowers
it most by getting the background right. A soft Dice loss scores each channel by its overlap
with the truth whatever its size, so a small enhancing rim counts as much as the large
oedema. Many BraTS papers train on the sum of the two.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig


class SoftDiceLoss(nn.Module):
    """``1 − mean_c Dice_c`` with probabilities in place of binary masks.

    For each channel ``c``, over the whole batch: ``Dice_c = (2 Σ p·t + ε) / (Σ p + Σ t + ε)``
    with ``p = sigmoid(logits)``. ``ε = 1`` keeps a channel absent from the batch (Σ t = 0)
    from dividing by zero; such a channel scores ``1 / (Σ p + 1)``, near 1 only when the
    probabilities summed over the whole batch stay below about one pixel. Otherwise it scores
    near 0 and adds almost its full ``1/C`` to the loss, pushing that channel's probabilities
    down everywhere: the sums over the whole batch, not per image, keep such batches rare.

    Shapes: logits and target (N, C, H, W), target in {0, 1}; returns a scalar.
    """

    def __init__(self, smooth: float = 1.0):
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs = torch.sigmoid(logits)
        dims = (0, *range(2, logits.dim()))  # all but the channel
        overlap = (probs * target).sum(dims)
        total = probs.sum(dims) + target.sum(dims)
        return 1 - ((2 * overlap + self.smooth) / (total + self.smooth)).mean()


class BCEDiceLoss(nn.Module):
    """BCE-with-logits (with its ``pos_weight``) plus :class:`SoftDiceLoss`, equally weighted."""

    def __init__(self, pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        self.dice = SoftDiceLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce(logits, target) + self.dice(logits, target)


def make_loss(config: TrainConfig, device: torch.device | str = "cpu") -> nn.Module:
    """The training loss ``config.loss`` names: BCE-with-logits averaged over pixels and
    channels, tumour pixels of channel ``c`` weighted by ``config.pos_weight[c]`` when given;
    with ``"bce+dice"``, plus :class:`SoftDiceLoss`."""
    weight = None
    if config.pos_weight is not None:
        weight = torch.tensor(config.pos_weight, dtype=torch.float32, device=device)
        weight = weight.view(-1, 1, 1)  # broadcast over (N, C, H, W)
    if config.loss == "bce+dice":
        return BCEDiceLoss(pos_weight=weight)
    return nn.BCEWithLogitsLoss(pos_weight=weight)
