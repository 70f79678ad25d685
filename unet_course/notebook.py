"""Helpers for the notebooks themselves: values quoted in the book's text, tables shown."""

from __future__ import annotations

import os
from collections.abc import Sequence

from unet_lib.summary import markdown_table

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


def show_markdown(text: str) -> None:
    """Show ``text`` as Markdown under the cell (a table, a bold sentence) in a notebook, the
    book's build included; as the text itself where nothing renders Markdown: plain Python,
    a terminal IPython or ``jupyter console`` (which take the plain-text form)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # the library's own tests run without IPython
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
    else:
        display({"text/markdown": text, "text/plain": text}, raw=True)


def show_table(rows: Sequence[dict], columns: Sequence[str] | None = None,
               formats: dict[str, str] | None = None, *, caption: str,
               heading: str | None = None) -> None:
    """Show ``rows`` (dicts) as a table under the cell: :func:`unet_lib.summary.markdown_table`
    with its ``columns`` and ``formats``, and ``caption`` saying what the table shows (the book
    makes it the table's caption). ``heading``, if given, is a bold line above the table."""
    table = markdown_table(rows, columns, formats, caption=caption)
    show_markdown(table if heading is None else f"**{heading}**\n\n{table}")
