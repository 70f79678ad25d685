"""What only Apple's MPS (a Mac's GPU) can show: a student's Mac trains and scores the course's
models there (``device="auto"`` picks it when there is no CUDA GPU). MPS has no float64, so
every running sum the library keeps in float64 must be made on the CPU. Skipped elsewhere (CI
has no Mac): run ``python -m pytest tests/test_mps.py`` on one.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Subset

from unet_lib.calibration import reliability_of
from unet_lib.config import TrainConfig
from unet_lib.inference import evaluate
from unet_lib.metrics import dice
from unet_lib.models import build_model
from unet_lib.patients import score_patient
from unet_lib.runtime import waiting_for
from unet_lib.train import fit

pytestmark = pytest.mark.skipif(not torch.backends.mps.is_available(),
                                reason="needs Apple's MPS")

MPS = torch.device("mps")


def test_a_fit_on_the_mac_s_gpu_trains_and_scores_as_on_the_cpu(datasets):
    # its first step failed: the loss was turned into float64 before it left the GPU
    train, val = Subset(datasets[0], range(0, 48, 2)), Subset(datasets[1], range(0, 30, 3))
    config = TrainConfig.quick(epochs=1, base_filters=8, batch_size=8, device="mps",
                               image_size=64, num_workers=0)  # macOS starts each reader anew
    model = build_model("classic", base_filters=8)
    record = fit(model, train, val, config, progress=False).records[-1]
    assert torch.isfinite(torch.tensor([record["train_loss"], record["val_loss"]])).all()
    on_cpu = evaluate(model.cpu(), val, batch_size=8, device="cpu")
    assert record["val_loss"] == pytest.approx(on_cpu["loss"], rel=1e-3)


def test_scores_of_masks_held_on_the_mac_s_gpu_are_counted_on_the_cpu():
    pred = (torch.rand(2, 3, 16, 16) > 0.5).float()
    target = (torch.rand(2, 3, 16, 16) > 0.5).float()
    assert dice(pred.to(MPS), target.to(MPS)) == pytest.approx(dice(pred, target))
    regions = torch.zeros(3, 2, 8, 8, dtype=torch.bool)
    regions[:, :, 2:5, 2:5] = True  # WT ⊇ TC ⊇ ET: one cube each
    assert score_patient(regions.to(MPS), regions.to(MPS), (1, 1, 1))["dice"]["WT"] == 1.0
    found = reliability_of(torch.rand(2, 3, 8, 8).to(MPS), target[:, :, :8, :8].to(MPS))
    assert found.count.sum() == 2 * 3 * 64


def test_timings_on_the_mac_s_gpu_wait_for_it():
    assert waiting_for(MPS) is torch.mps.synchronize
