"""Is one model better than another on the same patients? Two answers for paired scores
(one score per patient and model, e.g. ``PatientScores.values("dice", "WT")``):
:func:`paired_bootstrap`, how far the mean difference moves when the patients are redrawn, and
:func:`paired_sign_flip`, how often chance alone gives such a difference. With the handful of
test patients a course run has, both say mostly "cannot tell"; chapter 7 reads them.
"""

from __future__ import annotations

import numpy as np

from .config import check_whole_number


#: up to this many patients the sign-flip test counts all 2^n sign patterns; beyond, it draws
#: SIGN_FLIP_RESAMPLES of them at random
EXACT_UP_TO = 16
SIGN_FLIP_RESAMPLES = 100_000
#: draws of every bootstrap over patients: paired differences, calibration errors and bands
BOOTSTRAP_RESAMPLES = 10_000


def _paired_differences(first, second) -> np.ndarray:
    """``first - second``, float64 (n,), once both are checked to hold one score per patient."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1 or len(first) == 0:
        raise ValueError(f"need one score per patient for both models, in the same order; got "
                         f"shapes {first.shape} and {second.shape}")
    for name, scores in (("first", first), ("second", second)):
        if not np.isfinite(scores).all():  # a NaN compares false with everything: p = 0
            raise ValueError(f"{name}: the scores must be finite numbers; patient(s) at "
                             f"{np.flatnonzero(~np.isfinite(scores)).tolist()} hold "
                             f"{scores[~np.isfinite(scores)].tolist()}")
    return first - second


def paired_bootstrap(first, second, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95,
                     seed: int = 0) -> dict[str, float]:
    """How sure is "model A beats model B" on these patients? The mean per-patient difference
    ``first - second`` and a bootstrap interval for it: patients are drawn with replacement
    (each keeps its pair of scores) ``resamples`` times.

    Args:
        first, second: one score per patient, in the same patient order, e.g.
            ``scores_a.values("dice", "WT")`` and ``scores_b.values("dice", "WT")``.
        level: the interval's coverage (0.95: from the 2.5th to the 97.5th percentile).

    Returns:
        ``{"difference", "low", "high", "n"}``: the observed mean difference and the
        interval's ends. With few patients the interval is wide: an interval that contains 0
        says the patients cannot tell the two models apart. An interval that excludes 0 does
        not prove the reverse on a handful of patients: the resamples can only reuse the few
        values seen, so the interval comes out too narrow (:func:`paired_sign_flip` says how
        often chance alone gives such a difference).
    """
    differences = _paired_differences(first, second)
    if not 0 < level < 1:
        raise ValueError(f"level must be a coverage between 0 and 1 (0.95 for 95 %), got {level}")
    check_whole_number("resamples", resamples)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[draws].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return {"difference": float(differences.mean()), "low": float(np.percentile(means, tail)),
            "high": float(np.percentile(means, 100 - tail)), "n": len(differences)}


def paired_sign_flip(first, second, exact_up_to: int = EXACT_UP_TO,
                     resamples: int = SIGN_FLIP_RESAMPLES,
                     seed: int = 0) -> dict[str, float]:
    """Could chance alone give the patients' paired differences this mean? The paired
    randomization (sign-flip) test: if the two models were interchangeable, each patient's
    difference ``first - second`` would be as likely negative as positive. Every one of the
    ``2^n`` ways of flipping the differences' signs is then equally likely; ``p`` is the share
    of them whose mean lies at least as far from 0 as the observed one (two-sided).

    With ``n`` patients ``p`` can never fall below ``2 / 2^n`` (all differences of one sign, and
    the mirror image): 4 patients can at best give ``p = 0.125``, so no comparison on 4 patients
    reaches the usual 0.05, however consistent it looks. (A percentile bootstrap on so few
    patients gives intervals that are too narrow: it cannot see beyond the values drawn.)
    Beyond ``exact_up_to`` patients, where patterns are drawn, the floor is that of the
    estimate, ``1 / (1 + resamples)``.

    Args:
        first, second: one score per patient, in the same patient order.
        exact_up_to: enumerate all sign patterns up to this many patients; beyond it, draw
            ``resamples`` random ones (``seed``) and count the observed pattern in.

    Returns:
        ``{"difference", "p", "smallest_p", "n"}``.
    """
    differences = _paired_differences(first, second)
    n = len(differences)
    means = sign_flip_means(first, second, exact_up_to, resamples, seed)
    as_far = int(as_far_as_observed(means, first, second).sum())
    p = float(as_far / len(means) if n <= exact_up_to else (1 + as_far) / (1 + resamples))
    return {"difference": float(differences.mean()), "p": p,
            "smallest_p": smallest_sign_flip_p(n, exact_up_to, resamples), "n": n}


def smallest_sign_flip_p(n: int, exact_up_to: int = EXACT_UP_TO,
                         resamples: int = SIGN_FLIP_RESAMPLES) -> float:
    """The smallest p :func:`paired_sign_flip` can give on ``n`` patients, however consistent
    their differences: ``2 / 2^n`` (a clean sweep and its mirror image) where every pattern is
    counted, ``1 / (1 + resamples)`` where they are drawn."""
    return min(1.0, 2.0 / 2 ** n) if n <= exact_up_to else 1.0 / (1 + resamples)


def sign_flip_means(first, second, exact_up_to: int = EXACT_UP_TO,
                    resamples: int = SIGN_FLIP_RESAMPLES,
                    seed: int = 0) -> np.ndarray:
    """The mean paired difference ``first - second`` under each way of flipping the
    differences' signs, as :func:`paired_sign_flip` counts them: all ``2^n`` patterns up to
    ``exact_up_to`` patients (pattern 0, no flip, first: the observed mean), else
    ``resamples`` random ones (``seed``). Returns float64 (2^n,) or (resamples,)."""
    differences = _paired_differences(first, second)
    check_whole_number("resamples", resamples)
    n = len(differences)
    if n <= exact_up_to:
        patterns = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1  # (2^n, n) of 0/1
        signs = 1 - 2 * patterns
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(resamples, n))
    return (signs * differences).mean(axis=1)


def as_far_as_observed(means: np.ndarray, first, second) -> np.ndarray:
    """(len(means),) bool: which of :func:`sign_flip_means`' means lie at least as far from
    0 as the observed mean difference (rounding in the last digits counts as a tie)."""
    differences = _paired_differences(first, second)
    return np.abs(means) >= abs(differences.mean()) - _tie_tolerance(differences)


def _tie_tolerance(differences: np.ndarray) -> float:
    return 1e-12 * max(1.0, float(np.abs(differences).max()))
