"""A Sphinx extension that gives the book's tables their captions.

A table's caption is written as an HTML comment on the line before it,
``<!-- table: what the table shows -->`` (``unet_lib.summary.markdown_table(caption=...)``
writes it in the chapters' outputs; the Markdown pages write it by hand): invisible in
JupyterLab and on GitHub, and turned here into the table's title, which the HTML writer
renders as its ``<caption>`` (numbered, "Table 7.2: ...", as Sphinx numbers captioned tables):
what a screen reader announces on entering the table.

Sphinx numbers tables and figures through the whole book ("Table 33" in an appendix) unless
the table of contents is numbered, which would number every heading too. The chapters carry
their numbers in their file names and titles ("07_brats_evaluation", "7. Evaluating as BraTS
does"), so :func:`number_by_page` numbers each chapter's tables and figures after it ("Table
7.2", as exercise 7.2), and those of a page without a chapter number from 1 on that page.
Sphinx then finds the numbers of such pages changed on every build (it compares its own with
these) and writes them again: the book is always built afresh (``make book``), so nothing is
lost but an incremental build's saving.
"""

from __future__ import annotations

import re

from docutils import nodes

#: the comment that carries a caption
CAPTION_COMMENT = re.compile(r"^\s*<!--\s*table:\s*(?P<caption>.+?)\s*-->\s*$", re.S)
#: a chapter's page name: its number, an underscore, its subject ("book/07_brats_evaluation")
CHAPTER_PAGE = re.compile(r"(?:^|/)0*(?P<number>[1-9]\d*)_[^/]+$")


def caption_tables(doctree: nodes.Node) -> int:
    """Move every caption comment into the table right after it, as its title; return how
    many tables got one. A comment not followed by a table is left as it is."""
    captioned = 0
    for raw in list(doctree.findall(nodes.raw)):
        found = CAPTION_COMMENT.match(raw.astext())
        following = raw.next_node(descend=False, siblings=True)
        if not found or "html" not in raw.get("format", "").split():
            continue
        if not isinstance(following, nodes.table) or following.next_node(nodes.title):
            continue
        following.insert(0, nodes.title("", found["caption"]))
        if not following["ids"]:  # a captioned table is numbered ("Table 2"): it needs an id
            doctree.document.set_id(following)
        raw.parent.remove(raw)
        captioned += 1
    return captioned


def chapter_of(docname: str) -> tuple[int, ...]:
    """``(7,)`` for a chapter's page ("book/07_brats_evaluation"); ``()`` for any other page."""
    found = CHAPTER_PAGE.search(docname)
    return (int(found["number"]),) if found else ()


def number_by_page(numbers: dict[str, dict[str, dict[str, tuple[int, ...]]]]) -> None:
    """Renumber, in place, Sphinx's ``env.toc_fignumbers`` (page → kind ("table", "figure")
    → element id → its number as a tuple, counted through the book in reading order): each
    page counts from 1 in the same order, after its chapter number where it has one."""
    for docname, kinds in numbers.items():
        chapter = chapter_of(docname)
        for numbered in kinds.values():
            in_order = sorted(numbered, key=numbered.__getitem__)
            for count, element_id in enumerate(in_order, start=1):
                numbered[element_id] = (*chapter, count)


def _on_doctree_read(app, doctree) -> None:
    caption_tables(doctree)


def _on_env_get_updated(app, env) -> list[str]:
    number_by_page(env.toc_fignumbers)  # after Sphinx has numbered them (priority 500)
    return []


def setup(app):
    app.connect("doctree-read", _on_doctree_read)
    app.connect("env-get-updated", _on_env_get_updated, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
