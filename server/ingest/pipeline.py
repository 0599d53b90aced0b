"""One received object -> dose report -> FHIR resources, in one store transaction.

Idempotent: an object seen before (its SOP Instance UID is on the study's dose summary) is a
no-op; a second RDSR of the same study adds only events whose Irradiation Event UID is new and
recomputes the study's totals over all its events. What cannot be read goes to quarantine
with its reason; nothing received is dropped.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from server.alerts import issues
from server.calculated import observations as calculated
from server.dicom.read import Outcome, Skipped, Unreadable, read_dicom
from server.dose import alerts, drl
from server.dose.classify import modality_group
from server.dose.effective import effective_dose
from server.dose.model import CtEvent, DoseReport, Equipment, ProjectionEvent
from server.dose.skin import skin_dose_map
from server.dose.ssde import size_of, ssde
from server.dose.units import UnitTable
from server.fhir import acquisitions, mapping
from server.fhir.facts import study_facts
from server.fhir.service import FhirService, body_of
from server.fhir.values import instant
from server.ingest.quarantine import Quarantine
from server.logs import log_event
from server.mappings import k_factor_regions, k_factors, skin_dose_factors, ssde_tables
from server.notify import routing
from server.orders.requests import Orders
from server.patients import identity as patients
from server.site.tables import SiteTables
from server.store.port import Stored, Transaction

log = logging.getLogger("kerma.ingest")
Status = Literal["ingested", "duplicate", "skipped", "quarantined"]


@dataclass(frozen=True)
class Result:
    status: Status
    name: str
    modality: str | None = None
    reason: str | None = None
    events_added: int = 0
    study: str | None = None  # "ImagingStudy/<id>"


class Ingestor:
    def __init__(
        self,
        service: FhirService,
        units: UnitTable,
        ctx: mapping.Context,
        quarantine: Quarantine,
        levels: SiteTables | None = None,
    ) -> None:
        self._service = service
        self._units = units
        self._ctx = ctx
        self.quarantine = quarantine
        self._levels = levels  # the DRLs and alert levels of the site, None: compare with none
        self._devices: dict[str, str] = {}

    def ingest_file(self, path: Path) -> Result:
        return self.ingest_bytes(path.read_bytes(), path.name)

    def ingest_bytes(self, data: bytes, name: str, quarantine: bool = True) -> Result:
        """`quarantine=False` when the bytes come from quarantine already (reprocessing)."""
        return self.ingest_outcome(read_dicom(data, self._units), lambda: data, name, quarantine)

    def ingest_outcome(
        self, outcome: Outcome, data: Callable[[], bytes], name: str, quarantine: bool = True
    ) -> Result:
        """Store what reading an object gave; `data` gives its bytes, needed only for quarantine."""
        if isinstance(outcome, Unreadable):
            if quarantine:
                where = self.quarantine.put(data(), name, outcome.reason)
                log_event(log, "quarantined", object=name, reason=outcome.reason, file=where.name)
            return Result("quarantined", name, reason=outcome.reason)
        if isinstance(outcome, Skipped):
            log_event(log, "skipped", object=name, reason=outcome.reason)
            return Result("skipped", name, reason=outcome.reason)
        return self.store_report(outcome.report, name)

    def store_report(self, report: DoseReport, name: str) -> Result:
        ctx = self._levels.context(self._ctx) if self._levels else self._ctx
        try:
            with self._service.store.transaction() as tx:
                result = _Commit(self._service, ctx, tx, report, name, self._devices).run()
        except BaseException:
            self._devices.clear()  # a rolled-back transaction may have created a cached device
            raise
        log_event(
            log,
            result.status,
            object=name,
            modality=result.modality,
            events=result.events_added,
            study=result.study,
        )
        return result


class _Commit:
    """The writes of one report inside one transaction."""

    def __init__(
        self,
        service: FhirService,
        ctx: mapping.Context,
        tx: Transaction,
        report: DoseReport,
        name: str,
        devices: dict[str, str],
    ) -> None:
        self.service = service
        self.ctx = ctx
        self.tx = tx
        self.report = report
        self.name = name
        self.devices = devices  # device key -> "Device/id", kept across reports
        self.calculated: list[drl.Value] = []  # values Kerma calculated, for the alert rules

    def run(self) -> Result:
        report = self.report
        study_stored = self._find(
            "ImagingStudy", [("identifier", f"urn:dicom:uid|urn:oid:{report.study.study_uid}")]
        )
        summary_stored = self._summary(study_stored)
        previous = _body(summary_stored) if summary_stored else None
        if previous is not None and study_stored is not None:
            if report.source.sop_instance_uid in _sop_uids(previous):
                return Result(
                    "duplicate",
                    self.name,
                    report.modality,
                    study=f"ImagingStudy/{study_stored.rid}",
                )
            stored_kind = _source_kind(previous) or "rdsr"
            if _RANK[stored_kind] > _RANK[report.source.kind]:
                reason = f"the study has dose values from {_NAMES[stored_kind]}; {_NAMES[report.source.kind]} add nothing"
                return Result("skipped", self.name, report.modality, reason=reason)
        patient_ref = self._patient()
        study = mapping.imaging_study(
            report, self.ctx, patient_ref, _body(study_stored) if study_stored else None
        )
        study_ref = self._save("ImagingStudy", study, study_stored)
        if "basedOn" not in study:  # the order may have come first
            saved = self.tx.read("ImagingStudy", study_ref.split("/")[1])
            if saved is not None:
                Orders(self.service, self.ctx).link_study(self.tx, saved)
        stored_events = self._events(study_ref) if study_stored is not None else []
        superseded: list[str] = []
        replaced_kind = _source_kind(previous) if previous is not None else None
        if previous is not None and _RANK[replaced_kind or "rdsr"] < _RANK[report.source.kind]:
            # a better source supersedes: the old events go, the Provenance keeps both
            superseded = [f"Observation/{e['id']}" for e in stored_events]
            for event in stored_events:
                self.service.delete_in(self.tx, "Observation", event["id"])
            stored_events = []
            previous = {**previous, "component": []}  # the old totals do not add to the new
        known = {_event_uid(e): e for e in stored_events}
        added, summary_device = self._add_events(patient_ref, study, known)
        refs = mapping.Refs(patient_ref, summary_device, study_ref)
        all_events = sorted(
            [*stored_events, *added], key=lambda e: (e.get("effectiveDateTime", ""), _event_uid(e))
        )
        sop_uids = {*_sop_uids(previous or {}), report.source.sop_instance_uid}
        build = mapping.ct_summary if report.kind == "ct" else mapping.projection_summary
        summary = build(report, self.ctx, refs, all_events, sop_uids, previous)
        summary = mapping.mark_reading(summary, report, "ct_totals.")
        summary_ref = self._save("Observation", summary, summary_stored)
        calculated_refs = [
            *self._effective_dose(study, summary),
            *self._ssde(all_events),
            *self._skin_dose(summary, patient_ref),
        ]
        measured = self._body_measurements(patient_ref, study_ref) if summary_stored is None else []
        self._project_facts(study, summary, all_events)
        where = issues.Refs(
            patient_ref,
            study_ref,
            summary_ref,
            summary.get("device", {}).get("reference"),
            modality_group(report.modality),
            report.equipment.department or "",
        )
        found = self._check_levels(study, summary, where, all_events)
        routing.queue(self.service, self.tx, found)
        targets = [
            study_ref,
            summary_ref,
            *measured,
            *calculated_refs,
            *(f"Observation/{e['id']}" for e in added),
        ]
        targets += found
        self._provenance(report, targets, superseded, replaced_kind)
        return Result(
            "ingested", self.name, report.modality, events_added=len(added), study=study_ref
        )

    def _check_levels(
        self,
        study: dict[str, Any],
        summary: dict[str, Any],
        refs: issues.Refs,
        events: list[dict[str, Any]],
    ) -> list[str]:
        """DetectedIssues for values above a level of the site that applies (per acquisition:
        the acquisition's procedure; per examination: the study's), and for what the site's
        alert rules call significant events. None for physics and QA studies, nor for values
        still waiting for review."""
        if not self.ctx.levels and not self.ctx.alert_rules:
            return []  # the site compares with nothing: no work on every ingest
        decision = mapping.classification_of(study, self.ctx)
        if decision.rule == "qa" or summary.get("status") == "preliminary":
            return []
        report = self.report
        uid, when = report.study.study_uid, report.irradiation_start or report.study.started
        when = when or datetime.now(UTC)
        by_uid = {_event_uid(e): e for e in events}

        def located(value: drl.Value) -> issues.Refs:
            event = by_uid.get(value.event_uid or "")
            return refs.at(f"Observation/{event['id']}" if event else refs.holder)

        rules, group = list(self.ctx.alert_rules), refs.modality
        study_levels = self._levels(decision.code, "DRL")
        found = [
            issues.significant_event(a, uid, refs, when, self.ctx)
            for a in alerts.group_alerts(rules, group, study_levels, self._recent(uid))
        ]
        grouped = self._by_procedure(decision.code, by_uid)
        grouped.setdefault(decision.code, []).extend(self.calculated)
        for code, values in grouped.items():
            levels = self._levels(code, "DRL")
            procedure = self.ctx.rules.procedure(code or decision.code)
            region = "head" if procedure and procedure.region == "HEAD" else "body"
            found += [
                issues.level_exceeded(x, uid, located(x.value), when, self.ctx)
                for x in drl.exceedances(levels + self._levels(code, "alert"), values)
            ]
            found += [
                issues.significant_event(a, uid, located(a.value), when, self.ctx)
                for a in alerts.evaluate(rules, group, region, values, levels)
            ]
        return [
            self._save("DetectedIssue", issue, None)
            for issue in found
            if not self._find("DetectedIssue", [("identifier", issues.issue_identifier(issue))])
        ]

    def _by_procedure(
        self, study_code: str, events: dict[str, dict[str, Any]]
    ) -> dict[str, list[drl.Value]]:
        """The report's values by the standard procedure they are compared for: an event's
        own (per-acquisition classification), else the study's; "" for values of no
        procedure (localizers, bolus tracking: fixed alert thresholds only)."""
        grouped: dict[str, list[drl.Value]] = defaultdict(list)
        for value in drl.report_values(self.report):
            event = events.get(value.event_uid or "")
            classified, coding = acquisitions.event_procedure(event) if event else (False, None)
            code = str((coding or {}).get("code", "")) if classified else study_code
            grouped[code].append(value)
        return grouped

    def _levels(self, code: str, kind: str) -> list[drl.DoseLevel]:
        """The levels of a kind that apply to this report's patient for a procedure."""
        patient = self.report.patient
        return self.ctx.applicable_levels(code, patient.age_years, patient.weight_kg, kind)

    def _recent(self, study_uid: str) -> Callable[[int], list[Any]]:
        """The newest studies of this one's device and procedure up to it (dose-facts rows);
        read only when a group rule asks."""
        store = self.service.store

        def recent(limit: int) -> list[Any]:
            row = next((f for f in store.facts(study_uid) if f.level == "study"), None)
            if row is None or not row.device or not row.procedure or row.date is None:
                return []
            return store.recent_studies(row.device, row.procedure, row.date, limit)

        return recent

    def _project_facts(
        self, study: dict[str, Any], summary: dict[str, Any], events: list[dict[str, Any]]
    ) -> None:
        """The study's rows of the dose-facts projection, in the same transaction."""
        study_ref = f"ImagingStudy/{study['id']}"
        patient = self.report.patient
        measurements: dict[str, float] = {}
        for code, name, value in (
            ("8302-2", "size_m", patient.size_m),
            ("29463-7", "weight_kg", patient.weight_kg),
        ):
            if value is not None:  # what this report says, which is also what was stored
                measurements[name] = value
                continue
            found = self._find(
                "Observation", [("part-of", study_ref), ("code", f"http://loinc.org|{code}")]
            )
            if found is not None:
                measurements[name] = float(_body(found)["valueQuantity"]["value"])
        facts = study_facts(study, summary, events, measurements, self.ctx.units)
        self.tx.replace_facts(self.report.study.study_uid, facts)

    def _summary(self, study: Stored | None) -> Stored | None:
        if study is None:
            return None
        return self._find(
            "Observation",
            [("part-of", f"ImagingStudy/{study.rid}"), ("code", "http://loinc.org|73569-6")],
        )

    def _add_events(
        self, patient_ref: str | None, study: dict[str, Any], known: dict[str, dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], str]:
        """Create the report's events that are not stored yet, each classified (a known CT
        event read from images may grow its scan range); also the device the summary names."""
        report = self.report
        study_ref = f"ImagingStudy/{study['id']}"
        decision = mapping.classification_of(study, self.ctx)
        study_procedure = self.ctx.rules.procedure(decision.code) if decision.code else None
        added: list[dict[str, Any]] = []
        devices: set[str] = set()
        events: tuple[CtEvent | ProjectionEvent, ...] = (
            *report.ct_events,
            *report.projection_events,
        )
        for event in events:
            # the irradiating device the event names (TID 1021), else the recording equipment
            device_ref = self._device(event.device or report.equipment)
            devices.add(device_ref)
            if event.event_uid in known:
                if (
                    isinstance(event, CtEvent)
                    and event.top_z_mm is not None
                    and event.bottom_z_mm is not None
                ):
                    self._grow_scan_range(known[event.event_uid], event.top_z_mm, event.bottom_z_mm)
                continue
            refs = mapping.Refs(patient_ref, device_ref, study_ref)
            if isinstance(event, CtEvent):
                resource = mapping.ct_event(event, report, self.ctx, refs)
                index = report.ct_events.index(event)
                resource = mapping.mark_reading(resource, report, f"ct_events[{index}].")
            else:
                resource = mapping.projection_event(event, report, self.ctx, refs)
            acquisitions.classify_event(
                resource, report.modality, self.ctx.rules, study_procedure, decision.rule
            )
            added.append(
                {
                    **resource,
                    "id": self.service.create_in(
                        self.tx, "Observation", resource, trusted=True
                    ).stored.rid,
                }
            )
            known[event.event_uid] = added[-1]
        summary_device = devices.pop() if len(devices) == 1 else self._device(report.equipment)
        return added, summary_device

    def _effective_dose(self, study: dict[str, Any], summary: dict[str, Any]) -> list[str]:
        """E = k x DLP total as its own Observation with its Provenance (H4), unless the
        device reported E (its value wins) or the procedure has no k-factor region."""
        report = self.report
        if report.kind != "ct" or _reports_effective_dose(report):
            return []
        dlp = mapping.component_value(summary, "113813")
        region = k_factor_regions().get(mapping.classification_of(study, self.ctx).code)
        estimate = (
            effective_dose(dlp, region, report.patient.age_years, _main_kvp(report), k_factors())
            if dlp is not None and region is not None
            else None
        )
        if estimate is None:
            return []
        observation = calculated.effective_dose_observation(
            estimate, summary, report.study.study_uid
        )
        return self._save_calculated(
            observation, summary, calculated.effective_dose_agent(estimate)
        )

    def _ssde(self, events: list[dict[str, Any]]) -> list[str]:
        """SSDE (H7) of each CT acquisition whose device reported none, from the best size
        the RDSR or the patient's age allows (ssde.size_of); each derived from its event."""
        report = self.report
        tables = ssde_tables()
        stored = {_event_uid(e): e for e in events}
        age = report.patient.age_years
        refs: list[str] = []
        for event in report.ct_events:
            observation = stored.get(event.event_uid)
            size = size_of(
                tables,
                event.water_equivalent_diameter_mm,
                event.effective_diameter_mm,
                event.lateral_dimension_mm,
                event.ap_dimension_mm,
                age,
            )
            if (event.ssde_mgy is not None or observation is None or size is None
                    or event.ctdivol_mgy is None or event.phantom is None):  # fmt: skip
                continue
            estimate = ssde(event.ctdivol_mgy, event.phantom.value, size, tables)
            if estimate is not None:
                made = calculated.ssde_observation(estimate, observation, event.event_uid, age)
                refs += self._save_calculated(made, observation, calculated.ssde_agent(estimate))
        return refs

    def _skin_dose(self, summary: dict[str, Any], patient_ref: str | None) -> list[str]:
        """Peak skin dose and its map (H8) of a fluoroscopy RDSR with beam geometry, on a
        phantom of the patient's size: the RDSR's, else the latest height and weight stored
        for the patient (from the HIS over HL7, or an earlier study)."""
        report = self.report
        geometry = any(e.source_to_isocenter_mm for e in report.projection_events)
        if report.kind != "projection" or report.source.kind != "rdsr" or not geometry:
            return []
        patient = report.patient
        if patient_ref is not None and (patient.size_m is None or patient.weight_kg is None):
            height, weight = (
                self._latest_measurement(patient_ref, c) for c in ("8302-2", "29463-7")
            )
            patient = replace(
                patient, size_m=patient.size_m or height, weight_kg=patient.weight_kg or weight
            )
        found = skin_dose_map(replace(report, patient=patient), skin_dose_factors())
        if not found.events_mapped:
            return []
        if found.unfit is None:
            psd_mgy = found.peak_skin_dose_gy * 1000
            self.calculated.append(drl.Value(calculated.PEAK_SKIN_DOSE, "examination", psd_mgy))
        observation = calculated.skin_dose_observation(found, summary, report.study.study_uid)
        return self._save_calculated(observation, summary, calculated.skin_dose_agent(found))

    def _latest_measurement(self, patient_ref: str, loinc: str) -> float | None:
        """The patient's latest stored body measurement taken by the study's start."""
        started = self.report.study.started or self.report.irradiation_start
        until = mapping.fhir_datetime(started, self.ctx) if started else None
        pairs = [("subject", patient_ref), ("code", f"http://loinc.org|{loinc}")]
        found = (body_of(s) for s in self.service.all_in(self.tx, "Observation", pairs))
        taken = [o for o in found if until is None or o.get("effectiveDateTime", "") <= until]
        latest = max(taken, key=lambda o: o.get("effectiveDateTime", ""), default=None)
        return float(latest["valueQuantity"]["value"]) if latest else None

    def _save_calculated(
        self, observation: dict[str, Any], derived_from: dict[str, Any], agent: str
    ) -> list[str]:
        """Store (or replace) a calculated Observation, with a Provenance naming its algorithm."""
        key = observation["identifier"][0]["value"]
        existing = self._find("Observation", [("identifier", f"{calculated.CALCULATED_ID}|{key}")])
        ref = self._save("Observation", observation, existing)
        source = f"Observation/{derived_from['id']}"
        made = calculated.provenance(ref, source, agent, instant(time.time()))
        self.service.create_in(self.tx, "Provenance", made, trusted=True)
        return [ref]

    def _grow_scan_range(self, stored: dict[str, Any], top_z_mm: float, bottom_z_mm: float) -> None:
        grown = mapping.extend_scan_range(stored, top_z_mm, bottom_z_mm)
        if grown is not None:
            self.service.update_in(self.tx, "Observation", stored["id"], grown, trusted=True)
            stored["component"] = grown["component"]

    def _body_measurements(self, patient_ref: str | None, study_ref: str) -> list[str]:
        if patient_ref is None:
            return []
        refs = []
        for resource in mapping.body_measurements(self.report, self.ctx, patient_ref, study_ref):
            refs.append(self._save("Observation", resource, None))
        return refs

    def _patient(self) -> str | None:
        ident = mapping.patient_identifier(self.report, self.ctx)
        if ident is None:
            return None
        found = patients.current(
            self.service.all_in(self.tx, "Patient", [("identifier", f"{ident[0]}|{ident[1]}")])
        )
        if found is not None:
            return f"Patient/{found.rid}"
        return self._save("Patient", mapping.patient(self.report, self.ctx), None)

    def _device(self, equipment: Equipment) -> str:
        main = self.report.equipment
        if equipment.serial_number in (None, main.serial_number) and equipment.model in (
            None,
            main.model,
        ):
            equipment = main  # the event names the recording device itself
        if equipment is not main:  # another irradiating device: complete it from the report's
            equipment = replace(
                equipment,
                manufacturer=equipment.manufacturer or main.manufacturer,
                model=equipment.model or main.model,
                institution=main.institution,
                station_name=main.station_name,
                software_versions=main.software_versions,
            )
        key = mapping.device_key(equipment)
        cached = self.devices.get(key)
        if cached:
            return cached
        found = self._find("Device", [("identifier", f"{mapping.KERMA_DEVICE_KEY}|{key}")])
        ref = (
            f"Device/{found.rid}"
            if found
            else self._save(
                "Device", mapping.device(equipment, main.modality or self.report.modality), None
            )
        )
        self.devices[key] = ref
        return ref

    def _events(self, study_ref: str) -> list[dict[str, Any]]:
        pairs = [("part-of", study_ref), ("code", f"{mapping.DCM}|113852")]
        return [_body(s) for s in self.service.all_in(self.tx, "Observation", pairs)]

    def _find(self, rtype: str, pairs: list[tuple[str, str]]) -> Stored | None:
        request = self.service.parse_search(rtype, pairs)
        matches, _ = self.tx.search(replace(request.query, count=1, with_total=False))
        return matches[0] if matches else None

    def _save(self, rtype: str, resource: dict[str, Any], existing: Stored | None) -> str:
        """Create or update; `resource` gets its id, so callers can use it as stored."""
        return f"{rtype}/{self.service.save_in(self.tx, rtype, resource, existing).rid}"

    def _provenance(
        self,
        report: DoseReport,
        targets: list[str],
        superseded: list[str],
        replaced_kind: str | None,
    ) -> None:
        src = report.source
        provenance: dict[str, Any] = {
            "resourceType": "Provenance",
            "target": [{"reference": t} for t in targets],
            "recorded": instant(time.time()),
            "activity": {
                "text": f"read from {_NAMES[src.kind]}"
                + (f" (TID {src.template})" if src.template else "")
            },
            "agent": [{"who": {"display": "Kerma DICOM reader"}}],
            "entity": [
                {
                    "role": "source",
                    "what": {
                        "identifier": mapping.uid_identifier(
                            src.sop_instance_uid, "sop-instance-uid"
                        ),
                        "display": f"{src.modality or ''} object {self.name}".strip(),
                    },
                }
            ],
        }
        if superseded:
            provenance["entity"].extend(
                {
                    "role": "removal",
                    "what": {
                        "reference": ref,
                        "display": f"event read from {_NAMES[replaced_kind or 'rdsr']}, superseded by {_NAMES[src.kind]}",
                    },
                }
                for ref in superseded
            )
        if report.findings:
            provenance["reason"] = [
                {"text": f"{f.severity} {f.code} at {f.path}: {f.message}"} for f in report.findings
            ]
        self.service.create_in(self.tx, "Provenance", provenance, trusted=True)


