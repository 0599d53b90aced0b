"""Batched store lookups for one GraphQL request (strawberry DataLoaders), so a query over a
thousand studies with their events and patients costs a few store queries, not thousands.

References are read by one `_id` search per resource type; reverse references (`<Type>List(
_reference: ...)` under each of many resources) by one search per type, parameter and
arguments, with the focus resources ORed, then handed back per focus. Every lookup goes
through the REST search code with the user's restrictions, and what it returns is recorded
for the audit trail.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import orjson
from strawberry.dataloader import DataLoader

from server.auth.access import Access
from server.fhir import registry
from server.fhir.indexing import references_of
from server.fhir.search import or_list
from server.fhir.service import FhirService
from server.store.port import Stored

_IDS_PER_QUERY = 1000  # the REST page maximum; `_id` searches are chunked to it
_MAX_MATCHES = 100_000  # per batched search: more is an error asking to narrow it


@dataclass(frozen=True)
class Reverse:
    """The `rtype` resources whose reference parameter `param` points at `focus`."""

    rtype: str
    param: str
    pairs: tuple[tuple[str, str], ...]
    focus: str


class Loaders:
    def __init__(self, service: FhirService, access: Access, disclosed: list[Stored]) -> None:
        self._service = service
        self._access = access
        self._disclosed = disclosed
        self.references: DataLoader[str, Stored | None] = DataLoader(self._read)
        self.reverse: DataLoader[Reverse, list[Stored]] = DataLoader(self._reverse)

    async def _read(self, keys: list[str]) -> list[Stored | None]:
        """The resources `Type/id` points at (None: absent, deleted or not the user's)."""
        by_type: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            rtype, _, rid = key.partition("/")
            if rtype in registry.resource_types() and self._access.role.can("read", rtype):
                by_type[rtype].append(rid)
        found: dict[str, Stored] = {}
        for rtype, rids in by_type.items():
            for start in range(0, len(rids), _IDS_PER_QUERY):
                chunk = rids[start : start + _IDS_PER_QUERY]
                pairs = [("_id", or_list(chunk)), ("_count", str(len(chunk)))]
                found.update((f"{s.rtype}/{s.rid}", s) for s in self.matches(rtype, pairs))
        return [found.get(key) for key in keys]

    async def _reverse(self, keys: list[Reverse]) -> list[list[Stored]]:
        groups: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[Reverse]] = defaultdict(
            list
        )
        for key in keys:
            groups[(key.rtype, key.param, key.pairs)].append(key)
        answer: dict[Reverse, list[Stored]] = {}
        for (rtype, name, pairs), members in groups.items():
            param = registry.params(rtype)[name]
            focuses = sorted({m.focus for m in members})
            matches = self.matches(rtype, [*pairs, (name, or_list(focuses))])
            per_focus: dict[str, list[Stored]] = defaultdict(list)
            for stored in matches:
                for target in set(references_of(orjson.loads(stored.body or b"{}"), param)):
                    per_focus[target].append(stored)
            answer.update((m, per_focus.get(m.focus, [])) for m in members)
        return [answer[key] for key in keys]

    def matches(self, rtype: str, pairs: list[tuple[str, str]]) -> list[Stored]:
        """All matches the user may see, recorded as disclosed."""
        found = self._service.all_in(
            self._service.store, rtype, pairs, gate=self._access, limit=_MAX_MATCHES
        )
        self._disclosed.extend(found)
        return found
