"""HTML from the Jinja2 templates of server/reports/templates, and PDF from it (WeasyPrint)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("server.reports", "templates"), autoescape=select_autoescape()
    )
    env.filters["number"] = readable
    return env


def readable(value: float | None, digits: int = 3) -> str:
    """A number for reading: `digits` significant digits, thousands separated, no exponent.

    >>> readable(1234.5), readable(0.0000328), readable(12.345), readable(700.0), readable(0)
    ('1,230', '0.0000328', '12.3', '700', '0')
    """
    if value is None:
        return ""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = digits - 1 - math.floor(math.log10(abs(value)))
    rounded = round(value, decimals)
    return f"{rounded:,.0f}" if decimals <= 0 else f"{rounded:,.{decimals}f}"


def html(template: str, **data: Any) -> str:
    return _environment().get_template(template).render(**data)


def pdf(template: str, attachments: Sequence[tuple[str, bytes]] = (), **data: Any) -> bytes:
    """PDF/A-3b (ISO 19005-3: archivable, fonts embedded) with `attachments` (file name,
    content) embedded as the data the document presents, so document and data travel
    together."""
    from weasyprint import HTML, Attachment  # loads pango: only when a report is made

    files = [Attachment(string=content, name=name, relationship="Data",
                        description="the FHIR Bundle this document presents")
             for name, content in attachments]  # fmt: skip
    document = HTML(string=html(template, **data))
    return bytes(document.write_pdf(pdf_variant="pdf/a-3b", attachments=files))
