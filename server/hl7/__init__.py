"""HL7 v2 in: the MLLP listener, ADT (patient identity) and orders."""

from __future__ import annotations

from server.config import Settings
from server.fhir import build_service, site_context
from server.hl7.handler import Hl7Handler, Limits
from server.hl7.inbox import Inbox
from server.mappings import unit_table
from server.store.port import Store


def build_handler(store: Store, settings: Settings) -> Hl7Handler:
    return Hl7Handler(
        build_service(store, settings),
        Inbox(settings.data_dir / "hl7" / "inbox.sqlite3"),
        unit_table(),
        site_context(settings),
        settings.ae_title,
        Limits(settings.hl7_max_bytes, settings.hl7_max_segments),
    )


__all__ = ["Hl7Handler", "Limits", "build_handler"]
