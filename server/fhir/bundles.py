"""Bundles out: searchset and history, with paging links, _summary and _elements.

Stored bodies are already JSON; they are embedded as `orjson.Fragment`s, so a page of 100
Observations is not parsed and re-serialised unless the client asked for a subset.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlencode

import orjson
from fhir.resources.R4B import get_fhir_model_class

from server.fhir.errors import Issue, outcome
from server.fhir.service import SearchResult
from server.fhir.values import instant
from server.store.port import Stored

_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


def searchset(result: SearchResult, base: str, rtype: str, now: float) -> bytes:
    request = result.request
    query = request.query
    shape = functools.partial(_shape, summary=request.summary, elements=request.elements)
    entries: list[dict[str, Any]] = [_entry(base, s, shape(s), "match") for s in result.matches] + [
        _entry(base, s, shape(s), "include") for s in result.included
    ]
    if request.ignored:
        warning = Issue(
            "not-supported",
            f"ignored unknown parameter(s): {', '.join(request.ignored)}",
            "warning",
        )
        entries.append({"resource": outcome([warning]), "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "meta": {"lastUpdated": instant(now)},
    }
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = _links(
        f"{base}/{rtype}", list(request.applied), query.count, query.offset, result
    )
    if entries:
        bundle["entry"] = entries
    return orjson.dumps(bundle)


def _links(
    url: str, applied: list[tuple[str, str]], count: int, offset: int, result: SearchResult
) -> list[dict[str, str]]:
    params = [(k, v) for k, v in applied if k not in ("_count", "_offset")]

    def link(relation: str, at: int) -> dict[str, str]:
        return {
            "relation": relation,
            "url": f"{url}?{urlencode([*params, ('_count', count), ('_offset', at)])}",
        }

    links = [link("self", offset), link("first", 0)]
    if count and offset > 0:
        links.append(link("previous", max(0, offset - count)))
    has_next = (
        offset + count < result.total if result.total is not None else len(result.matches) == count
    )
    if count and has_next:
        links.append(link("next", offset + count))
    if count and result.total is not None:
        links.append(link("last", max(0, (result.total - 1) // count * count)))
    return links


def history(
    versions: list[Stored], total: int, base: str, url: str, count: int, offset: int, now: float
) -> bytes:
    entries = []
    for v in versions:
        entry: dict[str, Any] = {"fullUrl": f"{base}/{v.rtype}/{v.rid}"}
        if v.body is not None:
            entry["resource"] = orjson.Fragment(v.body)
        status = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}[v.method]
        entry["request"] = {
            "method": v.method,
            "url": v.rtype if v.method == "POST" else f"{v.rtype}/{v.rid}",
        }
        entry["response"] = {
            "status": status,
            "etag": f'W/"{v.version}"',
            "lastModified": instant(v.last_updated),
        }
        entries.append(entry)
    links = [
        {"relation": "self", "url": f"{url}?{urlencode([('_count', count), ('_offset', offset)])}"}
    ]
    if offset + count < total:
        links.append(
            {
                "relation": "next",
                "url": f"{url}?{urlencode([('_count', count), ('_offset', offset + count)])}",
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "meta": {"lastUpdated": instant(now)},
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return orjson.dumps(bundle)


def _entry(base: str, stored: Stored, resource: Any, mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{stored.rtype}/{stored.rid}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _shape(stored: Stored, summary: str | None, elements: tuple[str, ...]) -> Any:
    """The resource as the client asked for it: whole (as stored), or a marked subset."""
    assert stored.body is not None
    if summary in (None, "false", "count") and not elements:
        return orjson.Fragment(stored.body)
    resource = orjson.loads(stored.body)
    return subset(resource, summary, elements)


def subset(
    resource: dict[str, Any], summary: str | None, elements: tuple[str, ...]
) -> dict[str, Any]:
    """_summary=true|text|data or _elements=a,b; the result is tagged SUBSETTED.

    >>> subset({"resourceType": "Patient", "id": "1", "gender": "male", "birthDate": "1970"},
    ...        None, ("gender",))["gender"], "birthDate" in subset(
    ...        {"resourceType": "Patient", "id": "1", "birthDate": "1970"}, None, ("gender",))
    ('male', False)
    """
    keep_always = {"resourceType", "id", "meta"}
    if summary == "true":
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        shaped: dict[str, Any] = orjson.loads(model.model_dump_json(summary_only=True))
    elif summary == "text":
        shaped = {k: v for k, v in resource.items() if k in keep_always | {"text"}}
    elif summary == "data":
        shaped = {k: v for k, v in resource.items() if k != "text"}
    else:
        shaped = {k: v for k, v in resource.items() if k in keep_always or k in elements}
    meta = dict(shaped.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    shaped["meta"] = meta
    return shaped
