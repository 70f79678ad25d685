"""A Sphinx extension that gives the book's tables their captions.

A table's caption is written as an HTML comment on the line before it,
``<!-- table: what the table shows -->`` (``unet_lib.summary.markdown_table(caption=...)``
writes it in the chapters' outputs; the Markdown pages write it by hand): invisible in
JupyterLab and on GitHub, and turned here into the table's title, which the HTML writer
renders as its ``<caption>`` (numbered, "Table 1: ...", as Sphinx numbers captioned tables):
what a screen reader announces on entering the table.
"""

from __future__ import annotations

import re

from docutils import nodes

#: the comment that carries a caption
CAPTION_COMMENT = re.compile(r"^\s*<!--\s*table:\s*(?P<caption>.+?)\s*-->\s*$", re.S)


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


def _on_doctree_read(app, doctree) -> None:
    caption_tables(doctree)


def setup(app):
    app.connect("doctree-read", _on_doctree_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
