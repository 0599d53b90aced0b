"""Batch and transaction Bundles (`POST [base]`).

A transaction commits all entries in one store transaction or none: entries are processed in
the FHIR order (DELETE, POST, PUT, GET), `urn:uuid:` and conditional references
(`Patient?identifier=...`) are resolved first, and any failure rolls everything back and
answers with the failing entry's status. A batch runs each entry on its own.

Every entry passes the user's gate as the same interaction outside a Bundle would: what it
reads, searches, finds by a condition or writes. What the entries disclosed is returned for
the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from server.fhir.errors import FhirError, Issue, outcome
from server.fhir.gate import Gate
from server.fhir.service import FhirService, check_type
from server.fhir.values import instant
from server.store.port import Stored, Transaction

_METHODS = ("DELETE", "POST", "PUT", "GET")
# processing order of a transaction; EXISTING = a conditional create that found its match
_ORDER = {"DELETE": 0, "POST": 1, "EXISTING": 1, "PUT": 2, "GET": 3}
_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content", 304: "304 Not Modified"}


@dataclass
class _Entry:
    index: int
    method: str
    rtype: str
    rid: str | None
    query: str | None  # for conditional URLs: "identifier=x"
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None


@dataclass
class _Run:
    """One Bundle's processing: the service, the user's gate, and what was disclosed."""

    service: FhirService
    gate: Gate | None
    base: str
    representation: bool
    disclosed: list[Stored]


def process(
    service: FhirService,
    bundle: Any,
    base: str,
    gate: Gate | None = None,
    representation: bool = True,
) -> tuple[dict[str, Any], list[Stored]]:
    """The response Bundle, and the resources it disclosed."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError.of(
            400, "invalid", "POST to the base URL takes a Bundle of type transaction or batch"
        )
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise FhirError.of(
            400, "invalid", f"Bundle.type must be transaction or batch, not {kind!r}", "Bundle.type"
        )
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise FhirError.of(400, "structure", "Bundle.entry must be a list", "Bundle.entry")
    run = _Run(service, gate, base, representation, [])
    if kind == "batch":
        responses = [_batch_entry(run, raw, i) for i, raw in enumerate(raw_entries)]
    else:
        responses = _transaction(run, [_entry(raw, i, base) for i, raw in enumerate(raw_entries)])
    response = {"resourceType": "Bundle", "type": f"{kind}-response", "entry": responses}
    return response, run.disclosed


def _batch_entry(run: _Run, raw: Any, index: int) -> dict[str, Any]:
    disclosed = len(run.disclosed)
    try:
        entry = _entry(raw, index, run.base)
        with run.service.store.transaction() as tx:
            aliases = _assign_ids(run, tx, [entry])
            if entry.resource is not None:
                _rewrite_references(run, tx, entry, entry.resource, aliases)
            return _apply(run, tx, entry)
    except FhirError as e:
        del run.disclosed[disclosed:]  # an entry that failed discloses nothing
        return {"response": {"status": str(e.status), "outcome": outcome(e.issues)}}


def _transaction(run: _Run, entries: list[_Entry]) -> list[dict[str, Any]]:
    responses: dict[int, dict[str, Any]] = {}
    with run.service.store.transaction() as tx:
        aliases = _assign_ids(run, tx, entries)
        for entry in entries:
            if entry.resource is not None:
                _rewrite_references(run, tx, entry, entry.resource, aliases)
        for entry in sorted(entries, key=lambda e: _ORDER[e.method]):
            try:
                responses[entry.index] = _apply(run, tx, entry)
            except FhirError as e:
                detail = f"entry {entry.index} ({entry.method} {entry.rtype}): "
                raise FhirError(
                    e.status,
                    [
                        Issue(i.code, detail + i.diagnostics, i.severity, i.expression)
                        for i in e.issues
                    ],
                ) from None
    return [responses[i] for i in range(len(entries))]


def _assign_ids(run: _Run, tx: Transaction, entries: list[_Entry]) -> dict[str, str]:
    """fullUrl -> "Type/id" for every entry that creates or names a resource."""
    service, gate = run.service, run.gate
    aliases: dict[str, str] = {}
    for entry in entries:
        if entry.method == "POST":
            existing = (
                service.find_in(tx, entry.rtype, entry.if_none_exist, "ifNoneExist", gate)
                if entry.if_none_exist
                else None
            )
            entry.rid = existing.rid if existing else service.new_id()
            if existing:
                entry.method, entry.resource = "EXISTING", None
        elif entry.method == "PUT" and entry.query is not None:
            found = service.find_in(tx, entry.rtype, entry.query, "conditional update", gate)
            entry.rid = found.rid if found else (entry.resource or {}).get("id") or service.new_id()
            if entry.resource is not None:
                entry.resource["id"] = entry.rid
            entry.query = None
        if entry.full_url and entry.rid:
            aliases[entry.full_url] = f"{entry.rtype}/{entry.rid}"
    return aliases


def _rewrite_references(
    run: _Run, tx: Transaction, entry: _Entry, node: Any, aliases: dict[str, str]
) -> None:
    if isinstance(node, list):
        for item in node:
            _rewrite_references(run, tx, entry, item, aliases)
    elif isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            if ref in aliases:
                node["reference"] = aliases[ref]
            elif "?" in ref and not ref.startswith(("http:", "https:")):
                node["reference"] = _conditional_reference(run, tx, entry, ref)
            elif ref.startswith("urn:uuid:"):
                raise FhirError.of(
                    400, "not-found", f"entry {entry.index}: {ref} is not the fullUrl of any entry"
                )
        for value in node.values():
            if isinstance(value, dict | list):
                _rewrite_references(run, tx, entry, value, aliases)


