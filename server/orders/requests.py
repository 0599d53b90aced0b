"""Orders from the RIS as ServiceRequests, and each one tied to the ImagingStudy that answers
it (ImagingStudy.basedOn), by Study Instance UID when the order carries one, else by accession
number; whichever arrives first, the second makes the link."""

from __future__ import annotations

from typing import Any

from server.dose.order import OrderRecord
from server.fhir.mapping import DCM, V2_0203, Context, codeable, fhir_datetime
from server.fhir.service import FhirService, body_of
from server.store.port import Stored, Transaction

_KINDS = (("placer", "PLAC"), ("filler", "FILL"), ("accession", "ACSN"))


class Orders:
    def __init__(self, service: FhirService, ctx: Context) -> None:
        self.service = service
        self.ctx = ctx

    def apply(self, tx: Transaction, record: OrderRecord, patient_ref: str) -> str:
        """Create or update the ServiceRequest; link the study if it is already here."""
        existing = self._find_order(tx, record)
        body = self._service_request(record, patient_ref, body_of(existing) if existing else None)
        stored = self.service.save_in(tx, "ServiceRequest", body, existing)
        ref = f"ServiceRequest/{stored.rid}"
        for study in self._studies(tx, record.study_uid, record.accession):
            self._link(tx, study, ref)
        return ref

    def link_study(self, tx: Transaction, study: Stored) -> str | None:
        """Called when a study is stored: the order it answers, linked, or None."""
        body = body_of(study)
        uid = next(
            (i["value"] for i in body.get("identifier", []) if i.get("system") == "urn:dicom:uid"),
            "",
        )
        accession = typed_identifier(body, "ACSN")
        found = self._orders_by(tx, "identifier", uid) if uid else []
        if not found and accession:
            found = [
                s
                for s in self._orders_by(tx, "identifier", accession)
                if typed_identifier(body_of(s), "ACSN") == accession
            ]
        if not found:
            return None
        ref = f"ServiceRequest/{found[0].rid}"
        self._link(tx, study, ref)
        return ref

    def _service_request(
        self, record: OrderRecord, patient_ref: str, previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"resourceType": "ServiceRequest", "intent": "order"}
        identifiers = [
            {"type": {"coding": [{"system": V2_0203, "code": code}]}, "value": value}
            for attr, code in _KINDS
            if (value := getattr(record, attr))
        ]
        if record.study_uid:
            identifiers.append({"system": "urn:dicom:uid", "value": f"urn:oid:{record.study_uid}"})
        if record.requested_procedure_id:
            identifiers.append(
                {"type": {"text": "Requested Procedure ID"}, "value": record.requested_procedure_id}
            )
        body["identifier"] = identifiers
        body["status"] = record.status
        body["subject"] = {"reference": patient_ref}
        if record.procedure:
            body["code"] = codeable(record.procedure)
        if record.modality:
            body["category"] = [{"coding": [{"system": DCM, "code": record.modality}]}]
        if record.reasons:
            body["reasonCode"] = [codeable(r) for r in record.reasons]
        if record.requester:
            requester: dict[str, Any] = {"display": record.requester.display or record.requester.id}
            if record.requester.id:
                requester["identifier"] = {"value": record.requester.id}
            body["requester"] = requester
        if record.priority:
            body["priority"] = record.priority
        if record.scheduled:
            body["occurrenceDateTime"] = fhir_datetime(record.scheduled, self.ctx)
        if record.authored:
            body["authoredOn"] = fhir_datetime(record.authored, self.ctx)
        if previous:  # an update of the order keeps what only the first message said
            body = {**{k: v for k, v in previous.items() if k != "meta"}, **body}
        return body

    def _find_order(self, tx: Transaction, record: OrderRecord) -> Stored | None:
        for attr, code in _KINDS:
            value = getattr(record, attr)
            if not value:
                continue
            for found in self._orders_by(tx, "identifier", value):
                if typed_identifier(body_of(found), code) == value:
                    return found
        return None

    def _orders_by(self, tx: Transaction, param: str, value: str) -> list[Stored]:
        return self.service.all_in(tx, "ServiceRequest", [(param, value)])

    def _studies(self, tx: Transaction, study_uid: str, accession: str) -> list[Stored]:
        if study_uid:
            found = self.service.all_in(
                tx, "ImagingStudy", [("identifier", f"urn:dicom:uid|urn:oid:{study_uid}")]
            )
            if found:
                return found
        if not accession:
            return []
        return [
            s
            for s in self.service.all_in(tx, "ImagingStudy", [("identifier", accession)])
            if typed_identifier(body_of(s), "ACSN") == accession
        ]

    def _link(self, tx: Transaction, study: Stored, order_ref: str) -> None:
        body = body_of(study)
        if {"reference": order_ref} in body.get("basedOn", []):
            return
        body["basedOn"] = [{"reference": order_ref}]
        self.service.update_in(tx, "ImagingStudy", study.rid, body, trusted=True)


def typed_identifier(body: dict[str, Any], code: str) -> str:
    """The value of the identifier of that v2-0203 type ("ACSN", "PLAC"...), or ""."""
    for ident in body.get("identifier", []):
        if any(c.get("code") == code for c in ident.get("type", {}).get("coding", [])):
            return str(ident.get("value", ""))
    return ""
