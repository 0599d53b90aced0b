"""Bounds on what one request may ask, so that no request costs the server without end: a
body nested deeper than any FHIR resource is (JSON and XML), a search with more parameters or
values than any client needs. Each is a 400 with the bound, never a crash (SQLite's parser
and Python's recursion both have limits of their own that a hostile request can reach)."""

from __future__ import annotations

from typing import Any

from server.fhir.errors import FhirError

MAX_NESTING = 64  # a Bundle of Observations with extensions is about 12 deep
MAX_SEARCH_PARAMETERS = 100
MAX_VALUES = 100  # comma-separated values of one parameter (OR)
MAX_IDS = 10_000  # _id values: one SQL IN list
MAX_CHAIN_LINKS = 2  # subject:Patient.organization.name


def check_nesting(value: Any) -> None:
    """400 when objects and arrays nest deeper than MAX_NESTING (checked without recursion)."""
    frontier = [(value, 1)]
    while frontier:
        node, depth = frontier.pop()
        if depth > MAX_NESTING:
            raise FhirError.of(400, "too-costly",
                               f"the body nests deeper than {MAX_NESTING} levels")  # fmt: skip
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        frontier.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
