"""Self-checks of chapter 8, on the attention maps: the size of each gate's map, and which
gate treats tumour and the rest of the brain most alike. (Re-exported by
:mod:`unet_course.labs`, where the notebooks call them; how the checks answer is
:mod:`unet_course.checking`.)"""

from __future__ import annotations

from typing import Sequence

import torch

from unet_lib.models import AttentionUNet

from ..checking import NotYet, check, is_number, own_randomness, plain, reveal_hint, unanswered


# --- chapter 8: attention maps --------------------------------------------------------------

@own_randomness
def check_gate_sizes(answer, image_size: int, depth: int = 4) -> None:
    """Exercise 8.1. Sizes (h of each h×h map, deepest gate first) of the attention maps for an
    ``image_size``² input."""
    model = AttentionUNet(base_filters=4, depth=depth).eval()
    with torch.no_grad():
        _, maps = model(torch.zeros(1, 4, image_size, image_size), return_attention=True)
    expected = [m.shape[-1] for m in maps]
    what = f"the gates' map sizes for {image_size}×{image_size} inputs, deepest first"
    if unanswered(answer, "8.1", what, expected):
        return
    answer = plain(answer)
    if not isinstance(answer, (tuple, list)) or not all(
            is_number(a) and float(a).is_integer() for a in answer):
        raise NotYet(f"Not yet: {what} are a list of {len(expected)} whole numbers, h of each "
                     f"h×h map (not pairs, not {type(answer).__name__} of other things).")
    check([int(a) for a in answer], expected, what, "the gate on the skip of level l works "
          "at the size of that level: H / 2^l", exercise="8.1")


def check_least_selective_gate(answer, contrasts: Sequence[float],
                               sizes: Sequence[int]) -> None:
    """Exercise 8.2. The size ``h`` of the ``h×h`` map of the gate whose contrast (one per gate,
    inside the tumour minus the rest of the brain) is smallest in absolute value: the gate
    that treats tumour and the rest most alike. ``contrasts`` and ``sizes`` have one entry
    per gate, deepest first, as the model returns its maps. A gate whose contrast the table
    shows as the same size (to its 3 decimals) counts too; no other does, as two such gates
    may be one shut and one open."""
    contrasts = [float(c) for c in plain(contrasts)]
    sizes = [int(h) for h in plain(sizes)]
    if len(sizes) != len(contrasts) or len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes must give each gate's own map size, one per contrast; got "
                         f"{sizes} for {len(contrasts)} contrasts")
    magnitudes = [abs(c) for c in contrasts]
    least = min(range(len(magnitudes)), key=lambda i: magnitudes[i])
    expected = sizes[least]
    what = "the size h of the h×h map of the gate whose contrast is smallest in absolute value"
    if unanswered(answer, "8.2", what, expected):
        return
    answer = plain(answer)
    sides = ", ".join(str(h) for h in sizes)
    if not is_number(answer) or not float(answer).is_integer() or int(answer) not in sizes:
        raise NotYet(f"Not yet: {what} is one of the table's gate sizes ({sides}: {sizes[0]} "
                     f"for the {sizes[0]}×{sizes[0]} gate), not {answer!r}.")
    gate = sizes.index(int(answer))
    if gate != least and f"{magnitudes[gate]:.3f}" == f"{magnitudes[least]:.3f}":
        print(f"Right: the contrast of the {answer}×{answer} gate shows as "
              f"{contrasts[gate]:+.3f} in the table, the same size as the {expected}×{expected} "
              f"gate's: too close to call on these slices.")
        return
    if gate != least:
        raise NotYet(f"Not yet: the contrast of the {answer}×{answer} gate, "
                     f"{contrasts[gate]:+.3f}, is not the smallest in size. Hint: drop the signs "
                     f"and compare the sizes of the contrasts over the many slices, not the 4 "
                     f'shown{reveal_hint("8.2")}')
    check(int(answer), expected, what, f"one of the table's gate sizes ({sides})",
          exercise="8.2")
