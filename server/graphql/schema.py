"""The GraphQL schemas: the system-level one (`/fhir/$graphql`: the dose analytics beside
the FHIR resources) and one per resource type for the instance level
(`/fhir/<Type>/<id>/$graphql`, whose root is that resource, as FHIR GraphQL wants).

The FHIR types are generated once (about 1 s of a core), in the fork server that forks the HTTP
processes of `kerma serve` (server/preload_http.py), else on first use; the schemas are kept.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import strawberry
from strawberry.tools import merge_types

from server.config import Settings
from server.graphql.analytics import Analytics
from server.graphql.errors import Schema
from server.graphql.fhir_fields import FhirFields
from server.graphql.fhir_types import read_json
from server.graphql.limits import limits

P = ParamSpec("P")
R = TypeVar("R")


_BUILDING = threading.RLock()


def _once(build: Callable[P, R]) -> Callable[P, R]:
    """functools.cache where one thread builds and the others wait for it (kerma serve's
    warm-up thread and an early request would otherwise both spend the seconds)."""
    cached = functools.cache(build)

    @functools.wraps(build)
    def get(*args: P.args, **kwargs: P.kwargs) -> R:
        with _BUILDING:
            return cached(*args, **kwargs)  # type: ignore[arg-type]

    return get


@_once
def fhir_fields() -> FhirFields:
    return FhirFields()


@_once
def system_schema(max_depth: int, max_cost: int) -> Schema:
    fields = fhir_fields()
    resources = type("Resources", (), {})
    for attr, field in fields.query_fields().items():
        setattr(resources, attr, field)
    query = merge_types("Query", (Analytics, strawberry.type(resources)))
    return _reading_json(Schema(query=query, extensions=limits(max_depth, max_cost)))


@_once
def instance_schema(rtype: str, max_depth: int, max_cost: int) -> Schema:
    root = fhir_fields().types.resources[rtype]
    return _reading_json(Schema(query=root, extensions=limits(max_depth, max_cost)))


def _reading_json(schema: Schema) -> Schema:
    read_json(schema._schema, fhir_fields().types)  # graphql-core's schema under strawberry's
    return schema


def sdl() -> str:
    """The system-level schema as SDL, for openapi/schema.graphql."""
    defaults = Settings()
    return system_schema(defaults.graphql_max_depth, defaults.graphql_max_cost).as_str() + "\n"
