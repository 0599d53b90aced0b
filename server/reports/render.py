"""HTML from the Jinja2 templates of server/reports/templates, and PDF from it (WeasyPrint)."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("server.reports", "templates"), autoescape=select_autoescape()
    )
    env.filters["number"] = lambda v: "" if v is None else f"{v:.4g}"
    return env


def html(template: str, **data: Any) -> str:
    return _environment().get_template(template).render(**data)


def pdf(template: str, **data: Any) -> bytes:
    from weasyprint import HTML  # loads pango: only when a report is made

    return bytes(HTML(string=html(template, **data)).write_pdf())
