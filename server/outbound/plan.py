"""Where outbound messages go, from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.config import Settings

OUTBOUND_SYSTEM = "urn:kerma:outbound"
DESTINATION_URL = "https://kerma.example.org/fhir/StructureDefinition/outbound-destination"
OBJECT_URL = "https://kerma.example.org/fhir/StructureDefinition/outbound-object"
HL7_ORU = "hl7-oru"
DICOM_FORWARD = "dicom-forward"
FHIR_PUSH = "fhir-push"


@dataclass(frozen=True)
class Destination:
    kind: str  # hl7-oru, dicom-forward, fhir-push
    label: str  # how the Communication names it: "RIS 10.1.2.3:2575"


@dataclass(frozen=True)
class Peer:
    """A DICOM destination of forwarded dose reports."""

    ae_title: str
    host: str
    port: int
    deidentify: bool

    @property
    def label(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}" + (
            " de-identified" if self.deidentify else ""
        )


@dataclass(frozen=True)
class Plan:
    destinations: tuple[Destination, ...]
    folder: Path  # objects waiting to be forwarded
    forward_from: frozenset[str] = frozenset()  # calling AE titles forwarded; empty: all

    def of_kind(self, kind: str) -> tuple[Destination, ...]:
        return tuple(d for d in self.destinations if d.kind == kind)


def plan(settings: Settings) -> Plan:
    destinations: list[Destination] = []
    if settings.ris_port:
        destinations.append(Destination(HL7_ORU, f"{settings.ris_application} "
                                                 f"{settings.ris_host}:{settings.ris_port}"))  # fmt: skip
    destinations += [Destination(DICOM_FORWARD, peer.label) for peer in peers(settings)]
    if settings.fhir_push_url:
        destinations.append(Destination(FHIR_PUSH, settings.fhir_push_url))
    forward_from = frozenset(t.strip() for t in settings.forward_from.split(",") if t.strip())
    return Plan(tuple(destinations), settings.data_dir / "outbound", forward_from)


def peers(settings: Settings) -> list[Peer]:
    """The forwarding destinations; ValueError names an entry that is not AET@host:port."""
    return peers_in(settings.forward_to, False) + peers_in(settings.forward_deidentified_to, True)


def peers_in(text: str, deidentify: bool) -> list[Peer]:
    """The destinations of one setting: AET@host:port, comma-separated."""
    return [_peer(entry.strip(), deidentify) for entry in text.split(",") if entry.strip()]


def _peer(entry: str, deidentify: bool) -> Peer:
    ae_title, at, address = entry.partition("@")
    host, colon, port = address.rpartition(":")
    if not (at and colon and ae_title and host and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{entry!r} is not AET@host:port")
    return Peer(ae_title, host, int(port), deidentify)
