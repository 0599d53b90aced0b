"""Where outbound messages go, from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.config import Settings

OUTBOUND_SYSTEM = "urn:kerma:outbound"
DESTINATION_URL = "https://kerma.example.org/fhir/StructureDefinition/outbound-destination"
OBJECT_URL = "https://kerma.example.org/fhir/StructureDefinition/outbound-object"
HL7_ORU = "hl7-oru"


@dataclass(frozen=True)
class Destination:
    kind: str  # hl7-oru, dicom-forward, fhir-push
    label: str  # how the Communication names it: "RIS 10.1.2.3:2575"


@dataclass(frozen=True)
class Plan:
    destinations: tuple[Destination, ...]
    folder: Path  # objects waiting to be forwarded

    def of_kind(self, kind: str) -> tuple[Destination, ...]:
        return tuple(d for d in self.destinations if d.kind == kind)


def plan(settings: Settings) -> Plan:
    destinations: list[Destination] = []
    if settings.ris_port:
        destinations.append(Destination(HL7_ORU, f"{settings.ris_application} "
                                                 f"{settings.ris_host}:{settings.ris_port}"))  # fmt: skip
    return Plan(tuple(destinations), settings.data_dir / "outbound")
