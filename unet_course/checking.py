"""How the lab checks answer: ``Right``, ``Not answered yet``, or a hint that says how an
answer is off (too high, too low, which value) without giving the expected value — which
:func:`reveal` prints, on request only."""

from __future__ import annotations

import functools
import math
import numbers

from unet_lib.runtime import randomness_kept


class NotYet(AssertionError):
    """A lab answer that does not match; the message gives a hint, not the answer."""

    def _render_traceback_(self) -> list[str]:
        """What Jupyter shows for it: the message alone. The check's own lines, which a
        traceback would print above it, are no help to a student (IPython calls this)."""
        return [f"{type(self).__name__}: {self}"]


def own_randomness(check):
    """``check`` run inside :func:`unet_lib.runtime.randomness_kept`: a check that seeds or
    draws (random inputs, a model built only to be counted) leaves the student's random
    streams as they were, so that a notebook's next random numbers do not depend on whether a
    check cell ran."""

    @functools.wraps(check)
    def kept(*args, **kwargs):
        with randomness_kept():
            return check(*args, **kwargs)

    return kept


#: exercise → (what was asked, the expected answer) of the latest check run, for reveal()
_ASKED: dict[str, tuple[str, object]] = {}


def asked(exercise: str, what: str, expected) -> None:
    """Remember the answer of ``exercise`` as its check has just worked it out."""
    _ASKED[exercise] = (what, expected)


#: the exercises whose answer is code (:mod:`unet_course.exercises`): their solution cell is it
CODING_EXERCISES = {"1.4": "a level's double convolution",
                    "1.5": "the U-Net's forward pass, skips and all",
                    "2.4": "a separable convolution",
                    "3.3": "the attention gate's forward pass",
                    "4.5": "one training step, as fit() takes it",
                    "6.4": "Dice, precision and recall from counts",
                    "7.3": "keeping a mask's largest connected piece"}


#: the exercises whose check works out an answer that :func:`reveal` can print (4.2b: 4.2's
#: second part, real BraTS); the others are questions to discuss or models to train
ANSWERED_EXERCISES = ("1.1", "1.2", "2.1", "2.2", "3.1", "3.2", "4.1", "4.2", "4.2b", "5.1",
                      "5.2", "6.1", "6.2", "7.1", "7.2", "8.1", "8.2", "9.1", "9.2")


def reveal(exercise: str) -> None:
    """Print the answer of ``exercise`` (e.g. ``"2.1"``) as its check last worked it out."""
    if exercise not in CODING_EXERCISES and exercise not in ANSWERED_EXERCISES:
        print(f"Exercise {exercise!r} has no answer to reveal: those with one are "
              f"{', '.join(ANSWERED_EXERCISES)}, and the code exercises "
              f"{', '.join(CODING_EXERCISES)} (their solution cell); the other exercises are "
              f"questions to discuss or models to train.")
        return
    if exercise in CODING_EXERCISES:
        print(f"Exercise {exercise} asks for code ({CODING_EXERCISES[exercise]}): its answer is "
              f"the solution cell under the check (\"Show the solution\" in the book; in "
              f"JupyterLab, click the collapsed cell to open it).")
        return
    if exercise not in _ASKED:
        known = ", ".join(sorted(_ASKED)) or "none yet"
        print(f"Run the check cell of exercise {exercise} first (with any answer, even None): "
              f"the answer depends on its numbers. Checked so far: {known}.")
        return
    what, expected = _ASKED[exercise]
    print(f"Exercise {exercise}: {what} is {shown_value(expected)}.")


def unanswered(answer, exercise: str | None = None, what: str = "", expected=None) -> bool:
    """``True`` (and say so) when ``answer`` is still ``None`` or ``...``; remembers the
    expected answer of ``exercise`` either way."""
    if exercise is not None:
        asked(exercise, what, expected)
    if answer is None or answer is Ellipsis:
        print("Not answered yet: replace None with your answer and run this cell again.")
        return True
    return False


def plain(answer):
    """``answer`` as plain Python: a NumPy or PyTorch number (``np.argmax(...)``,
    ``tensor.sum()``) as an ``int`` or ``float``, an array or tensor as a list; anything else
    as it is."""
    if hasattr(answer, "tolist") and hasattr(answer, "ndim"):  # NumPy and PyTorch alike,
        return answer.tolist()  # their scalars and 0-d arrays included
    return answer


def reveal_hint(exercise: str) -> str:
    """What a hint ends with: ``' (labs.reveal("9.1") gives the answer)'``."""
    return f' (labs.reveal("{exercise}") gives the answer)'


