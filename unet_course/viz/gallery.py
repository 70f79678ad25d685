"""The book's static picture of the phantom at BraTS size (240 × 240), made once and committed
(``book/images/phantom-240.png``) so that the introduction and the data card show it without
a kernel. Remake it with::

    python -m unet_course.viz.gallery book/images/phantom-240.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

import numpy as np

from unet_lib.data.brats import MODALITIES, labels_to_mask
from unet_lib.data.phantom_volume import make_volume

#: volumes of the full-scale phantom (seed 0) shown: a high-grade tumour with an enhancing rim
#: and a low-grade one without
SHOWN = ((11, "high grade: an enhancing rim (blue) around a necrotic core (red), in oedema"),
         (1, "low grade: a non-enhancing core (red) in oedema, no enhancing tumour"))


def phantom_rows(image_size: int = 240, n_slices: int = 155, seed: int = 0,
                 volumes=SHOWN) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """For each ``(volume, caption)``: the caption, the slice with the most tumour as a
    (4, H, W) image and its (3, H, W) mask, exactly as ``make_phantom`` writes that volume."""
    import torch

    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as make_phantom: the same bytes on every machine
    try:
        for volume, caption in volumes:
            phantom = make_volume(np.random.default_rng([seed, volume]), image_size, n_slices)
            masks = labels_to_mask(phantom.labels)  # (D, H, W, 3)
            best = int(masks.reshape(n_slices, -1).sum(1).argmax())
            rows.append((f"volume {volume}, slice {best}: {caption}",
                         phantom.image[best].transpose(2, 0, 1), masks[best].transpose(2, 0, 1)))
    finally:
        torch.set_num_threads(threads)
    return rows


def phantom_figure(rows):
    """The four modalities and the RGB mask of each row, with the mask's legend."""
    import matplotlib.pyplot as plt
    from .frames import grey_picture, legend_handles, mask_to_rgb, no_ticks

    fig = plt.figure(figsize=(12.5, 3.1 * len(rows)), layout="constrained")
    for subfig, (caption, image, mask) in zip(fig.subfigures(len(rows), 1), rows):
        axes = subfig.subplots(1, 5)
        for ax, channel, name in zip(axes, image, MODALITIES):
            ax.imshow(grey_picture(channel), cmap="gray", vmin=0, vmax=1)
            ax.set_title(name)
        axes[-1].imshow(mask_to_rgb(mask))
        axes[-1].set_title("mask")
        subfig.suptitle(caption)
        no_ticks(axes)
    fig.legend(handles=legend_handles(),
               loc="outside lower center", ncols=3)
    return fig


def main(argv=None) -> int:
    """``python -m unet_course.viz.gallery OUT.png``: draw the figure (slides' palette) to OUT."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m unet_course.viz.gallery OUT.png", file=sys.stderr)
        return 2
    matplotlib.use("Agg")
    from . import style

    from .mask_colours import use_palette

    style.apply()
    use_palette("slides")  # the committed figure, whose captions name the slides' colours
    out = Path(argv[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    phantom_figure(phantom_rows()).savefig(out, dpi=80)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
