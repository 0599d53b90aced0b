"""Ingestion: received objects -> dose reports -> FHIR resources; quarantine for the unreadable."""

from __future__ import annotations

from server.config import Settings
from server.ingest.pipeline import Ingestor as Ingestor
from server.ingest.pipeline import Result as Result
from server.ingest.quarantine import Quarantine as Quarantine
from server.mappings import unit_table
from server.outbound.plan import plan
from server.site import build_service, site_context
from server.site.tables import site_tables
from server.store.port import Store


def build_ingestor(store: Store, settings: Settings) -> Ingestor:
    service = build_service(store, settings)
    return Ingestor(
        service,
        unit_table(),
        site_context(settings),
        Quarantine(settings.quarantine_dir),
        site_tables(service, settings),
        frozenset(t for t in (settings.ae_title, settings.pacs_ae_title) if t),
        plan(settings),
    )


__all__ = ["Ingestor", "Quarantine", "Result", "build_ingestor"]
