"""The GraphQL schemas: the system-level one (`/fhir/$graphql`: the dose analytics beside
the FHIR resources) and one per resource type for the instance level
(`/fhir/<Type>/<id>/$graphql`, whose root is that resource, as FHIR GraphQL wants).

The FHIR types are generated once (about 1 s of a core), in the fork server that forks the HTTP
processes of `kerma serve` (server/preload_http.py), else on first use; the schemas are kept.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import strawberry
from graphql import GraphQLObjectType, GraphQLSchema
from strawberry.schema.schema_converter import GraphQLCoreConverter
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
    """The system schema's own types from `rtype` down: what strawberry would make of that
    type as the root (the same SDL: tests/graphql/test_graphql.py), without converting every
    type again for each root (0.2-1 s of a core each, with an allocator-heavy process's
    garbage collections)."""
    system = system_schema(max_depth, max_cost)
    instance = copy.copy(system)
    instance.query = fhir_fields().types.resources[rtype]
    whole = system._schema
    root = whole.type_map[rtype]
    assert isinstance(root, GraphQLObjectType)
    instance._schema = GraphQLSchema(
        query=root,
        directives=whole.directives,
        extensions={**whole.extensions, GraphQLCoreConverter.DEFINITION_BACKREF: instance},
    )
    instance._schema._strawberry_schema = instance  # type: ignore[attr-defined]  # as strawberry
    return instance


def _reading_json(schema: Schema) -> Schema:
    read_json(schema._schema, fhir_fields().types)  # graphql-core's schema under strawberry's
    return schema


def sdl() -> str:
    """The system-level schema as SDL, for openapi/schema.graphql."""
    defaults = Settings()
    return system_schema(defaults.graphql_max_depth, defaults.graphql_max_cost).as_str() + "\n"