def _conditional_reference(run: _Run, tx: Transaction, entry: _Entry, ref: str) -> str:
    rtype, _, query = ref.partition("?")
    check_type(rtype)
    found = run.service.find_in(tx, rtype, query, f"entry {entry.index}: reference", run.gate)
    if found is None:
        raise FhirError.of(404, "not-found", f"entry {entry.index}: no {rtype} matches {ref!r}")
    return f"{rtype}/{found.rid}"


def _apply(run: _Run, tx: Transaction, entry: _Entry) -> dict[str, Any]:
    service, gate = run.service, run.gate
    if entry.method == "EXISTING":
        stored = tx.read(entry.rtype, entry.rid or "")
        assert stored is not None
        return _response(run, 200, stored, run.representation)
    if entry.method == "POST":
        saved = service.create_in(tx, entry.rtype, entry.resource, rid=entry.rid, gate=gate)
        return _response(run, 201, saved.stored, run.representation)
    if entry.method == "PUT":
        saved = service.update_in(
            tx, entry.rtype, entry.rid or "", entry.resource, entry.if_match, gate=gate
        )
        return _response(run, 201 if saved.created else 200, saved.stored, run.representation)
    if entry.method == "DELETE":
        rid = entry.rid
        if entry.query is not None:
            found = service.find_in(tx, entry.rtype, entry.query, "conditional delete", gate)
            if found is None:
                return {"response": {"status": "204 No Content"}}
            rid = found.rid
        service.delete_in(tx, entry.rtype, rid or "", gate)
        return {"response": {"status": "204 No Content"}}
    return _get(run, tx, entry)


def _get(run: _Run, tx: Transaction, entry: _Entry) -> dict[str, Any]:
    if entry.rid is not None:
        if run.gate is not None:
            run.gate.require(entry.rtype)
        stored = tx.read(entry.rtype, entry.rid)
        if stored is None or stored.deleted:
            raise FhirError.of(
                404 if stored is None else 410,
                "not-found",
                f"{entry.rtype}/{entry.rid} is not here",
            )
        if run.gate is not None and not run.gate.may_read(stored):
            raise FhirError.of(403, "forbidden", f"{entry.rtype}/{entry.rid} is not yours to read")
        return _response(run, 200, stored, True)
    request = run.service.parse_search(
        entry.rtype, parse_qsl(entry.query or "", keep_blank_values=True)
    )
    result = run.service.search_in(tx, request, run.gate)
    run.disclosed.extend(result.matches)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": result.total}
    bundle["entry"] = [
        {
            "fullUrl": f"{run.base}/{s.rtype}/{s.rid}",
            "resource": orjson.loads(s.body or b"{}"),
            "search": {"mode": "match"},
        }
        for s in result.matches
    ]
    return {"resource": bundle, "response": {"status": "200 OK"}}


def _response(run: _Run, status: int, stored: Stored, representation: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"fullUrl": f"{run.base}/{stored.rtype}/{stored.rid}"}
    if representation and stored.body is not None:
        run.disclosed.append(stored)
        out["resource"] = orjson.loads(stored.body)
    out["response"] = {
        "status": _STATUS_TEXT.get(status, str(status)),
        "location": f"{stored.rtype}/{stored.rid}/_history/{stored.version}",
        "etag": f'W/"{stored.version}"',
        "lastModified": instant(stored.last_updated),
    }
    return out


def _entry(raw: Any, index: int, base: str) -> _Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise FhirError.of(400, "required", f"entry {index} has no request", f"{where}.request")
    request = raw["request"]
    method, url = request.get("method"), request.get("url")
    if method not in _METHODS or not isinstance(url, str) or not url:
        raise FhirError.of(
            400, "invalid", f"entry {index}: request needs method and url", f"{where}.request"
        )
    path = url.removeprefix(base).lstrip("/")
    path, _, query = path.partition("?")
    parts = path.split("/")
    rtype, rid = parts[0], (parts[1] if len(parts) > 1 and parts[1] else None)
    check_type(rtype)
    resource = raw.get("resource")
    if method in ("POST", "PUT"):
        if not isinstance(resource, dict):
            raise FhirError.of(
                400, "required", f"entry {index}: {method} needs a resource", f"{where}.resource"
            )
        if method == "PUT" and rid is None and not query:
            raise FhirError.of(
                400,
                "invalid",
                f"entry {index}: PUT needs Type/id or Type?search",
                f"{where}.request.url",
            )
    if method == "DELETE" and rid is None and not query:
        raise FhirError.of(
            400,
            "invalid",
            f"entry {index}: DELETE needs Type/id or Type?search",
            f"{where}.request.url",
        )
    return _Entry(
        index=index,
        method=method,
        rtype=rtype,
        rid=rid,
        query=query or None if method != "POST" else None,
        resource=resource if method in ("POST", "PUT") else None,
        full_url=raw.get("fullUrl"),
        if_none_exist=request.get("ifNoneExist"),
        if_match=request.get("ifMatch"),
    )


__all__ = ["outcome", "process"]
