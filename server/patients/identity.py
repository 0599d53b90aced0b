"""Patient identity as the HIS keeps it: create or update from ADT, merge, undo a merge,
change an identifier. Each change is one store transaction; merges leave a Provenance.

A merge moves every reference to the merged Patient (ImagingStudy, Observations,
DetectedIssue, ServiceRequest...) to the survivor; the merged Patient stays readable, inactive,
with `link.type = replaced-by` saying where its data went. The Provenance lists the moved
resources, so an admin can undo the merge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from server.dose.patient import Address, Identifier, PatientRecord
from server.fhir import facts, registry
from server.fhir.errors import FhirError
from server.fhir.mapping import LOINC, UCUM, Context, fhir_datetime
from server.fhir.service import FhirService, body_of
from server.fhir.values import instant
from server.store.port import Stored, Transaction

OPERATION_SYSTEM = "https://kerma.example.org/fhir/CodeSystem/patient-operation"
# history and audit records keep naming the patient they were written about
_NOT_MOVED = frozenset({"Patient", "Provenance", "AuditEvent"})
_VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category"


@dataclass(frozen=True)
class Merged:
    survivor: str  # "Patient/id"
    merged: str | None  # None: the prior identifiers named no patient Kerma knows
    moved: int
    provenance: str | None


class Patients:
    def __init__(self, service: FhirService, ctx: Context) -> None:
        self.service = service
        self.ctx = ctx
        self.id_system = ctx.patient_id_system

    def system(self, authority: str) -> str:
        """The identifier system; DICOM's Issuer of Patient ID gives the same one."""
        return f"{self.id_system}:{authority}" if authority else self.id_system

    def find(self, tx: Transaction, identifiers: tuple[Identifier, ...]) -> Stored | None:
        """The patient any of the identifiers names, preferring an active one."""
        found: list[Stored] = []
        for ident in identifiers:
            found += self.service.all_in(
                tx, "Patient", [("identifier", f"{self.system(ident.authority)}|{ident.value}")]
            )
        return current(found)

    def upsert(self, tx: Transaction, record: PatientRecord) -> str:
        """Create the patient, or update what the HIS says about one Kerma knows (from DICOM
        or an earlier message). The HIS wins on demographics; identifiers are added."""
        existing = self.find(tx, record.identifiers)
        body = body_of(existing) if existing else {"resourceType": "Patient"}
        if existing and body.get("active") is False:  # merged away: the survivor gets it
            survivor = _replaced_by(body)
            if survivor:
                existing = tx.read("Patient", survivor.split("/")[1])
                body = body_of(existing) if existing else body
        body = self._demographics(body, record)
        ref = f"Patient/{self.service.save_in(tx, 'Patient', body, existing).rid}"
        self._measurements(tx, ref, record)
        return ref

    def merge(
        self,
        tx: Transaction,
        survivor: PatientRecord,
        prior: tuple[Identifier, ...],
        why: str,
    ) -> Merged:
        survivor_ref = self.upsert(tx, survivor)
        found = self.find(tx, prior)
        if found is None or f"Patient/{found.rid}" == survivor_ref:
            return Merged(survivor_ref, None, 0, None)  # nothing (more) to move
        merged_ref = f"Patient/{found.rid}"
        moved = self._move_references(tx, merged_ref, survivor_ref)
        old = body_of(found)
        old["active"] = False
        old["link"] = [{"other": {"reference": survivor_ref}, "type": "replaced-by"}]
        merged_stored = self.service.update_in(tx, "Patient", found.rid, old, trusted=True).stored
        kept = tx.read("Patient", survivor_ref.split("/")[1])
        if kept is not None:
            body = body_of(kept)
            links = [lk for lk in body.get("link", []) if lk["other"]["reference"] != merged_ref]
            body["link"] = [*links, {"other": {"reference": merged_ref}, "type": "replaces"}]
            body["identifier"] = _union(body.get("identifier", []), old.get("identifier", []))
            self.service.update_in(tx, "Patient", kept.rid, body, trusted=True)
        self._refresh_facts(tx, moved)
        targets = [survivor_ref, _versioned(merged_stored), *moved]
        provenance = self._provenance(tx, "merge", targets, merged_ref, why)
        return Merged(survivor_ref, merged_ref, len(moved), provenance)

    def unmerge(self, tx: Transaction, merged_id: str, why: str) -> Merged:
        """Undo the last merge of `merged_id`: its resources go back, it is active again."""
        merged_ref = f"Patient/{merged_id}"
        merge = self._last_merge(tx, merged_ref)
        if merge is None:
            raise FhirError.of(409, "conflict", f"{merged_ref} was not merged into another patient")
        survivor_ref = merge["target"][0]["reference"]
        moved_back = []
        for target in merge["target"][2:]:
            rtype, rid = target["reference"].split("/")[:2]
            current = tx.read(rtype, rid)
            if current is None or current.deleted:
                continue
            body = _replace_reference(body_of(current), survivor_ref, merged_ref)
            stored = self.service.update_in(tx, rtype, rid, body, trusted=True).stored
            moved_back.append(_versioned(stored))
        old = body_of(_must_read(tx, merged_ref))
        old["active"] = True
        old.pop("link", None)
        self.service.update_in(tx, "Patient", merged_id, old, trusted=True)
        kept = body_of(_must_read(tx, survivor_ref))
        kept["link"] = [lk for lk in kept.get("link", []) if lk["other"]["reference"] != merged_ref]
        if not kept["link"]:
            del kept["link"]
        own = {(i.get("system"), i.get("value")) for i in old.get("identifier", [])}
        kept["identifier"] = [
            i for i in kept.get("identifier", []) if (i.get("system"), i.get("value")) not in own
        ] or kept.get("identifier", [])
        self.service.update_in(tx, "Patient", survivor_ref.split("/")[1], kept, trusted=True)
        self._refresh_facts(tx, moved_back)
        targets = [survivor_ref, merged_ref, *moved_back]
        provenance = self._provenance(
            tx, "unmerge", targets, merged_ref, why, undoes=f"Provenance/{merge['id']}"
        )
        return Merged(survivor_ref, merged_ref, len(moved_back), provenance)

    def change_identifier(
        self, tx: Transaction, record: PatientRecord, prior: tuple[Identifier, ...]
    ) -> str | None:
        """A47: the patient known by `prior` is now known by the record's identifiers."""
        found = self.find(tx, prior)
        if found is None:
            return None
        body = body_of(found)
        old = {(self.system(i.authority), i.value) for i in prior}
        body["identifier"] = [
            i for i in body.get("identifier", []) if (i.get("system"), i.get("value")) not in old
        ]
        body = self._demographics(body, record)
        return f"Patient/{self.service.save_in(tx, 'Patient', body, found).rid}"

    # -- pieces ---------------------------------------------------------------------------------

    def _demographics(self, body: dict[str, Any], record: PatientRecord) -> dict[str, Any]:
        new_ids = [self._identifier(i) for i in record.identifiers]
        body["identifier"] = _union(new_ids, body.get("identifier", []))
        body["active"] = True
        if record.family or record.given:
            name: dict[str, Any] = {"use": "official"}
            if record.family:
                name["family"] = record.family
            if record.given:
                name["given"] = list(record.given)
            if record.prefix:
                name["prefix"] = [record.prefix]
            if record.suffix:
                name["suffix"] = [record.suffix]
            body["name"] = [name]
        if record.gender:
            body["gender"] = record.gender
        if record.birth_date:
            body["birthDate"] = record.birth_date.isoformat()
        if record.addresses:
            body["address"] = [_address(a) for a in record.addresses]
        return body

    def _identifier(self, ident: Identifier) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.system(ident.authority), "value": ident.value}
        if ident.type_code:
            out["type"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": ident.type_code,
                    }
                ]
            }
        if ident.authority:
            out["assigner"] = {"display": ident.authority}
        return out

    def _measurements(self, tx: Transaction, patient_ref: str, record: PatientRecord) -> None:
        when = fhir_datetime(record.measured, self.ctx) if record.measured else None
        for code, display, value, unit in (
            ("8302-2", "Body height", record.height_m, "m"),
            ("29463-7", "Body weight", record.weight_kg, "kg"),
        ):
            if value is None:
                continue
            pairs = [("subject", patient_ref), ("code", f"{LOINC}|{code}")]
            if when and any(
                body_of(s).get("effectiveDateTime") == when
                and body_of(s).get("valueQuantity", {}).get("value") == value
                for s in self.service.all_in(tx, "Observation", pairs)
            ):
                continue  # the same measurement sent again
            obs: dict[str, Any] = {
                "resourceType": "Observation",
                "status": "final",
                "category": [{"coding": [{"system": _VITAL_SIGNS, "code": "vital-signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "subject": {"reference": patient_ref},
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            }
            if when:
                obs["effectiveDateTime"] = when
            self.service.create_in(tx, "Observation", obs, trusted=True)

    def _move_references(self, tx: Transaction, old_ref: str, new_ref: str) -> list[str]:
        moved = []
        for stored in self._referencing(tx, old_ref):
            body = _replace_reference(body_of(stored), old_ref, new_ref)
            updated = self.service.update_in(tx, stored.rtype, stored.rid, body, trusted=True)
            moved.append(_versioned(updated.stored))
        return moved

    def _referencing(self, tx: Transaction, ref: str) -> list[Stored]:
        """Every resource that references `ref` ("Patient/x", "ImagingStudy/y"), but the
        history and audit records."""
        target_type = ref.split("/")[0]
        seen: dict[tuple[str, str], Stored] = {}
        for rtype in registry.resource_types():
            if rtype in _NOT_MOVED:
                continue
            for p in registry.params(rtype).values():
                if p.type == "reference" and target_type in p.targets and not p.special:
                    for stored in self.service.all_in(tx, rtype, [(p.name, ref)]):
                        seen[(stored.rtype, stored.rid)] = stored
        return list(seen.values())

    def reassign(
        self,
        tx: Transaction,
        study_id: str,
        patient_ref: str | None,
        order_ref: str | None,
        why: str,
    ) -> str:
        """$reassign: the study, and everything that hangs on it, to another patient and/or
        order. Returns the Provenance, which lists what moved."""
        study_ref = f"ImagingStudy/{study_id}"
        study = body_of(_must_read(tx, study_ref))
        old_patient = study.get("subject", {}).get("reference", "")
        moved = []
        if patient_ref and patient_ref != old_patient:
            if body_of(_must_read(tx, patient_ref)).get("active") is False:
                raise FhirError.of(
                    422, "business-rule", f"{patient_ref} was merged away (inactive)"
                )
            hanging = [s for s in self._referencing(tx, study_ref) if s.rtype != "ServiceRequest"]
            for stored in [_must_read(tx, study_ref), *hanging]:
                body = _replace_reference(body_of(stored), old_patient, patient_ref)
                if stored.rtype == "ImagingStudy" and not old_patient.startswith("Patient/"):
                    body["subject"] = {"reference": patient_ref}
                updated = self.service.update_in(tx, stored.rtype, stored.rid, body, trusted=True)
                moved.append(_versioned(updated.stored))
        if order_ref:
            _must_read(tx, order_ref)
            study = body_of(_must_read(tx, study_ref))
            study["basedOn"] = [{"reference": order_ref}]
            updated = self.service.update_in(tx, "ImagingStudy", study_id, study, trusted=True)
            moved = [m for m in moved if not m.startswith(f"{study_ref}/")] + [
                _versioned(updated.stored)
            ]
        if not moved:
            raise FhirError.of(
                400, "invalid", "$reassign needs a patient or a serviceRequest that differs"
            )
        self._refresh_facts(tx, moved)
        targets = [*(r for r in (patient_ref, order_ref) if r), *moved]
        return self._provenance(tx, "reassign", targets, old_patient or study_ref, why)

    def _refresh_facts(self, tx: Transaction, moved: list[str]) -> None:
        """The dose-facts rows name the patient: those of moved studies are recomputed."""
        for ref in moved:
            if ref.startswith("ImagingStudy/"):
                facts.refresh(self.service, tx, "/".join(ref.split("/")[:2]), self.ctx.units)

    def _provenance(
        self,
        tx: Transaction,
        activity: str,
        targets: list[str],
        entity: str,
        why: str,
        undoes: str | None = None,
    ) -> str:
        body: dict[str, Any] = {
            "resourceType": "Provenance",
            "target": [{"reference": t} for t in targets],
            "recorded": instant(time.time()),
            "activity": {"coding": [{"system": OPERATION_SYSTEM, "code": activity}]},
            "reason": [{"text": why}],
            "agent": [{"who": {"display": why}}],
            "entity": [{"role": "removal", "what": {"reference": entity}}],
        }
        if undoes:  # the Provenance of the change this one takes back
            body["entity"].append({"role": "revision", "what": {"reference": undoes}})
        stored = self.service.create_in(tx, "Provenance", body, trusted=True).stored
        return f"Provenance/{stored.rid}"

    def _last_merge(self, tx: Transaction, merged_ref: str) -> dict[str, Any] | None:
        """The Provenance of the merge to undo: the patient's last merge, unless undone."""
        records = [
            body_of(s) for s in self.service.all_in(tx, "Provenance", [("entity", merged_ref)])
        ]
        undone = {
            e["what"]["reference"]
            for b in records
            if _activity(b) == "unmerge"
            for e in b["entity"]
            if e["role"] == "revision"
        }
        merges = [
            b for b in records if _activity(b) == "merge" and f"Provenance/{b['id']}" not in undone
        ]
        return max(merges, key=lambda b: b.get("recorded", ""), default=None)


def current(found: list[Stored]) -> Stored | None:
    """Of the patients an identifier finds, the active one: after a merge the survivor holds
    the merged patient's identifiers too."""
    active = [s for s in found if body_of(s).get("active", True)]
    return (active or found)[0] if found else None


def _activity(provenance: dict[str, Any]) -> str:
    return str(provenance.get("activity", {}).get("coding", [{}])[0].get("code", ""))


def _union(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = {(i.get("system"), i.get("value")) for i in first}
    return first + [i for i in second if (i.get("system"), i.get("value")) not in keys]


def _address(a: Address) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (
        ("line", list(a.lines)),
        ("city", a.city),
        ("state", a.state),
        ("postalCode", a.postal_code),
        ("country", a.country),
    ):
        if value:
            out[key] = value
    use = {"H": "home", "B": "work", "O": "work", "C": "temp", "M": None}.get(a.use)
    if use:
        out["use"] = use
    return out


def _replaced_by(body: dict[str, Any]) -> str | None:
    return next(
        (
            lk["other"]["reference"]
            for lk in body.get("link", [])
            if lk.get("type") == "replaced-by"
        ),
        None,
    )


def _replace_reference(body: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """Every `"reference": old` anywhere in the resource, pointed at `new`."""
    text = orjson.dumps(body).decode()
    return orjson.loads(text.replace(f'"reference":"{old}"', f'"reference":"{new}"'))  # type: ignore[no-any-return]


def _versioned(stored: Stored) -> str:
    return f"{stored.rtype}/{stored.rid}/_history/{stored.version}"


def _must_read(tx: Transaction, ref: str) -> Stored:
    rtype, rid = ref.split("/")[:2]
    stored = tx.read(rtype, rid)
    if stored is None:
        raise FhirError.of(404, "not-found", f"{ref} does not exist")
    return stored
