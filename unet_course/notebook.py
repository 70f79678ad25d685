"""Helpers for the notebooks themselves: values quoted in the book's text."""

from __future__ import annotations

import os

#: set by the book's build (``book/_ext/book_build.py``) for the notebooks it runs
BOOK_BUILD_VARIABLE = "UNET_COURSE_BOOK_BUILD"


def glue(name: str, value, display: bool = False) -> None:
    """Make ``value`` quotable in the book's text as ``{glue:text}`name```.

    In the book's build, ``myst_nb.glue`` stores it and the page shows it in the sentence that
    quotes it. Elsewhere (JupyterLab, Colab, nbval), where the text shows the bare role
    ``{glue:text}`name```, the value is printed under the cell instead, as ``name = value``,
    so that a student reads the numbers the text speaks of.
    """
    if os.environ.get(BOOK_BUILD_VARIABLE):
        from myst_nb import glue as myst_glue

        myst_glue(name, value, display=display)
    else:
        print(f"{name} = {value}  (quoted in the text as {{glue:text}}`{name}`)")


def counted(noun: str, items) -> str:
    """``items`` after ``noun`` in a sentence the book glues: ``"patient 5"``, ``"patients 2
    and 5"``, ``"patients 2, 3 and 5"`` (the plural adds an s)."""
    words = [str(item) for item in items]
    if not words:
        raise ValueError(f"no {noun} to name")
    if len(words) == 1:
        return f"{noun} {words[0]}"
    return f"{noun}s {', '.join(words[:-1])} and {words[-1]}"
