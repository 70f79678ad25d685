"""A table's caption travels as an HTML comment on the line before it (markdown_table writes
it; the Markdown pages write it by hand) and the book's Sphinx extension makes it the table's
title, which the HTML writer renders as its <caption>."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from docutils import nodes
from docutils.core import publish_doctree, publish_from_doctree
from myst_parser.parsers.docutils_ import Parser

from unet_lib.summary import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
from table_captions import caption_tables, chapter_of, number_by_page  # noqa: E402

ROWS = [{"model": "classic", "Dice": 0.9125}, {"model": "improved", "Dice": 0.93}]


def _doctree(markdown: str) -> nodes.document:
    return publish_doctree(markdown, parser=Parser())


def test_markdown_table_writes_its_caption_as_a_comment_on_the_line_before():
    text = markdown_table(ROWS, formats={"Dice": ".2f"}, caption="Dice per model,\n  on test")
    assert text.splitlines() == ["<!-- table: Dice per model, on test -->", "| model | Dice |",
                                 "|---|---|", "| classic | 0.91 |", "| improved | 0.93 |"]
    assert not markdown_table(ROWS).startswith("<!--")  # no caption asked, none written


@pytest.mark.parametrize("caption", ["", "  ", "a -- b", "ends -->"])
def test_a_caption_that_would_break_its_comment_is_refused(caption):
    with pytest.raises(ValueError, match="caption = "):
        markdown_table(ROWS, caption=caption)


def test_the_comment_becomes_the_tables_caption_in_the_html():
    tree = _doctree(markdown_table(ROWS, caption="Dice per model") + "\n\n<!-- a note -->\n\n"
                    + markdown_table(ROWS))
    assert caption_tables(tree) == 1
    first, second = tree.findall(nodes.table)
    assert first[0].astext() == "Dice per model" and isinstance(first[0], nodes.title)
    assert not list(second.findall(nodes.title))
    html = publish_from_doctree(tree, writer_name="html5").decode()
    assert "<caption>Dice per model</caption>" in html
    assert "<!-- table:" not in html and "<!-- a note -->" in html  # other comments stay


def test_a_caption_comment_without_a_table_after_it_is_left_alone():
    tree = _doctree("<!-- table: nothing follows -->\n\nA paragraph.\n")
    assert caption_tables(tree) == 0
    assert [raw.astext().strip() for raw in tree.findall(nodes.raw)] == [
        "<!-- table: nothing follows -->"]


def test_each_chapter_numbers_its_tables_and_figures_after_itself():
    # as Sphinx numbers them: through the book, in reading order
    numbers = {"book/intro": {"table": {"t-a": (1,)}, "figure": {"f-a": (1,)}},
               "book/01_classic_unet": {"table": {"t-c": (4,), "t-b": (2,), "t-d": (3,)}},
               "book/10_going_on": {"table": {"t-e": (5,)}},
               "book/data_card": {"table": {"t-g": (7,), "t-f": (6,)}, "figure": {"f-b": (2,)}}}
    number_by_page(numbers)
    assert numbers == {"book/intro": {"table": {"t-a": (1,)}, "figure": {"f-a": (1,)}},
                       "book/01_classic_unet": {"table": {"t-c": (1, 3), "t-b": (1, 1),
                                                          "t-d": (1, 2)}},
                       "book/10_going_on": {"table": {"t-e": (10, 1)}},
                       "book/data_card": {"table": {"t-g": (2,), "t-f": (1,)},
                                          "figure": {"f-b": (1,)}}}


@pytest.mark.parametrize("docname, chapter", [("book/07_brats_evaluation", (7,)),
                                              ("12_more", (12,)), ("book/instructor", ()),
                                              ("book/00_prelude", ()), ("book/2024/notes", ())])
def test_a_chapter_is_known_by_the_number_its_page_name_starts_with(docname, chapter):
    assert chapter_of(docname) == chapter
