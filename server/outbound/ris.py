"""Sending a study's dose results to the RIS: the ORU^R01 built from the stored study when it
is sent (the current dose, the order as reconciled by then), over MLLP, with the ACK read.

AA (or CA) is delivered. AE is kept as the reason and tried again later; AR is a refusal for
good (the RIS does not take this message), kept with its reason and not repeated. The control
ID is the Communication's, the same at every attempt: a RIS that got a message whose ACK was
lost sees the repeat as a duplicate (HL7 original acknowledgement mode).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.config import Settings
from server.dose.facts import DoseFact
from server.dose.results import dose_result
from server.fhir.mapping.codes import SYSTEMS
from server.fhir.service import FhirService, body_of
from server.hl7.ack import escape
from server.hl7.mllp_client import exchange
from server.mappings import dose_result_items
from server.notify.channels import SendFailed
from server.orders.requests import typed_identifier
from server.outbound.oru import Header, NotBuilt, Order, oru_r01
from server.outbound.plan import HL7_ORU

_TIMEOUT_S = 30.0


class RisSender:
    def __init__(self, service: FhirService, settings: Settings) -> None:
        self._service = service
        self._settings = settings

    def channel(self, communication: dict[str, Any]) -> str:
        return HL7_ORU

    def send(self, communication: dict[str, Any]) -> str:
        settings = self._settings
        message = self.message(communication)
        try:
            answer = exchange(settings.ris_host, settings.ris_port, message, _TIMEOUT_S)
        except OSError as e:
            raise SendFailed(
                f"the RIS at {settings.ris_host}:{settings.ris_port} did not answer "
                f"({e.strerror or e})"
            ) from None
        code, text = _acknowledgement(answer)
        if code in ("AA", "CA"):
            return f"{settings.ris_application} {settings.ris_host}:{settings.ris_port} ({code})"
        why = f"the RIS answered {code or 'no MSA'}" + (f": {text}" if text else "")
        raise SendFailed(why, permanent=code in ("AR", "CR"))

    def message(self, communication: dict[str, Any]) -> bytes:
        """The ORU^R01 of the Communication's study as it is stored now."""
        study = self._read(communication["about"][0]["reference"])
        patient = self._read(study["subject"]["reference"])
        facts = self._facts(study)
        study_rows = [f for f in facts if f.level == "study"]
        if not study_rows:
            raise SendFailed("the study has no dose values (yet)")
        result = dose_result(study_rows[0], [f for f in facts if f.level == "event"],
                             dose_result_items())  # fmt: skip
        header = Header(
            self._settings.ris_hl7_version, self._settings.ae_title,
            self._settings.ris_application, self._settings.ris_facility,
            control_id=f"K{communication['id'].replace('-', '')[:19]}",
            at=datetime.now(ZoneInfo(self._settings.timezone)),
        )  # fmt: skip
        try:
            return oru_r01(header, patient, self._order(study), result)
        except NotBuilt as e:
            raise SendFailed(str(e), permanent=True) from None

    def _facts(self, study: dict[str, Any]) -> list[DoseFact]:
        uid = next((i["value"] for i in study.get("identifier", [])
                    if i.get("system") == "urn:dicom:uid"), "")  # fmt: skip
        return self._service.store.facts(str(uid).removeprefix("urn:oid:"))

    def _order(self, study: dict[str, Any]) -> Order:
        request = self._read(study["basedOn"][0]["reference"]) if study.get("basedOn") else {}
        procedure = request.get("code") or {}
        code = (procedure.get("coding") or [{}])[0]
        started = study.get("started")
        return Order(
            placer=typed_identifier(request, "PLAC"),
            filler=typed_identifier(request, "FILL"),
            accession=typed_identifier(study, "ACSN") or typed_identifier(request, "ACSN"),
            code=(f"{escape(code['code'])}^{escape(code.get('display', ''))}^{_system(code)}"
                  if code.get("code") else f"^{escape(procedure.get('text', ''))}"
                  if procedure.get("text") else ""),
            started=(datetime.fromisoformat(started).astimezone(UTC) if started else None),
            corrected=len(self._summary_sources(study)) > 1,
        )  # fmt: skip

    def _summary_sources(self, study: dict[str, Any]) -> list[str]:
        pairs = [("part-of", f"ImagingStudy/{study['id']}"), ("code", "http://loinc.org|73569-6")]
        found = self._service.search("Observation", pairs).matches
        return [i["value"] for i in body_of(found[0]).get("identifier", [])] if found else []

    def _read(self, ref: str) -> dict[str, Any]:
        rtype, rid = ref.split("/", 1)
        return body_of(self._service.read(rtype, rid))


def _system(coding: dict[str, Any]) -> str:
    """HL7's name of the coding's system (LN, DCM), L (local) for others."""
    return _SCHEMES.get(str(coding.get("system", "")), "L")


_SCHEMES = {SYSTEMS[scheme]: scheme for scheme in ("LN", "DCM")}


def _acknowledgement(answer: bytes) -> tuple[str, str]:
    """MSA-1 and the reason (MSA-3, else ERR's text) of an ACK."""
    segments = answer.decode("utf-8", "replace").split("\r")
    separator = segments[0][3:4] or "|"
    msa = next((s.split(separator) for s in segments if s.startswith("MSA")), [])
    err = next((s.split(separator) for s in segments if s.startswith("ERR")), [])
    reason = (msa[3] if len(msa) > 3 else "") or (err[8] if len(err) > 8 else "")
    return (msa[1] if len(msa) > 1 else ""), reason
