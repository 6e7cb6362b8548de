"""Sphinx extension of the course book: the repository and release tag from the one setting; no duplicate scripts.

The book's source, issue and launch (Binder, Colab) buttons point at ``course_lib.repository_url()``, the
``[project.urls] Repository`` entry of ``pyproject.toml``, and the launch buttons open the tag of this version,
``course_lib.release_ref()`` (``v`` + the package version), the ref the notebooks' install cell installs:
``_config.yml`` names no address and no branch of its own.

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


def _repository_from_the_package(app, config) -> None:
    from course_lib import release_ref, repository_url

    config.html_theme_options = {**config.html_theme_options, "repository_url": repository_url(),
                                 "repository_branch": release_ref(),
                                 "use_repository_button": True, "use_issues_button": True}


def setup(app):
    app.connect("config-inited", _repository_from_the_package)
    app.connect("html-page-context", _dedupe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
