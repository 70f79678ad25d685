"""Chapter 6's coding exercise: Dice, precision and recall from the counts TP, FP and FN,
checked against :func:`unet_lib.metrics.scores_from_counts` on random counts and the three
with a zero denominator. (Re-exported by :mod:`unet_course.exercises`, where the notebooks
call it.)"""

from __future__ import annotations

from typing import Callable

import torch

from unet_lib.metrics import scores_from_counts

from ..checking import NotYet, code_answered, is_number, own_randomness, plain, raised


@own_randomness
def check_scores(scores: Callable[[float, float, float], tuple]) -> None:
    """``scores(tp, fp, fn)`` must return ``(dice, precision, recall)`` as numbers, for counts
    with at least one of them non-zero; a score whose denominator is 0 (nothing predicted, or
    nothing to find) is 0, as in :func:`unet_lib.metrics.scores_from_counts`."""
    torch.manual_seed(0)
    # ordinary counts first (a None there is the skeleton's), the special cases last
    counts = torch.randint(1, 50, (20, 3)).double()
    counts[-3] = torch.tensor([0.0, 3.0, 4.0])  # no overlap at all
    counts[-2] = torch.tensor([0.0, 0.0, 5.0])  # nothing predicted: TP + FP = 0
    counts[-1] = torch.tensor([0.0, 5.0, 0.0])  # nothing to find: TP + FN = 0
    names = ("Dice", "precision", "recall")
    for number, (tp, fp, fn) in enumerate(counts.tolist()):
        if tp + fp + fn == 0:
            continue
        try:
            result = scores(tp, fp, fn)
        except ZeroDivisionError:
            why = ("with TP + FP = 0 nothing was predicted, with TP + FN = 0 there was nothing "
                   "to find" if tp + fp == 0 or tp + fn == 0 else
                   "nothing overlaps, so precision and recall are both 0, and a Dice made of "
                   "them (2PR / (P + R)) divides 0 by 0: return 0 there, or compute Dice from "
                   "the counts, 2TP / (2TP + FP + FN)")
            raise NotYet(f"Not yet: scores({tp:g}, {fp:g}, {fn:g}) divides by zero. Hint: "
                         f"{why}; unet_lib scores a ratio with a zero denominator 0 (test for "
                         f"it before dividing).") from None
        except Exception as error:  # the student's code: what it raised, not a traceback
            raise raised(f"scores({tp:g}, {fp:g}, {fn:g})", error) from None
        if not code_answered(result, f"scores({tp:g}, {fp:g}, {fn:g})" if number else None,
                             "a score whose denominator is 0 is 0 in unet_lib: return it "
                             "with the other two"):
            return
        result = plain(result)  # an array or tensor of three scores is a list of three
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise NotYet(f"Not yet: scores(tp, fp, fn) should return a tuple of three numbers, "
                         f"(dice, precision, recall), not {type(result).__name__}"
                         + (f" of {len(result)}" if isinstance(result, (tuple, list)) else "")
                         + ".")
        expected = scores_from_counts(*(torch.tensor(v, dtype=torch.float64)
                                        for v in (tp, fp, fn)))
        empty = {"Dice": 2 * tp + fp + fn == 0, "precision": tp + fp == 0,  # what a zero
                 "recall": tp + fn == 0}  # denominator means is said in the hint
        nothing = {"precision": "nothing predicted", "recall": "nothing to find"}
        right = [expected[key].item() for key in ("dice", "precision", "recall")]
        given = [float(plain(v)) if is_number(plain(v)) else None for v in result]
        close = [[abs(g - r) <= 1e-6 for r in right] for g in given if g is not None]
        if (len(close) == 3 and not all(close[i][i] for i in range(3))  # the same three,
                and all(any(row) for row in close) and len({round(r, 6) for r in right}) == 3):
            # in another order (told only where the three differ)
            raise NotYet(f"Not yet: for TP={tp:g}, FP={fp:g}, FN={fn:g} your three scores are "
                         f"the right ones in another order. Hint: return (dice, precision, "
                         f"recall), in that order.")
        for name, yours, key in zip(names, result, ("dice", "precision", "recall")):
            yours = plain(yours)
            if not is_number(yours):
                raise NotYet(f"Not yet: your {name} for TP={tp:g}, FP={fp:g}, FN={fn:g} is "
                             f"{yours!r}, a {type(yours).__name__}: return numbers.")
            gap = abs(float(yours) - expected[key].item())
            if not gap <= 1e-6:  # NaN is not it either
                if empty[name]:
                    hint = (f"its denominator is 0 here ({nothing.get(name, 'no pixel')}); "
                            f"unet_lib scores such a ratio 0, not NaN or 1")
                elif float(yours) == 0 and tp > 0:
                    hint = ("it is 0 though TP > 0: divide with /, not // (which rounds "
                            "down to a whole number)")
                elif any(round(expected[key].item(), d) == float(yours) for d in range(1, 7)):
                    hint = "that is the score rounded: return it unrounded"
                else:
                    hint = ("write each score from the counts alone; check which count belongs "
                            "in the denominator")
                raise NotYet(f"Not yet: your {name} for TP={tp:g}, FP={fp:g}, FN={fn:g} is "
                             f"{float(yours):.6g}, which is not it. Hint: {hint}.")
    print(f"Right: Dice, precision and recall agree with unet_lib.metrics on {len(counts)} "
          f"counts, those with a zero denominator included.")
