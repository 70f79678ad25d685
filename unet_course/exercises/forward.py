"""Chapter 1's last coding exercise: the U itself. The student writes the forward pass of a
Classic U-Net from its parts (the level blocks, the pool, the up-convolutions, the head) and
the check compares it with :class:`unet_lib.models.ClassicUNet` on random images, at two
depths, with a hint for each usual way to miss (the skips in the wrong order, the skip and the
up-sampled features concatenated the other way round, added instead, the head left out, a
fixed depth of four). (The notebooks call it as ``exercises.check_unet_forward``.)"""

from __future__ import annotations

import re
from typing import Callable

import torch

from unet_lib.models import ClassicUNet, UNet

from ..checking import NotYet, code_answered, own_randomness, raised

#: the models the check runs, (depth, first filters, image side): the course's depth of four,
#: then two levels, so that a forward written for four levels only shows
CHECKED_SHAPES = ((4, 4, 32), (2, 3, 24))

#: what an error the student's forward raises most likely means, by a piece of its message
#: (a convolution given features of the wrong width is told apart by :func:`error_hint`)
ERROR_HINTS = {
    "Sizes of tensors must match": "the skip concatenated at a level must come from the "
                                   "encoder level of the same size: pool before every level "
                                   "but the first going down, store each level's output, and "
                                   "take them back in reverse order going up (the deepest "
                                   "first: a list used as a stack); the bottom level's output "
                                   "is the decoder's input, not a skip",
    "transposed=1": "an up-convolution got features of another width: go down through every "
                    "encoder block (a U-Net of depth 4 has 5, one more than its 4 ups: the "
                    "bottom of the U), then use ups and decoder_blocks in the order given, "
                    "deepest first",
    "index out of range": "loop over the lists you are given (their lengths are the U's "
                          "levels) rather than over a fixed depth of four",
}

#: a convolution's complaint: its weight's size, the channels it takes and those it got
WIDTH_ERROR = re.compile(r"weight of size \[(\d+), \d+, (\d+), \d+\], expected input\[.*?\] "
                         r"to have (\d+) channels, but got (\d+) channels")


def error_hint(error: Exception) -> str:
    """The hint for an error the student's forward raised, by what its message says."""
    message = str(error)
    width = WIDTH_ERROR.search(message)
    if width and "transposed=1" not in message:
        out_channels, kernel, takes, got = (int(n) for n in width.groups())
        if out_channels == 3 and kernel == 1:  # the head, given another level's features
            return ("the head got features of another level: the way up runs every "
                    "up-convolution and decoder block, one per level, before the head")
        if got * 2 == takes:
            return ("the Classic U-Net's decoder blocks take the skip and the up-sampled "
                    "features side by side (twice the level's channels): concatenate them "
                    "along the channels, torch.cat(..., dim=1), rather than adding them")
        return ("a decoder block got features of another width: up-sample with the given "
                "ups (each also halves the channels; F.interpolate does not), then "
                "concatenate the skip of that size")
    return next((hint for key, hint in ERROR_HINTS.items() if key in message), "")


def unet_parts(model: UNet) -> tuple:
    """``(encoder, pool, ups, decoder_blocks, head)`` of ``model``, as exercise 1.5 hands them
    over: the level blocks top first, the 2×2 max-pool, the up-convolutions and the decoder's
    level blocks deepest first, and the 1×1 head."""
    return (list(model.encoder), model.pool, [level.up for level in model.decoder],
            [level.block for level in model.decoder], model.head)


def forward_with_parts(x: torch.Tensor, encoder, pool, ups, decoder_blocks, head,
                       skip_first: bool = True) -> torch.Tensor:
    """The Classic U-Net's forward pass from its parts; ``skip_first=False`` concatenates the
    up-sampled features before the skip (a mistake the check recognises)."""
    skips = []
    for level, block in enumerate(encoder):
        x = block(x if level == 0 else pool(x))
        skips.append(x)
    x = skips.pop()  # the bottom of the U
    for up, block in zip(ups, decoder_blocks):
        x, skip = up(x), skips.pop()
        x = block(torch.cat([skip, x] if skip_first else [x, skip], dim=1))
    return head(x)


