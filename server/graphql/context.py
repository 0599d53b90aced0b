"""What every resolver of one GraphQL request gets: the user's access, the FHIR service, the
request's DataLoaders, the statistics, and the list of resources disclosed (audited once the
request is answered)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from server.auth.access import Access
from server.fhir.errors import FhirError
from server.fhir.service import FhirService, SearchResult
from server.graphql.loaders import Loaders
from server.stats.service import Statistics
from server.store.port import Stored


@dataclass
class Context:
    service: FhirService
    access: Access
    statistics: Callable[[], Statistics]
    disclosed: list[Stored] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)  # "Patient/<id>" of patient aggregates

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.service, self.access, self.disclosed)

    def require_statistics(self) -> None:
        self.access.require("MeasureReport")  # the statistics are MeasureReports

    def read(self, rtype: str, rid: str) -> Stored:
        self.access.require(rtype)
        stored = self.service.read(rtype, rid)
        if not self.access.may_read(stored):
            raise FhirError.of(403, "forbidden", f"{rtype}/{rid} is not from one of your devices")
        self.disclosed.append(stored)
        return stored

    def search_page(self, rtype: str, pairs: list[tuple[str, str]]) -> SearchResult:
        result = self.service.search(rtype, pairs, gate=self.access)
        self.disclosed.extend(result.matches)
        return result

    def search_list(self, rtype: str, pairs: list[tuple[str, str]]) -> list[Stored]:
        """All matches; FHIR GraphQL wants an error, not a cut list, when there are more than
        a page and the query did not ask for a page (`_count`)."""
        paged = any(name == "_count" for name, _ in pairs)
        result = self.search_page(rtype, pairs if paged else [*pairs, ("_count", "1000000")])
        if not paged and result.total is not None and result.total > len(result.matches):
            raise FhirError.of(
                400,
                "too-costly",
                f"{result.total} {rtype} match, more than one list gives "
                f"({len(result.matches)}); use _count and _offset or {rtype}Connection",
            )
        return result.matches
