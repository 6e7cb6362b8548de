"""Sphinx extension of the course book: drop duplicate inline ``<script>`` tags.

Sphinx 7.4 registers an inline script added with ``app.add_js_file(None, body=...)`` after the builder's
``init()`` twice (once as ``None``, once as ``''``); sphinx-thebe and sphinx-togglebutton do so, and the
duplicated ``const THEBE_JS_URL`` declaration is a JavaScript SyntaxError on every page of the book.
"""
from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", script) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
