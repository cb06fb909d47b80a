"""HTML pages from jinja2 templates (`gcgbench/html/templates/`, shipped as package data).

Every template is rendered with autoescaping on, so model names, citations, answers and any other value
from a file are text on the page, never markup; a value that is already HTML must be passed as
`markupsafe.Markup` (built from other templates, e.g. the report's answer with coloured phrases).
`StrictUndefined`: a name missing from the context is an error, not an empty string.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("gcgbench.html", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    """The named template rendered with `context` (autoescaped)."""
    return environment().get_template(template).render(**context)


def fragment(template: str, **context: Any):
    """A rendered template as `Markup`, to be placed in another template without being escaped again."""
    from markupsafe import Markup

    return Markup(render(template, **context))
