"""Helpers for the notebooks themselves: values quoted in the book's text."""

from __future__ import annotations


def glue(name: str, value, display: bool = False) -> None:
    """Make ``value`` quotable in the book's text as ``{glue:text}`name```, with
    ``myst_nb.glue``; does nothing where myst-nb is not installed (e.g. on Colab)."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)