@own_randomness
def check_unet_forward(forward: Callable[..., torch.Tensor]) -> None:
    """Exercise 1.5. ``forward(x, encoder, pool, ups, decoder_blocks, head)`` must return the
    logits (N, 3, H, W) of a Classic U-Net made of those parts (:func:`unet_parts`), as
    ``ClassicUNet.forward`` computes them for a size divisible by ``2**depth``."""
    for depth, filters, side in CHECKED_SHAPES:
        torch.manual_seed(0)
        model = ClassicUNet(base_filters=filters, depth=depth).eval()
        x = torch.randn(2, 4, side, side)
        what = (f"your forward on a U-Net of depth {depth} ({depth + 1} encoder blocks, "
                f"{depth} ups; input {tuple(x.shape)})")
        try:  # with gradients: check_gradients follows them back from these very outputs
            yours = forward(x, *unet_parts(model))
        except Exception as error:  # the student's code: what it raised, and a hint
            hint = error_hint(error)
            raise raised(what, error, f". Hint: {hint}." if hint else "") from None
        if not code_answered(yours):
            return
        expected = model(x)
        with torch.no_grad():
            swapped = forward_with_parts(x, *unet_parts(model), skip_first=False)
        if not isinstance(yours, torch.Tensor):
            raise NotYet(f"Not yet: {what} should return a tensor, got {type(yours).__name__}.")
        if yours.shape != expected.shape:
            hint = ("the head (a 1×1 convolution to the 3 tumour channels) comes last"
                    if yours.shape[:1] + yours.shape[2:] == expected.shape[:1] + expected.shape[2:]
                    else "the output has the input's height and width: every pool going down "
                         "is undone by one up-convolution going up"
                    + ("; use the lists' lengths rather than a fixed depth of four"
                       if depth != 4 else ""))
            raise NotYet(f"Not yet: {what} returned shape {tuple(yours.shape)}; the U-Net's "
                         f"logits have shape {tuple(expected.shape)}. Hint: {hint}.")
        if torch.allclose(yours, expected, atol=1e-5, rtol=1e-4):
            check_gradients(yours, expected, model, what)
            continue
        hint = ("you concatenate the up-sampled features first and the skip second: unet_lib "
                "puts the skip first (torch.cat([skip, x], dim=1)), and the block's weights "
                "were made for that order" if torch.allclose(yours, swapped, atol=1e-5,
                                                             rtol=1e-4)
                else "return the head's output as it is, the logits: the sigmoid that makes "
                     "them probabilities comes later (in the loss, or when predicting)"
                if torch.allclose(yours, torch.sigmoid(expected), atol=1e-5, rtol=1e-4)
                else "follow one slice down and up: pool before every level but the first, "
                     "store every level's output, start the way up from the bottom level's "
                     "output, and at each step up-sample, concatenate the stored skip of that "
                     "size, then run the level's block")
        raise NotYet(f"Not yet: {what} has the right shape but other values. Hint: {hint}.")
    print("Right: your forward pass computes what ClassicUNet's does, and its gradients, at "
          "depths 4 and 2.")


def check_gradients(yours: torch.Tensor, expected: torch.Tensor, model: ClassicUNet,
                    what: str) -> None:
    """Training needs the gradients too: those of every weight of ``model`` through the
    student's output ``yours`` must be those through the model's own ``expected`` (a
    ``torch.no_grad()`` or a ``detach()`` inside the forward pass gives the right values and
    none or fewer of them)."""
    names, weights = zip(*model.named_parameters())
    right = torch.autograd.grad(expected.square().mean(), weights)
    given = (torch.autograd.grad(yours.square().mean(), weights, allow_unused=True)
             if yours.requires_grad else [None] * len(weights))
    wrong = [name for name, g, r in zip(names, given, right)
             if g is None or not torch.allclose(g, r, atol=1e-6, rtol=1e-4)]
    if wrong:
        raise NotYet(f"Not yet: {what} gives the right logits, but training could not learn "
                     f"through it: {len(wrong)} of the weights get no gradient or another one "
                     f"(the first: {wrong[0]}). Hint: leave out torch.no_grad() and .detach() "
                     f"inside the forward pass; the loss's gradients flow back through every "
                     f"step of it, the skips included.")
