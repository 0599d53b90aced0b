"""FHIR R4: mapping, search, REST. Service functions are the public surface (REST and GraphQL
both call them)."""

from __future__ import annotations

from server.config import Settings
from server.fhir.errors import FhirError as FhirError
from server.fhir.indexing import Indexer
from server.fhir.service import FhirService as FhirService
from server.fhir.service import SearchResult as SearchResult
from server.mappings import unit_table
from server.store.port import Store


def build_service(store: Store, settings: Settings | None = None) -> FhirService:
    settings = settings or Settings()
    return FhirService(
        store,
        Indexer(unit_table()),
        page_size_default=settings.page_size_default,
        page_size_max=settings.page_size_max,
    )


__all__ = ["FhirError", "FhirService", "SearchResult", "build_service"]
