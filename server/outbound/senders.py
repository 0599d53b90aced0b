"""The senders of outbound Communications, by kind, for the dispatcher of server/notify."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.config import Settings
from server.fhir.service import FhirService
from server.notify.channels import SendFailed
from server.notify.delivery import Sender
from server.outbound.forward import Forwarder
from server.outbound.plan import DICOM_FORWARD, FHIR_PUSH, HL7_ORU, OUTBOUND_SYSTEM
from server.outbound.push import FhirPusher
from server.outbound.ris import RisSender


class Outbound:
    """Sends each outbound Communication with the sender of its kind (its category code)."""

    def __init__(self, by_kind: Mapping[str, Sender]) -> None:
        self._by_kind = by_kind

    def channel(self, communication: dict[str, Any]) -> str:
        return str(communication["category"][0]["coding"][0]["code"])

    def send(self, communication: dict[str, Any]) -> str:
        sender = self._by_kind.get(self.channel(communication))
        if sender is None:  # queued while configured, since turned off
            raise SendFailed(f"{self.channel(communication)} is not configured any more")
        return sender.send(communication)


def senders(service: FhirService, settings: Settings) -> dict[str, Sender]:
    """{identifier system: sender} of what the settings send out (empty: nothing)."""
    by_kind: dict[str, Sender] = {}
    if settings.ris_port:
        by_kind[HL7_ORU] = RisSender(service, settings)
    if settings.forward_to or settings.forward_deidentified_to:
        by_kind[DICOM_FORWARD] = Forwarder(service, settings)
    if settings.fhir_push_url:
        by_kind[FHIR_PUSH] = FhirPusher(service, settings)
    return {OUTBOUND_SYSTEM: Outbound(by_kind)}
