"""The site: its settings made into the mapping context and the FHIR service, and its tables
as stored (dose levels, classification rules)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from server.classification import rules
from server.config import Settings
from server.dose.drl import procedure_map
from server.fhir.indexing import Indexer
from server.fhir.mapping import Context
from server.fhir.service import FhirService
from server.mappings import alert_rules, read_csv_rows, unit_table
from server.site import choices, levels, subscriptions
from server.store.port import Store


def site_context(settings: Settings) -> Context:
    """The site's time zone, patient identifier system and tables, for mapping to FHIR."""
    return Context(
        timezone=ZoneInfo(settings.timezone),
        patient_id_system=settings.patient_id_system,
        patient_id_issuer=settings.patient_id_issuer,
        level_procedures=procedure_map(read_csv_rows("drl/procedures.csv")),
        alert_rules=tuple(
            rule for name in choices.configured(settings).alert_sets for rule in alert_rules(name)
        ),
    )


def build_service(store: Store, settings: Settings | None = None) -> FhirService:
    settings = settings or Settings()
    return FhirService(
        store,
        Indexer(unit_table()),
        page_size_default=settings.page_size_default,
        page_size_max=settings.page_size_max,
        checks=(levels.problems, rules.problems, subscriptions.problems, choices.problems),
    )


__all__ = ["build_service", "site_context"]
