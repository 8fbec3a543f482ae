"""Rendering of the UI's HTML page shells from the Jinja2 templates in ``templates/``.

Autoescaping is on for every template: any value a page is given (a trace id, a
session id, a service name from the URL) is written as text, never as markup.
Undefined names fail loudly instead of rendering as empty text.
"""

from __future__ import annotations

from typing import Final

import jinja2

_ENVIRONMENT: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("threadline.server.ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_page(template: str, **context: object) -> str:
    """The HTML of ``template`` rendered with ``context``."""
    return _ENVIRONMENT.get_template(template).render(**context)
