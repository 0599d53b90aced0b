"""FHIR R4, the wire format: resources from the dose model (mapping), search parsing, the
service functions every door calls (read, search, write), bundles, transactions, the
capability statement, indexing and validation."""

from __future__ import annotations

from server.fhir.errors import FhirError as FhirError
from server.fhir.service import FhirService as FhirService
from server.fhir.service import SearchResult as SearchResult

__all__ = ["FhirError", "FhirService", "SearchResult"]
