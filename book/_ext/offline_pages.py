"""A Sphinx extension for pages that work offline and without console errors.

sphinx-thebe (pulled in by Jupyter Book 1) adds its configuration script twice on some builds,
which makes every page throw "Identifier 'THEBE_JS_URL' has already been declared". This drops
repeated scripts from each page. (Thebe's live-code button itself would need a CDN; the book
does not enable it.)
"""


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (str(getattr(script, "filename", script) or ""),  # inline: None or ""
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
