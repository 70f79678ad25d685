"""Chapter 7's coding exercise: a clean-up after the model that keeps a predicted mask's
largest connected piece, checked against :func:`unet_lib.postprocess.keep_largest_component`
on masks chosen so that each way to miss it gets its own hint. (The notebooks call it as
``exercises.check_keep_largest``, beside the other coding exercises.)"""

from __future__ import annotations

from typing import Callable

import numpy as np

from unet_lib.postprocess import keep_largest_component

from ..checking import NotYet, code_answered, plain, run_answer


def largest_piece_masks(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Exercise 7.3's test masks, ``(what, mask (D, H, W) bool)``: one cube, an empty one,
    random masks of many pieces whose largest is unique (so that no rule for ties is asked),
    also when edges and corners join, and last two cubes that touch only at a corner (a
    function that joins such voxels fails there alone)."""
    from scipy import ndimage

    cube = np.zeros((6, 8, 8), bool)
    cube[1:4, 2:5, 2:5] = True
    corner = np.zeros((6, 8, 8), bool)
    corner[0:2, 0:2, 0:2] = True  # 8 voxels, meeting the 27 below at one corner only
    corner[2:5, 2:5, 2:5] = True
    # the cube first: a None there is the skeleton's, a None for the empty mask a missing return
    masks = [("one cube", cube), ("an empty mask", np.zeros((5, 6, 7), bool))]
    rng = np.random.default_rng(seed)
    while len(masks) < 6:
        mask = rng.random((int(rng.integers(4, 9)), 10, 12)) < 0.2
        pieces = [np.sort(np.bincount(ndimage.label(mask, np.ones((3, 3, 3)) if corners
                                                    else None)[0].ravel())[1:])
                  for corners in (False, True)]
        if all(len(sizes) > 1 and sizes[-1] > sizes[-2] for sizes in pieces):
            masks.append((f"a random mask of {len(pieces[0])} pieces", mask))
    return masks + [("two cubes touching at a corner", corner)]


def check_keep_largest(keep_largest: Callable[[np.ndarray], np.ndarray]) -> None:
    """Exercise 7.3. ``keep_largest(mask)`` must return, for a (D, H, W) bool mask, a new bool
    mask of its largest face-connected piece, as
    :func:`unet_lib.postprocess.keep_largest_component` does."""
    masks = largest_piece_masks()
    for number, (what, mask) in enumerate(masks):
        given = mask.copy()
        try:
            result = run_answer(keep_largest, given, what=f"keep_largest on {what}")
        except NotYet as error:
            if mask.any():
                raise
            raise NotYet(f"{error}. Hint: an empty mask has no pieces (ndimage.label finds 0): "
                         f"return an empty mask of its shape.") from None
        if not code_answered(result, f"keep_largest on {what}" if number else None,
                             "an empty mask has no pieces: return an empty mask of its shape"
                             if not mask.any() else ""):
            return
        if not np.array_equal(given, mask):
            raise NotYet(f"Not yet: keep_largest changed the mask it was given ({what}). "
                         f"Hint: build a new array and return it; leave the input as it was.")
        result = np.asarray(plain(result))
        if result.shape != mask.shape:
            raise NotYet(f"Not yet: for {what} of shape {mask.shape} keep_largest returned "
                         f"shape {result.shape}. Hint: return a mask of the input's shape.")
        if result.dtype != bool and not np.isin(result, (0, 1)).all():
            raise NotYet(f"Not yet: for {what} keep_largest returned values other than 0 and 1 "
                         f"(dtype {result.dtype}, e.g. {_not_a_mask_value(result)}). Hint: "
                         f"return a mask, True in the piece kept (labels == k), not the labels "
                         f"or counts themselves.")
        result = result.astype(bool)
        expected = keep_largest_component(mask)
        if np.array_equal(result, expected):
            continue
        by_slice = np.stack([keep_largest_component(piece) for piece in mask])
        if np.array_equal(result, ~mask):
            hint = ("it is the background: label 0 is what lies outside every piece; leave it "
                    "out when you count the pieces' voxels (and if you left it out by counting "
                    "counts[1:], the largest piece's label is the argmax + 1)")
        elif (result & ~mask).any():
            hint = "it marks voxels that are not in the mask at all"
        elif any(np.array_equal(result, keep_largest_component(mask, connectivity=joined))
                 for joined in (2, 3)):
            hint = ("it joins voxels that touch only at an edge or a corner; here a piece is "
                    "voxels that share a face, as ndimage.label counts them by default")
        elif np.array_equal(result, by_slice):
            hint = ("it keeps the largest piece of each slice: label the whole (D, H, W) mask "
                    "at once, so that pieces join across slices")
        elif not result.any():
            hint = "it is empty, but the mask has pieces: keep the largest"
        elif result.sum() > expected.sum():
            hint = ("it keeps more than the largest face-connected piece: keep that piece "
                    "alone, and check which voxels you let join")
        else:
            hint = ("it keeps a piece that is not the largest, or only part of one: count "
                    "each piece's voxels (np.bincount of the labels) and keep the biggest (after "
                    "counts[1:].argmax(), its label is that index + 1)")
        raise NotYet(f"Not yet: keep_largest on {what} is wrong: {hint}.")
    print(f"Right: your keep_largest agrees with unet_lib.postprocess.keep_largest_component "
          f"on {len(masks)} masks, an empty one and two cubes touching at a corner among them.")


def _not_a_mask_value(result: np.ndarray):
    """One value of ``result`` that is neither 0 nor 1, as a plain Python number."""
    return result[~np.isin(result, (0, 1))].flat[0].item()
