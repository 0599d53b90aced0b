"""GraphQL object types for the FHIR resources Kerma stores, generated from the fhir.resources
(R4B) models, so a query selects fields by their FHIR JSON names (`valueQuantity`, `_birthDate`)
and gets them in their FHIR shape.

Strawberry declares the types; the resources stay the JSON dicts the store holds. Types are
made in two passes because FHIR's types refer to each other in cycles (Identifier ->
Reference -> Identifier): first an empty class per model, then its fields. `extra` lets the
caller add fields that need the store (Reference.resource, reverse references on resources);
it gets the types, all made but not yet filled.

Once the schema is built, `read_json` hands the element fields to graphql-core's own
resolver, which reads a key of a dict: strawberry's resolver machinery costs about 40 us a
field, and a page of studies with their events selects tens of thousands of fields.
"""

from __future__ import annotations

import decimal
import typing
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar, Union

import strawberry
from fhir.resources.R4B import get_fhir_model_class
from graphql import (
    GraphQLArgument,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
)
from pydantic import BaseModel
from strawberry.types.field import StrawberryField

Extra = Callable[[str, "FhirTypes"], dict[str, StrawberryField]]
_PRIMITIVES: dict[type, type] = {bool: bool, int: int, decimal.Decimal: float}
_T = TypeVar("_T")


class FhirTypes:
    """The GraphQL type of every model reachable from the stored resource types."""

    def __init__(self, resource_types: tuple[str, ...], extra: Extra) -> None:
        self.classes: dict[str, type] = {}
        self._models: dict[str, type[BaseModel]] = {}
        # per type, its element fields: JSON key -> whether it repeats
        self.elements: dict[str, dict[str, bool]] = {}
        for rtype in resource_types:
            self._collect(get_fhir_model_class(rtype))
        self.resources = {rtype: self.classes[rtype] for rtype in resource_types}
        self.resource_union: Any = Annotated[
            Union[tuple(self.resources.values())],  # noqa: UP007  # a Union made at run time
            strawberry.union("Resource", description="a resource Kerma stores"),
        ]
        for name, model in self._models.items():
            fields = dict(self._fields(name, model))
            fields.update(extra(name, self))
            cls = self.classes[name]
            for attr, field in fields.items():
                setattr(cls, attr, field)
            strawberry.type(cls, name=name, description=_description(model))

    def _collect(self, model: type[BaseModel]) -> None:
        name = model.__name__
        if name in self.classes:
            return
        self.classes[name] = type(name, (), {"__annotations__": {}})
        self._models[name] = model
        for info in model.model_fields.values():
            inner = _model_of(info.annotation)
            if inner is not None and inner.__name__ != "Resource":
                self._collect(inner)

    def _fields(self, name: str, model: type[BaseModel]) -> Iterator[tuple[str, StrawberryField]]:
        elements = self.elements.setdefault(name, {})
        for attr, info in model.model_fields.items():
            if attr in ("fhir_comments", "resource_type"):
                continue
            graphql_type, many = self._type_of(info.annotation)
            if graphql_type is None:
                continue
            key = info.alias or attr
            elements[key] = many
            shape = list[graphql_type] | None if many else graphql_type | None  # type: ignore[valid-type]
            yield f"f_{attr}", strawberry.field(name=key, graphql_type=shape, default=None)

    def _type_of(self, annotation: Any) -> tuple[Any, bool]:
        """The GraphQL type of a field's element and whether the field repeats."""
        many = _is_list(annotation)
        model = _model_of(annotation)
        if model is not None:
            if model.__name__ == "Resource":
                return self.resource_union, many
            return self.classes[model.__name__], many
        base = _primitive_of(annotation)
        return (None if base is None else _PRIMITIVES.get(base, str)), many


def read_json(schema: GraphQLSchema, types: FhirTypes) -> None:
    """Let graphql-core read the element fields of the built schema from the JSON: its default
    resolver returns `dict[field name]`; repeating elements take `_count` and `_offset` (as
    FHIR GraphQL's list arguments); a Resource is the member its `resourceType` names."""
    for name, elements in types.elements.items():
        object_type = schema.type_map[name]
        assert isinstance(object_type, GraphQLObjectType)
        for key, many in elements.items():
            field = object_type.fields[key]
            field.resolve = _items if many else None
            if many:
                field.args = {
                    "_count": GraphQLArgument(GraphQLInt, description="at most this many"),
                    "_offset": GraphQLArgument(GraphQLInt, description="skip this many"),
                }
    union = schema.type_map["Resource"]
    union.resolve_type = _resource_type  # type: ignore[attr-defined]


def _items(
    source: dict[str, Any], info: GraphQLResolveInfo[Any], _count: int | None = None,
    _offset: int | None = None,
) -> list[Any] | None:  # fmt: skip
    items: list[Any] | None = source.get(info.field_name)
    if items is None or (_count is None and not _offset):
        return items
    start = _offset or 0
    return items[start : None if _count is None else start + _count]


def _resource_type(value: dict[str, Any], *_: Any) -> str | None:
    kind: str | None = value.get("resourceType")
    return kind


def _description(model: type[BaseModel]) -> str:
    """The element's short definition: the first sentence after fhir.resources' note on
    `__ext`."""
    paragraphs = (model.__doc__ or "").split("\n\n")
    text = " ".join(
        (paragraphs[-1] if paragraphs[0].startswith("Disclaimer") else paragraphs[0]).split()
    )
    return text.split(". ")[0].rstrip(".") + "."


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    return any(_is_list(a) for a in _args(annotation) if a is not type(None))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class behind fhir.resources' abstract `abc.XType` markers."""
    getter = getattr(annotation, "get_model_klass", None)
    if getter is not None:
        model: type[BaseModel] = getter()
        return model
    return _in_args(annotation, _model_of)


def _primitive_of(annotation: Any) -> type | None:
    if typing.get_origin(annotation) is Annotated:
        return _args(annotation)[0]  # type: ignore[no-any-return]
    if isinstance(annotation, type) and annotation is not type(None):
        return annotation
    return _in_args(annotation, _primitive_of)


def _in_args(annotation: Any, find: Callable[[Any], _T | None]) -> _T | None:
    """The first thing `find` finds in the arguments of a typing construct (Optional, List)."""
    for arg in _args(annotation):
        found = find(arg)
        if found is not None:
            return found
    return None