# which source of dose values wins when a study has several (see SourceKind): machine-written
# values before OCR, summaries with DLPs before image headers
_RANK = {"rdsr": 5, "dose-info": 4, "mpps": 3, "ocr": 2, "image-header": 1}
_NAMES = {
    "rdsr": "a dose report (RDSR)",
    "dose-info": "the dose attributes of a dose screen",
    "mpps": "a performed procedure step (MPPS)",
    "ocr": "a dose screen read by OCR",
    "image-header": "image headers",
}


def _source_kind(summary: dict[str, Any]) -> str | None:
    tags = summary.get("meta", {}).get("tag", [])
    return next((t["code"] for t in tags if t.get("system") == mapping.SOURCE_TAG), None)


def _reports_effective_dose(report: DoseReport) -> bool:
    totals = report.ct_totals
    return (totals is not None and totals.effective_dose_total_msv is not None) or any(
        e.effective_dose_msv is not None for e in report.ct_events
    )


def _main_kvp(report: DoseReport) -> float | None:
    """The tube voltage of the CT event with the largest DLP (the one E depends on most)."""
    events = [e for e in report.ct_events if e.dlp_mgy_cm and any(s.kvp_kv for s in e.sources)]
    if not events:
        return None
    main = max(events, key=lambda e: e.dlp_mgy_cm or 0.0)
    return max(s.kvp_kv for s in main.sources if s.kvp_kv)


def _body(stored: Stored | None) -> dict[str, Any]:
    return orjson.loads(stored.body) if stored is not None and stored.body else {}


def _sop_uids(summary: dict[str, Any]) -> set[str]:
    return {str(i["value"]).removeprefix("urn:oid:") for i in summary.get("identifier", [])}


def _event_uid(event: dict[str, Any]) -> str:
    return str(event["identifier"][0]["value"]).removeprefix("urn:oid:")
