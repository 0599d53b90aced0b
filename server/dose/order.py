"""What the RIS ordered: the request an examination, and so its dose, answers to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.dose.model import Coded


@dataclass(frozen=True)
class Person:
    id: str = ""
    family: str = ""
    given: str = ""
    prefix: str = ""

    @property
    def display(self) -> str:
        return " ".join(p for p in (self.prefix, self.given, self.family) if p)


@dataclass(frozen=True)
class OrderRecord:
    status: str  # FHIR ServiceRequest.status: active, on-hold, revoked, completed
    placer: str = ""  # placer order number (ORC-2 / OBR-2)
    filler: str = ""  # filler order number (ORC-3 / OBR-3)
    accession: str = ""  # IPC-1, or OBR-18 in IHE scheduled workflow
    study_uid: str = ""  # IPC-3, or ZDS-1
    requested_procedure_id: str = ""  # IPC-2 / OBR-19
    procedure: Coded | None = None  # OBR-4 universal service id, or OBR-44
    modality: str = ""  # IPC-5, or OBR-24
    reasons: tuple[Coded, ...] = ()  # OBR-31 reason for study (ICD-10 or text)
    requester: Person | None = None  # ORC-12 / OBR-16
    priority: str = ""  # FHIR: routine, urgent, asap, stat
    scheduled: datetime | None = None  # TQ1-7, OBR-27.4 or OBR-36
    authored: datetime | None = None  # ORC-9, else MSH-7