def shown_value(value) -> str:
    """``value`` as a message shows it: a float to 4 significant figures, after ``≈`` where
    that rounds it (``≈ 0.5714``, ``0.25``), with more figures where 4 would round it to a
    whole number it is not (``0.99996``, not ``≈ 1``: a probability of 1 is another answer);
    anything else as its ``repr``."""
    if not isinstance(value, float) or not math.isfinite(value):
        return repr(value)
    for figures in range(4, 18):
        short = f"{value:.{figures}g}"
        if float(short) == value:
            return short
        if not float(short).is_integer():
            break
    return f"≈ {short}"


def is_number(value) -> bool:
    """A real number that is not a bool (``True`` is no answer to "how many")."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _ordinal(i: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(i, f"{i}th")


def direction(answer, expected) -> str:
    """How a wrong ``answer`` is off from ``expected``, without saying ``expected``."""
    answer = plain(answer)
    if is_number(expected):
        if not is_number(answer):
            return f"should be a number, not {type(answer).__name__}"
        if math.isnan(answer):
            return "is NaN, not a number (a score's 0/0 has a rule of its own)"
        return "is too high" if answer > expected else "is too low"
    if isinstance(expected, (tuple, list)):
        if not isinstance(answer, (tuple, list)) or len(answer) != len(expected):
            return f"should be a {type(expected).__name__} of {len(expected)} values"
        for i, (a, e) in enumerate(zip(answer, expected), start=1):
            if a != e:
                return f"has its {_ordinal(i)} value {direction(a, e).removeprefix('is ')}"
    return "is not it"


def check(answer, expected, what: str, hint: str, tolerance: float = 0.0,
          exercise: str | None = None, share: bool = False) -> None:
    """Print ``Right`` when ``answer`` equals ``expected`` (numbers within a relative
    ``tolerance``; NumPy and PyTorch numbers count as numbers, :func:`plain`); otherwise raise
    :class:`NotYet` with the direction and the ``hint``. A ``share`` (a score from 0 to 1)
    given as a percentage is told so, not "too high"."""
    answer = plain(answer)
    if (share and is_number(answer) and is_number(expected) and expected > 0
            and math.isclose(float(answer), 100 * float(expected), rel_tol=max(tolerance, 1e-2))):
        raise NotYet(f"Not yet: your answer for {what} is a percentage. Hint: give it as a "
                     f"share of 1 (from 0 to 1), as the chapter gives it"
                     + (reveal_hint(exercise) if exercise else ""))
    if is_number(expected):
        ok = is_number(answer) and math.isclose(float(answer), float(expected),
                                                rel_tol=tolerance, abs_tol=1e-9)
    else:
        ok = answer == expected
    if not ok:
        ask = reveal_hint(exercise) if exercise else ""
        raise NotYet(f"Not yet: your answer for {what} {direction(answer, expected)}. "
                     f"Hint: {hint}{ask}")
    print(f"Right: {what} is {shown_value(expected)}.")


# --- the coding exercises: the student's function is run, and what it raises is told -------

#: what a skeleton still left as ``...`` prints
NOT_ANSWERED = ("Not answered yet: fill in the function above (replace the ...) and run both "
                "cells. (Filled in already? Then it returns None: a return is missing.)")


def code_answered(result, later_call: str | None = None, hint: str = "") -> bool:
    """``False`` (and say so) when the student's function returned ``None`` or ``...`` on its
    first call: its body is still the skeleton's ``...``. On a ``later_call`` (what it was,
    e.g. ``"scores(0, 0, 5)"``), the function has returned a value before, so ``None`` is a
    missing return on that path: :class:`NotYet`, with ``hint``."""
    if result is None or result is Ellipsis:
        if later_call is not None:
            raise NotYet(f"Not yet: {later_call} returned {result!r}, where an earlier call "
                         f"returned a value: a return is missing on this path."
                         + (f" Hint: {hint}" if hint else ""))
        print(NOT_ANSWERED)
        return False
    return True


def raised(what: str, error: Exception, hint: str = "") -> NotYet:
    """The message for an error the student's code raised: what raised what, not a traceback;
    ``hint`` follows it (``". Hint: ..."``; its first full stop is dropped after one that ends
    the error's own message)."""
    message = str(error).rstrip()
    if message.endswith(".") and hint.startswith("."):
        hint = hint[1:]
    return NotYet(f"Not yet: {what} raised {type(error).__name__}: {message}" + hint)


def run_answer(function, *args, what: str):
    """``function(*args)``; an error it raises becomes a :class:`NotYet` naming it."""
    try:
        return function(*args)
    except Exception as error:  # the student's code: say what went wrong, not a traceback
        raise raised(what, error) from None
