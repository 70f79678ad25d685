"""How long HD95 takes on a BraTS-sized volume (155×240×240), beside MONAI's, on this CPU.

    python benchmarks/hd95.py [OUT.md]

The reference is a phantom patient's three regions; the prediction is the same shifted by
two voxels with a few far false positives, so that neither side is trivial.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from unet_lib.data import labels_to_mask, make_volume
from unet_lib.metrics import hausdorff95, to_regions


def timed(function, repeats: int = 3) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - started)
    return best, value


def main() -> int:
    phantom = make_volume(np.random.default_rng([0, 1]), image_size=240, n_slices=155)
    mask = torch.from_numpy(labels_to_mask(phantom.labels)).permute(0, 3, 1, 2).float()
    target = to_regions(mask).permute(1, 0, 2, 3).bool().numpy()   # (3, 155, 240, 240)
    pred = np.roll(target, 2, axis=-1).copy()
    pred[0, 10, 20, 20] = True                              # a far false positive (WT)
    seconds, ours = timed(lambda: hausdorff95(pred, target))
    lines = ["<!-- table: The 95th-percentile Hausdorff distance of one 155×240×240 patient: "
             "seconds and HD95 per implementation -->",
             "| implementation | seconds per patient (3 regions) | HD95 WT / TC / ET (mm) |",
             "|---|---|---|",
             f"| unet_lib.metrics.hausdorff95 | {seconds:.2f} | "
             f"{' / '.join(f'{v:.2f}' for v in ours)} |"]
    try:
        from monai.metrics import compute_hausdorff_distance

        seconds, theirs = timed(lambda: compute_hausdorff_distance(
            torch.as_tensor(pred[None]), torch.as_tensor(target[None]), include_background=True,
            percentile=95)[0].numpy())
        lines.append(f"| MONAI compute_hausdorff_distance | {seconds:.2f} | "
                     f"{' / '.join(f'{v:.2f}' for v in theirs)} |")
    except ImportError:
        lines.append("| MONAI | not installed | |")
    voxels = int(target.sum())
    text = (f"HD95 of one 155×240×240 phantom patient ({voxels:,} tumour voxels over the three "
            f"regions), best of 3, torch {torch.__version__}, on this machine's CPU:\n\n"
            + "\n".join(lines) + "\n")
    print(text)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
