"""FHIR interactions as service functions: the REST and GraphQL doors both call these.

Each write validates the resource, stamps `meta.versionId`/`meta.lastUpdated`, extracts its
search values and commits body and index in one store transaction.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

import orjson

from server.fhir import conformance, registry
from server.fhir.errors import FhirError, Issue
from server.fhir.gate import Gate
from server.fhir.indexing import Indexer
from server.fhir.mapping import device_label
from server.fhir.search import SearchError, SearchRequest, non_negative, parse
from server.fhir.validation import Check, validate
from server.fhir.values import date_range, instant
from server.store.port import Reader, Store, Stored, Transaction, VersionConflict, Write

_MAX_INCLUDE_DEPTH = 3


_EVERY = 1_000_000


@dataclass(frozen=True)
class Saved:
    stored: Stored
    created: bool


@dataclass(frozen=True)
class SearchResult:
    request: SearchRequest
    matches: list[Stored]
    included: list[Stored]
    total: int | None


class FhirService:
    def __init__(
        self,
        store: Store,
        indexer: Indexer,
        *,
        page_size_default: int = 50,
        page_size_max: int = 1000,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        checks: tuple[Check, ...] = (),
    ) -> None:
        self.store = store
        self._checks = checks
        self._indexer = indexer
        self._page_default = page_size_default
        self._page_max = page_size_max
        self._clock = clock
        self.new_id = new_id

    # -- reads -------------------------------------------------------------------------------

    def read(self, rtype: str, rid: str) -> Stored:
        check_type(rtype)
        return _current(self.store.read(rtype, rid), rtype, rid)

    def vread(self, rtype: str, rid: str, version: str) -> Stored:
        check_type(rtype)
        stored = self.store.vread(rtype, rid, int(version)) if _is_int(version) else None
        if stored is None:
            raise FhirError.of(404, "not-found", f"{rtype}/{rid} has no version {version}")
        if stored.deleted:
            raise FhirError.of(410, "deleted", f"{rtype}/{rid} was deleted in version {version}")
        return stored

    def search(
        self,
        rtype: str,
        pairs: list[tuple[str, str]],
        *,
        strict: bool = True,
        gate: Gate | None = None,
    ) -> SearchResult:
        """Run a search as the user `gate` decides for: their restrictions added, only what
        they may see in the matches and includes."""
        check_type(rtype)
        return self.search_in(self.store, self.parse_search(rtype, pairs, strict=strict), gate)

    def search_in(
        self, reader: Reader, request: SearchRequest, gate: Gate | None = None
    ) -> SearchResult:
        if gate is not None:
            gate.require(request.query.rtype)
            gate.check_search(request)
            request = _restricted(request, gate)
        matches, total = reader.search(request.query)
        included = self._includes(matches, request)
        if gate is not None:
            matches, included = _readable(gate, matches), _readable(gate, included)
        return SearchResult(request, matches, included, total)

    def parse_search(
        self, rtype: str, pairs: list[tuple[str, str]], *, strict: bool = True, bounded: bool = True
    ) -> SearchRequest:
        """A client's search (`bounded`: within server/fhir/limits.py), or Kerma's own."""
        try:
            return parse(
                rtype,
                pairs,
                strict=strict,
                default_count=self._page_default,
                max_count=self._page_max,
                bounded=bounded,
            )
        except SearchError as e:
            raise FhirError.of(400, "invalid", str(e)) from None

    def _includes(self, matches: list[Stored], request: SearchRequest) -> list[Stored]:
        seen = {(s.rtype, s.rid) for s in matches}
        found: list[Stored] = []
        frontier = matches
        for depth in range(_MAX_INCLUDE_DEPTH):
            new: list[Stored] = []
            for inc in request.includes:
                if depth == 0 or inc.iterate:
                    sources = [s for s in frontier if s.rtype == inc.source_type]
                    new.extend(self.store.included(sources, inc.param, inc.target_type))
            for inc in request.revincludes:
                if depth == 0 or inc.iterate:
                    new.extend(self.store.revincluded(frontier, inc.source_type, inc.param))
            frontier = [s for s in new if (s.rtype, s.rid) not in seen]
            seen.update((s.rtype, s.rid) for s in frontier)
            found.extend(frontier)
            if not frontier:
                break
        return found

    def history(
        self, rtype: str | None, rid: str | None, pairs: list[tuple[str, str]]
    ) -> tuple[list[Stored], int, int, int]:
        """(versions, total, count, offset) of `_history` with `_since`, `_count`, `_offset`."""
        if rtype is not None:
            check_type(rtype)
        args = dict(pairs)
        unknown = set(args) - {"_since", "_count", "_offset", "_format", "_pretty"}
        if unknown:
            raise FhirError.of(
                400, "invalid", f"unknown history parameter(s): {', '.join(sorted(unknown))}"
            )
        since = None
        if "_since" in args:
            since = self._date_arg("_since", args["_since"])
        try:
            count = min(
                non_negative("_count", args.get("_count", str(self._page_default))), self._page_max
            )
            offset = non_negative("_offset", args.get("_offset", "0"))
        except SearchError as e:
            raise FhirError.of(400, "invalid", str(e)) from None
        if rid is not None and self.store.read(rtype or "", rid) is None:
            raise FhirError.of(404, "not-found", f"{rtype}/{rid} does not exist")
        versions, total = self.store.history(rtype, rid, since, count, offset)
        return versions, total, count, offset

    def _date_arg(self, name: str, value: str) -> float:
        try:
            return date_range(value)[0]
        except ValueError as e:
            raise FhirError.of(400, "invalid", f"{name}: {e}") from None

    # -- writes ------------------------------------------------------------------------------

    def create(
        self, rtype: str, body: Any, if_none_exist: str | None = None, gate: Gate | None = None
    ) -> Saved:
        with self.store.transaction() as tx:
            return self.create_in(tx, rtype, body, if_none_exist, gate=gate)

    def update(
        self,
        rtype: str,
        rid: str,
        body: Any,
        if_match: str | None = None,
        gate: Gate | None = None,
    ) -> Saved:
        with self.store.transaction() as tx:
            return self.update_in(tx, rtype, rid, body, if_match, gate=gate)

    def delete(self, rtype: str, rid: str, gate: Gate | None = None) -> Stored | None:
        with self.store.transaction() as tx:
            return self.delete_in(tx, rtype, rid, gate)

    def create_in(
        self,
        tx: Transaction,
        rtype: str,
        body: Any,
        if_none_exist: str | None = None,
        rid: str | None = None,
        *,
        trusted: bool = False,
        gate: Gate | None = None,
    ) -> Saved:
        """Create; `trusted` skips validation, for resources Kerma built (and tests validate)."""
        check_type(rtype)
        _check_body(rtype, body)
        if if_none_exist:
            existing = self.find_in(tx, rtype, if_none_exist, "If-None-Exist", gate)
            if existing:
                return Saved(existing, created=False)
        if gate is not None:
            gate.check_write(rtype, body, None)
        stored = self._write(tx, rtype, rid or self.new_id(), body, 1, "POST", trusted)
        return Saved(stored, created=True)

    def update_in(
        self,
        tx: Transaction,
        rtype: str,
        rid: str,
        body: Any,
        if_match: str | None = None,
        *,
        trusted: bool = False,
        gate: Gate | None = None,
    ) -> Saved:
        check_type(rtype)
        _check_body(rtype, body)
        if body.get("id") != rid:
            raise FhirError.of(
                400,
                "invalid",
                f"resource id {body.get('id')!r} does not match URL id {rid!r}",
                f"{rtype}.id",
            )
        current = tx.read(rtype, rid)
        if gate is not None:
            gate.check_write(rtype, body, current)
        if if_match is not None:
            wanted = _etag_version(if_match)
            if current is None or current.deleted or current.version != wanted:
                have = "none" if current is None or current.deleted else str(current.version)
                raise FhirError.of(
                    412, "conflict", f"If-Match {if_match} but current version is {have}"
                )
        version = current.version + 1 if current else 1
        stored = self._write(tx, rtype, rid, body, version, "PUT", trusted)
        return Saved(stored, created=current is None or current.deleted)

    def delete_in(
        self, tx: Transaction, rtype: str, rid: str, gate: Gate | None = None
    ) -> Stored | None:
        """Delete; returns the deleted version, or None when it was already deleted."""
        check_type(rtype)
        current = tx.read(rtype, rid)
        if current is None:
            raise FhirError.of(404, "not-found", f"{rtype}/{rid} does not exist")
        if gate is not None:
            gate.check_write(rtype, None, current)
        if current.deleted:
            return None
        write = Write(rtype, rid, current.version + 1, self._clock(), "DELETE", None, None)
        self._commit_write(tx, write)
        return Stored(rtype, rid, write.version, write.last_updated, None, "DELETE")

    def check(self, resource: dict[str, Any], profile: str | None = None) -> list[Issue]:
        """What a write of `resource` would be refused for, then R4's invariants it breaks
        and, with a profile, what keeps it from conforming to it: `$validate`."""
        issues = validate(resource, self._checks)
        if not issues:
            issues = conformance.problems(resource, [profile] if profile else [])
        return issues

    def create_internal(self, body: dict[str, Any]) -> Stored:
        """Store a resource Kerma built itself (e.g. an AuditEvent): no client validation."""
        with self.store.transaction() as tx:
            return self.create_in(tx, body["resourceType"], body, trusted=True).stored

    def find_in(
        self, reader: Reader, rtype: str, query_string: str, what: str, gate: Gate | None = None
    ) -> Stored | None:
        """The one resource a conditional request names; 412 when several match. With a
        gate, only what the user may see is found."""
        pairs = parse_qsl(query_string.split("?", 1)[-1], keep_blank_values=True)
        if not pairs:
            raise FhirError.of(400, "invalid", f"{what}: empty search")
        request = self.parse_search(rtype, pairs)
        request = replace(request, query=replace(request.query, count=2, with_total=False))
        matches = self.search_in(reader, request, gate).matches
        if len(matches) > 1:
            raise FhirError.of(
                412, "multiple-matches", f"{what} {query_string!r} matches more than one {rtype}"
            )
        return matches[0] if matches else None

    def save_in(
        self, tx: Transaction, rtype: str, body: dict[str, Any], existing: Stored | None
    ) -> Stored:
        """Create, or update `existing`, a resource Kerma built itself (no client validation);
        `body` gets its id, so callers can use it as stored."""
        if existing is None:
            stored = self.create_in(tx, rtype, body, trusted=True).stored
        else:
            body["id"] = existing.rid
            stored = self.update_in(tx, rtype, existing.rid, body, trusted=True).stored
        body["id"] = stored.rid
        return stored

    def all_in(
        self,
        reader: Reader,
        rtype: str,
        pairs: list[tuple[str, str]],
        *,
        gate: Gate | None = None,
        limit: int = _EVERY,
    ) -> list[Stored]:
        """Every match in one store query, unpaged (Kerma's own searches, GraphQL's batched
        lookups); more than `limit` is an error to narrow the search, never a cut answer."""
        request = self.parse_search(rtype, pairs, strict=True, bounded=False)
        query = replace(request.query, count=limit + 1, offset=0, with_total=False)
        matches = self.search_in(reader, replace(request, query=query), gate).matches
        if len(matches) > limit:
            raise FhirError.of(
                400, "too-costly", f"more than {limit} {rtype} match; narrow the search"
            )
        return matches

    def _write(
        self,
        tx: Transaction,
        rtype: str,
        rid: str,
        body: dict[str, Any],
        version: int,
        method: str,
        trusted: bool = False,
    ) -> Stored:
        now = self._clock()
        resource = dict(body)
        resource["id"] = rid
        meta = {
            k: v
            for k, v in (body.get("meta") or {}).items()
            if k in ("profile", "tag", "security", "source")
        }
        resource["meta"] = {"versionId": str(version), "lastUpdated": instant(now), **meta}
        if not trusted:
            issues = validate(resource, self._checks)
            if issues:
                raise FhirError(422, issues)
        data = orjson.dumps(resource)
        write = Write(rtype, rid, version, now, method, data, self._indexer.index(resource))  # type: ignore[arg-type]
        self._commit_write(tx, write)
        return Stored(rtype, rid, version, now, data, method)

    @staticmethod
    def _commit_write(tx: Transaction, write: Write) -> None:
        try:
            tx.write(write)
        except VersionConflict as e:
            raise FhirError.of(409, "conflict", f"concurrent update: {e}") from None


def _restricted(request: SearchRequest, gate: Gate) -> SearchRequest:
    restrict = gate.restriction(request.query.rtype)
    if not restrict:
        return request
    query = request.query
    return replace(request, query=replace(query, clauses=query.clauses + restrict))


def _readable(gate: Gate, found: list[Stored]) -> list[Stored]:
    return [s for s in found if gate.may_read(s)]


def check_type(rtype: str) -> None:
    if rtype not in registry.resource_types():
        raise FhirError.of(404, "not-supported", f"resource type {rtype!r} is not supported")


def _check_body(rtype: str, body: Any) -> None:
    if not isinstance(body, dict):
        raise FhirError.of(400, "structure", "the body must be a JSON object")
    if body.get("resourceType") != rtype:
        raise FhirError.of(
            400,
            "invalid",
            f"resourceType {body.get('resourceType')!r} does not match the URL ({rtype})",
            "resourceType",
        )


def _current(stored: Stored | None, rtype: str, rid: str) -> Stored:
    if stored is None:
        raise FhirError.of(404, "not-found", f"{rtype}/{rid} does not exist")
    if stored.deleted:
        raise FhirError.of(410, "deleted", f"{rtype}/{rid} was deleted")
    return stored


def _etag_version(etag: str) -> int:
    text = etag.strip().removeprefix("W/").strip('"')
    if not _is_int(text):
        raise FhirError.of(400, "invalid", f'If-Match must be an ETag like W/"3", got {etag!r}')
    return int(text)


def device_names(reader: Reader) -> Callable[[str], str]:
    """Device reference -> how people name it (manufacturer, model, station; the reference
    when there is no such device), each read once."""

    @functools.cache
    def name(ref: str) -> str:
        stored = reader.read(*ref.split("/", 1))
        return (device_label(body_of(stored)) if stored else "") or ref

    return name


def body_of(stored: Stored) -> dict[str, Any]:
    return orjson.loads(stored.body) if stored.body else {}


__all__ = ["FhirService", "Issue", "Saved", "SearchResult", "body_of", "check_type"]


def _is_int(text: str) -> bool:
    """ASCII digits that fit a 64-bit integer ('²'.isdigit() is True, and int('²') fails).

    >>> _is_int("12"), _is_int("²"), _is_int("9" * 30)
    (True, False, False)
    """
    return text.isascii() and text.isdigit() and len(text) <= 18
