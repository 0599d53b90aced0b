"""The FHIR side of the GraphQL schema (FHIR GraphQL, hl7.org/fhir/graphql.html):

- `Observation(id:)`, `ObservationList(<search params, - as _>, _count, _offset, _sort)` and
  `ObservationConnection(...)` with opaque cursors, for every stored type;
- `resource(optional:, type:)` on every Reference, and `<Type>List(_reference: <param>, ...)` on
  every resource for the resources whose reference parameter points at it.

Search arguments become the REST search's query-string pairs (server/fhir/search.py parses
them), so there is one query implementation; an argument given as a list ORs its values.
Lookups from nested fields go through the request's DataLoaders (loaders.py).
"""

import base64
import binascii
import dataclasses
import enum
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

import orjson
import strawberry
from strawberry.types import Info
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

from server.fhir import registry
from server.fhir.indexing import reference_key
from server.fhir.search import or_list
from server.fhir.service import SearchResult
from server.graphql.context import Context
from server.graphql.errors import fhir_errors, invalid
from server.graphql.fhir_types import FhirTypes
from server.graphql.loaders import Reverse

# resolver annotations are objects, not strings: strawberry would evaluate the strings of
# each generated field (a second more at start)
_PAGING = ("_count", "_offset", "_sort")
Resolve = Callable[[Any, Info, dict[str, Any]], Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class _Arg:
    python: str
    graphql: str
    search: str  # the REST parameter


def _search_args(rtype: str) -> list[_Arg]:
    names = [*registry.params(rtype), *_PAGING]
    return [_Arg(f"p_{n.replace('-', '_')}", n.replace("-", "_"), n) for n in names]


def _parameter(
    arg: _Arg, annotation: Any, description: str, required: bool = False
) -> inspect.Parameter:
    """A field argument; a required one has no default (a null default on a non-null type
    breaks introspection, and with it every client)."""
    return inspect.Parameter(
        arg.python,
        inspect.Parameter.KEYWORD_ONLY,
        default=inspect.Parameter.empty if required else None,
        annotation=Annotated[
            annotation, strawberry.argument(name=arg.graphql, description=description)
        ],
    )


def _search_parameters(rtype: str) -> list[inspect.Parameter]:
    params = []
    for arg in _search_args(rtype):
        if arg.search == "_count":
            params.append(_parameter(arg, int | None, "page size / at most this many"))
        elif arg.search == "_offset":
            params.append(_parameter(arg, int | None, "skip this many"))
        elif arg.search == "_sort":
            params.append(_parameter(arg, str | None, "as REST _sort, e.g. -date"))
        else:
            p = registry.params(rtype)[arg.search]
            params.append(_parameter(arg, list[str] | None, f"{p.type} search; a list ORs"))
    return params


def _field(
    name: str, resolve: Resolve, arguments: list[StrawberryArgument], returns: Any, about: str
) -> StrawberryField:
    """A field whose arguments are made at run time (_arguments)."""

    async def resolver(root: Any, info: Info, **kwargs: Any) -> Any:
        return await resolve(root, info, kwargs)

    field: StrawberryField = strawberry.field(
        resolver=resolver, name=name, graphql_type=returns, description=about
    )
    field.arguments = list(arguments)
    return field


def _arguments(params: list[inspect.Parameter]) -> list[StrawberryArgument]:
    """strawberry's arguments of a resolver taking these parameters."""

    def signature() -> None: ...

    signature.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return StrawberryResolver(signature).arguments


@functools.cache
def _list_arguments(rtype: str, reverse: bool) -> list[StrawberryArgument]:
    """A type's list arguments, made once and shared by its list fields: the reverse lists
    repeat its search arguments on every type it points at (made field by field, they were
    half of the FHIR types' 1.2 s)."""
    params = _search_parameters(rtype)
    if reverse:
        ref = _Arg("reference", "_reference", "_reference")
        about_ref = f"the {rtype} search parameter pointing here"
        params.insert(0, _parameter(ref, _reference_params(rtype), about_ref, required=True))
    return _arguments(params)


def _pairs(rtype: str, kwargs: dict[str, Any]) -> list[tuple[str, str]]:
    """The REST query-string pairs of a field's search arguments."""
    pairs: list[tuple[str, str]] = []
    for arg in _search_args(rtype):
        value = kwargs.get(arg.python)
        if value is None:
            continue
        text = or_list(value) if isinstance(value, list) else str(value)
        pairs.append((arg.search, text))
    return pairs


class FhirFields:
    """Generates the FHIR types with their store-backed fields, and the root query fields."""

    def __init__(self) -> None:
        self.types = FhirTypes(registry.resource_types(), self._extra)
        self.edges = {rtype: _edge_type(rtype, cls) for rtype, cls in self.types.resources.items()}

    def query_fields(self) -> dict[str, StrawberryField]:
        fields: dict[str, StrawberryField] = {}
        for rtype, cls in self.types.resources.items():
            fields[f"read_{rtype}"] = self._read_field(rtype, cls)
            fields[f"list_{rtype}"] = self._list_field(rtype, cls, reverse=False)
            fields[f"connection_{rtype}"] = self._connection_field(rtype, cls)
        return fields

    # -- fields on generated types -----------------------------------------------------------

    def _extra(self, name: str, types: FhirTypes) -> dict[str, StrawberryField]:
        if name == "Reference":
            return {"f_resource": self._resolve_field(types)}
        if name not in types.resources:
            return {}
        kind = cast(StrawberryField, strawberry.field(resolver=_resource_type, name="resourceType"))
        fields = {"f_resourceType": kind}
        for source, cls in types.resources.items():
            if _pointing_params(source, name):
                fields[f"reverse_{source}"] = self._list_field(source, cls, reverse=True)
        return fields

    def _resolve_field(self, types: FhirTypes) -> StrawberryField:
        async def resolve(root: dict[str, Any], info: Info, kwargs: dict[str, Any]) -> Any:
            context: Context = info.context
            optional, wanted = kwargs.get("optional") or False, kwargs.get("type")
            key = reference_key(root)
            if key is not None and wanted and key.split("/")[0] != wanted:
                return None
            stored = None if key is None else await context.loaders.references.load(key)
            if stored is None or stored.body is None or not context.access.may_read(stored):
                if optional:
                    return None
                reference = root.get("reference", "(no literal reference)")
                raise invalid(f"{reference} cannot be resolved: absent or not readable by you "
                              "(optional: true gives null)")  # fmt: skip
            return orjson.loads(stored.body)

        params = [
            inspect.Parameter("optional", inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation=bool | None),
            inspect.Parameter("type", inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation=str | None),
        ]  # fmt: skip
        about = (
            "the resource referred to (optional: null instead of an error; type: only that type)"
        )
        return _field("resource", resolve, _arguments(params), types.resource_union | None, about)

    # -- root and reverse fields -------------------------------------------------------------

    def _read_field(self, rtype: str, cls: type) -> StrawberryField:
        async def resolve(root: Any, info: Info, kwargs: dict[str, Any]) -> Any:
            context: Context = info.context
            with fhir_errors():
                stored = context.read(rtype, kwargs["id"])
            return orjson.loads(stored.body or b"{}")

        rid = inspect.Parameter("id", inspect.Parameter.KEYWORD_ONLY, annotation=strawberry.ID)
        return _field(rtype, resolve, _arguments([rid]), cls | None, f"{rtype} by id")

    def _list_field(self, rtype: str, resource: type, *, reverse: bool) -> StrawberryField:
        async def resolve(root: Any, info: Info, kwargs: dict[str, Any]) -> Any:
            context: Context = info.context
            pairs = _pairs(rtype, kwargs)
            with fhir_errors():
                if reverse:
                    found = await self._reverse(root, context, rtype, kwargs, pairs)
                else:
                    found = context.search_list(rtype, pairs)
            return [orjson.loads(s.body or b"{}") for s in found]

        about = f"{rtype} resources found by their REST search parameters"
        if reverse:
            about = f"{rtype} resources whose _reference parameter points at this resource"
        arguments = _list_arguments(rtype, reverse)
        return _field(f"{rtype}List", resolve, arguments, list[resource], about)  # type: ignore[valid-type]

    async def _reverse(
        self,
        root: dict[str, Any],
        context: Context,
        rtype: str,
        kwargs: dict[str, Any],
        pairs: list[tuple[str, str]],
    ) -> list[Any]:
        focus_type = root.get("resourceType", "")
        name = kwargs["reference"].value
        allowed = _pointing_params(rtype, focus_type)
        if name not in allowed:
            raise invalid(f"_reference: {rtype} has no reference parameter {name!r} to "
                          f"{focus_type}; it has {', '.join(allowed) or 'none'}")  # fmt: skip
        paging = dict(p for p in pairs if p[0] in _PAGING)
        filters = tuple(p for p in pairs if p[0] not in ("_count", "_offset"))
        key = Reverse(rtype, name, filters, f"{focus_type}/{root.get('id')}")
        found = await context.loaders.reverse.load(key)
        start = int(paging.get("_offset", 0))
        count = int(paging["_count"]) if "_count" in paging else None
        return found[start : None if count is None else start + count]

    def _connection_field(self, rtype: str, resource: type) -> StrawberryField:
        edge = self.edges[rtype]
        connection = _connection_type(rtype, edge)

        async def resolve(root: Any, info: Info, kwargs: dict[str, Any]) -> Any:
            context: Context = info.context
            cursor = kwargs.get("p_cursor") or kwargs.get("p__cursor")
            pairs = _pairs(rtype, kwargs)
            if cursor and pairs:
                raise invalid("a cursor carries the search; give no other arguments with it")
            with fhir_errors():
                if cursor:
                    pairs = _from_cursor(rtype, cursor)
                result = context.search_page(rtype, pairs)
            return _page(connection, edge, resource, rtype, pairs, result)

        cursors = [_parameter(_Arg(f"p_{n}", n, n), str | None, "a cursor from a page before")
                   for n in ("_cursor", "cursor")]  # fmt: skip
        params = _search_parameters(rtype) + cursors
        about = f"a page of {rtype} search results with cursors to the others"
        return _field(f"{rtype}Connection", resolve, _arguments(params), connection, about)


def _resource_type(root: dict[str, Any]) -> str | None:
    kind: str | None = root.get("resourceType")
    return kind


@functools.cache
def _reference_params(rtype: str) -> type[enum.Enum]:
    """An enum of `rtype`'s reference search parameters (- as _), so `_reference: part_of`
    is written without quotes as in the FHIR GraphQL examples."""
    names = {p.name.replace("-", "_"): p.name for p in registry.params(rtype).values()
             if p.type == "reference"}  # fmt: skip
    made: type[enum.Enum] = enum.Enum(f"{rtype}ReferenceParameter", names)  # type: ignore[misc]
    return strawberry.enum(made)


def _pointing_params(source: str, target: str) -> list[str]:
    """The reference search parameters of `source` that can point at a `target`."""
    return [p.name for p in registry.params(source).values()
            if p.type == "reference" and p.allows_target(target)]  # fmt: skip


def _edge_type(rtype: str, cls: type) -> type:
    fields = [("mode", str), ("score", float | None), ("resource", cls)]
    return strawberry.type(dataclasses.make_dataclass(f"{rtype}Edge", fields))


def _connection_type(rtype: str, edge: type) -> type:
    edges = list[edge]  # type: ignore[valid-type]
    fields = [("count", int | None), ("offset", int), ("pagesize", int),
              *((name, str | None) for name in ("first", "previous", "next", "last")),
              ("edges", edges)]  # fmt: skip
    return strawberry.type(dataclasses.make_dataclass(f"{rtype}Connection", fields))


def _cursor(rtype: str, pairs: list[tuple[str, str]], offset: int) -> str:
    kept = [p for p in pairs if p[0] != "_offset"] + [("_offset", str(offset))]
    return base64.urlsafe_b64encode(orjson.dumps([rtype, kept])).decode()


def _from_cursor(rtype: str, cursor: str) -> list[tuple[str, str]]:
    try:
        cursor_type, pairs = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise invalid("the cursor is not one this server gave") from None
    if cursor_type != rtype:
        raise invalid(f"the cursor is for {cursor_type}, not {rtype}")
    return [(str(k), str(v)) for k, v in pairs]


def _page(
    connection: type,
    edge: type,
    resource: Any,
    rtype: str,
    pairs: list[tuple[str, str]],
    result: SearchResult,
) -> Any:
    count, offset = result.request.query.count, result.request.query.offset
    total = result.total
    last = max(0, ((total or 0) - 1) // count * count) if count else 0
    return connection(
        count=total,
        offset=offset,
        pagesize=count,
        first=_cursor(rtype, pairs, 0),
        previous=_cursor(rtype, pairs, max(0, offset - count)) if offset > 0 else None,
        next=_cursor(rtype, pairs, offset + count)
        if total is not None and offset + count < total
        else None,
        last=_cursor(rtype, pairs, last) if total is not None else None,
        edges=[edge(mode="match", score=None, resource=orjson.loads(s.body or b"{}"))
               for s in result.matches],
    )  # fmt: skip
