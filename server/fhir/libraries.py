"""Libraries that carry a site's tables as text attachments (FHIR asset collections): the
classification rules, the site's choices. Built and read here; their owners check what the
tables say."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from server.fhir.errors import FhirError, Issue

_ASSET_COLLECTION = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/library-type", "code": "asset-collection"}
    ]
}


def asset_library(
    identifier: tuple[str, str],
    name: str,
    title: str,
    files: dict[str, tuple[str, str]],
    version: str | None = None,
) -> dict[str, Any]:
    """An active asset-collection Library identified by (system, value), with one attachment
    per content type: (file title, text)."""
    system, value = identifier
    library: dict[str, Any] = {"resourceType": "Library",
                               "identifier": [{"system": system, "value": value}]}  # fmt: skip
    if version is not None:
        library["version"] = version
    return {
        **library,
        "name": name,
        "title": title,
        "status": "active",
        "type": _ASSET_COLLECTION,
        "content": [
            {
                "contentType": kind,
                "title": file_title,
                "data": base64.b64encode(text.encode()).decode(),
            }
            for kind, (file_title, text) in files.items()
        ],
    }


def attachment_texts(resource: dict[str, Any], kinds: Iterable[str]) -> dict[str, str]:
    """The text of each attachment of those content types; 422 naming the first one that is
    not base64 of UTF-8 text."""
    wanted, texts = set(kinds), {}
    for n, attachment in enumerate(resource.get("content") or []):
        kind = attachment.get("contentType")
        if kind in wanted:
            try:
                texts[kind] = base64.b64decode(attachment.get("data", ""), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise FhirError(422, Issue("invalid", f"content[{n}].data is not base64 of UTF-8 text",
                                           expression=f"Library.content[{n}]")) from None  # fmt: skip
    return texts
