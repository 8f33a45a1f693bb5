"""A Sphinx extension of the book's own: each script once per page.

jupyter-book 1 runs the set-up of sphinx-thebe and sphinx-togglebutton twice, so every page
would declare ``THEBE_JS_URL`` twice and the browser would report an error on each page.
"""

from __future__ import annotations


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {})
    return (
        str(getattr(script, "filename", script) or ""),  # None and "" both mean inline
        tuple(sorted((k, str(v)) for k, v in attributes.items())),
    )


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    seen: set[tuple] = set()
    unique = []
    for script in context.get("script_files", []):
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    # Early: a later handler may return a template name, which ends the event.
    app.connect("html-page-context", _unique_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
