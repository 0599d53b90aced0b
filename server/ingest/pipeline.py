"""One received object -> dose report -> FHIR resources, in stages: read (server/dicom),
calculate (calculate.py: SSDE, the skin dose map; outside the store's write lock), then write
in one store transaction (study, events, summary, calculated values, dose facts, the level
checks, provenance), holding the lock only for the writes.

Idempotent: an object seen before (its SOP Instance UID is on the study's dose summary) is a
no-op; a second RDSR of the same study adds only events whose Irradiation Event UID is new and
recomputes the study's totals over all its events. What cannot be read goes to quarantine
with its reason; nothing received is dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import orjson
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info

from server.alerts import issues
from server.calculated import observations as calculated
from server.dicom.read import Outcome, Read, Skipped, Unreadable, read_dicom
from server.dose import drl
from server.dose.classify import modality_group
from server.dose.effective import effective_dose, effective_dose_by_acquisition
from server.dose.model import CtEvent, DoseReport, Equipment, ProjectionEvent
from server.dose.units import UnitTable
from server.fhir import acquisitions, conformance, mapping
from server.fhir.facts import study_facts
from server.fhir.service import FhirService
from server.fhir.values import instant
from server.ingest.calculate import Calculated, calculate
from server.ingest.checks import LevelChecks
from server.ingest.quarantine import Quarantine
from server.logs import log_event
from server.mappings import k_factor_regions, k_factors
from server.metrics import INGEST_SECONDS, INGESTED
from server.notify import routing
from server.orders.requests import Orders
from server.outbound.plan import Plan
from server.outbound.queue import queue_forwards, queue_study
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
    warned: str = ""  # the library warnings reading it raised, summed up (kerma ingest)


class Ingestor:
    def __init__(
        self,
        service: FhirService,
        units: UnitTable,
        ctx: mapping.Context,
        quarantine: Quarantine,
        levels: SiteTables | None = None,
        own_ae_titles: frozenset[str] = frozenset(),
        outbound: Plan | None = None,
    ) -> None:
        self._service = service
        self._units = units
        self._ctx = ctx
        self.quarantine = quarantine
        self._levels = levels  # the DRLs and alert levels of the site, None: compare with none
        # calling AE titles that are not a modality's: Kerma's own (C-GET) and the PACS's
        self._own_ae_titles = own_ae_titles
        self._outbound = outbound or Plan((), Path())  # where the dose goes out to
        self._devices: dict[str, str] = {}

    def store_answers(self) -> bool:
        try:
            self._service.store.ping()
        except Exception:  # whatever the driver raises: the store is not there
            return False
        return True

    def ingest_file(self, path: Path) -> Result:
        return self.ingest_bytes(path.read_bytes(), path.name)

    @INGEST_SECONDS.time()
    def ingest_spooled(self, path: Path) -> Result:
        """An object Kerma's SCP received: the calling AE title it came from (written to the
        file meta as Source Application Entity Title) is the sending device's, unless it is
        Kerma's own or the PACS's. A file from elsewhere says nothing Kerma can trust of it."""
        data = path.read_bytes()
        try:
            sender = str(
                read_file_meta_info(path).get("SourceApplicationEntityTitle") or ""
            ).strip()
        except (InvalidDicomError, OSError, ValueError):
            sender = ""  # no file meta: the reader decides what the object is
        outcome = read_dicom(data, self._units)
        if sender and sender not in self._own_ae_titles and isinstance(outcome, Read):
            equipment = replace(outcome.report.equipment, ae_title=sender)
            outcome = replace(outcome, report=replace(outcome.report, equipment=equipment))
        return self.ingest_outcome(outcome, lambda: data, path.name)

    @INGEST_SECONDS.time()
    def ingest_bytes(self, data: bytes, name: str, quarantine: bool = True) -> Result:
        """`quarantine=False` when the bytes come from quarantine already (reprocessing)."""
        return self.ingest_outcome(read_dicom(data, self._units), lambda: data, name, quarantine)

    def ingest_outcome(
        self, outcome: Outcome, data: Callable[[], bytes], name: str, quarantine: bool = True
    ) -> Result:
        """Store what reading an object gave; `data` gives its bytes, needed only for quarantine."""
        result = self._outcome(outcome, data, name, quarantine)
        INGESTED.labels(result.modality or "unknown", result.status).inc()
        return result

    def _outcome(
        self, outcome: Outcome, data: Callable[[], bytes], name: str, quarantine: bool
    ) -> Result:
        if isinstance(outcome, Unreadable):
            if quarantine:
                where = self.quarantine.put(data(), name, outcome.reason)
                log_event(log, "quarantined", object=name, reason=outcome.reason, file=where.name)
            return Result("quarantined", name, reason=outcome.reason)
        if isinstance(outcome, Skipped):
            log_event(log, "skipped", object=name, reason=outcome.reason)
            return Result("skipped", name, reason=outcome.reason)
        return self.store_report(outcome.report, name, data)

    def store_report(
        self, report: DoseReport, name: str, data: Callable[[], bytes] | None = None
    ) -> Result:
        """Store a report read from an object (`data`: its bytes, for forwarding)."""
        ctx = self._levels.context(self._ctx) if self._levels else self._ctx
        found = calculate(report, self._service, ctx)
        try:
            with self._service.store.transaction() as tx:
                commit = _Commit(self._service, ctx, tx, report, name, self._devices)
                result = commit.run(found, self._outbound, data)
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

    def run(
        self, found: Calculated, outbound: Plan, data: Callable[[], bytes] | None = None
    ) -> Result:
        """The write stages, in order; each returns what the next ones need."""
        report = self.report
        study_stored = self._find(
            "ImagingStudy", [("identifier", f"urn:dicom:uid|urn:oid:{report.study.study_uid}")]
        )
        summary_stored = self._summary(study_stored)
        previous = _body(summary_stored) if summary_stored else None
        done = self._seen_before(study_stored, previous)
        if done is not None:
            return done
        patient_ref = self._patient()
        study, study_ref = self._write_study(patient_ref, study_stored)
        events = self._write_events(patient_ref, study, study_stored, previous)
        summary = self._write_summary(events, previous, summary_stored)
        values, calculated_refs = self._write_calculated(study, summary, events.all, found)
        measured = self._body_measurements(patient_ref, study_ref) if summary_stored is None else []
        self._project_facts(study, summary, events.all)
        where = issues.Refs(
            patient_ref,
            study_ref,
            f"Observation/{summary['id']}",
            summary.get("device", {}).get("reference"),
            modality_group(report.modality),
            report.equipment.department or "",
        )
        checks = LevelChecks(report, self.ctx, self.service.store)
        raised = self._raise_issues(checks.found(study, summary, where, events.all, values))
        routing.queue(self.service, self.tx, raised)
        queue_study(self.service, self.tx, outbound, study_ref, patient_ref, summary)
        if data is not None and self._forwarded(outbound):
            sop_uid = report.source.sop_instance_uid
            queue_forwards(
                self.service, self.tx, outbound, (study_ref, patient_ref), sop_uid, data()
            )
        targets = [study_ref, f"Observation/{summary['id']}", *measured, *calculated_refs,
                   *(f"Observation/{e['id']}" for e in events.added), *raised]  # fmt: skip
        self._provenance(report, targets, events.superseded, events.replaced_kind)
        return Result(
            "ingested", self.name, report.modality, events_added=len(events.added), study=study_ref
        )

    def _forwarded(self, outbound: Plan) -> bool:
        """Whether this object goes to the forwarding destinations: a dose report (RDSR) of
        a device the site forwards (KERMA_FORWARD_FROM, empty: every device)."""
        sender = self.report.equipment.ae_title or ""
        return self.report.source.kind == "rdsr" and (
            not outbound.forward_from or sender in outbound.forward_from
        )

    def _seen_before(self, study: Stored | None, previous: dict[str, Any] | None) -> Result | None:
        """The result when the study already holds this object, or values of a better source."""
        report = self.report
        if previous is None or study is None:
            return None
        if report.source.sop_instance_uid in _sop_uids(previous):
            return Result(
                "duplicate", self.name, report.modality, study=f"ImagingStudy/{study.rid}"
            )
        stored_kind = _source_kind(previous) or "rdsr"
        if _RANK[stored_kind] > _RANK[report.source.kind]:
            reason = f"the study has dose values from {_NAMES[stored_kind]}; {_NAMES[report.source.kind]} add nothing"
            return Result("skipped", self.name, report.modality, reason=reason)
        return None

    def _write_study(
        self, patient_ref: str | None, stored: Stored | None
    ) -> tuple[dict[str, Any], str]:
        """The ImagingStudy with this object's series, tied to its order when one came first."""
        study: dict[str, Any] = dict(
            mapping.imaging_study(
                self.report, self.ctx, patient_ref, _body(stored) if stored else None
            )
        )
        study_ref = self._save("ImagingStudy", study, stored)
        if "basedOn" not in study:
            saved = self.tx.read("ImagingStudy", study_ref.split("/")[1])
            if saved is not None:
                Orders(self.service, self.ctx).link_study(self.tx, saved)
        return study, study_ref

    def _write_events(
        self,
        patient_ref: str | None,
        study: dict[str, Any],
        study_stored: Stored | None,
        previous: dict[str, Any] | None,
    ) -> _Events:
        """The report's new events beside the stored ones; a better source supersedes the
        stored events (they go, the Provenance keeps both)."""
        study_ref = f"ImagingStudy/{study['id']}"
        stored = self._events(study_ref) if study_stored is not None else []
        replaced_kind = _source_kind(previous) if previous is not None else None
        superseded: list[str] = []
        supersedes = (
            previous is not None and _RANK[replaced_kind or "rdsr"] < _RANK[self.report.source.kind]
        )
        if supersedes:
            superseded = [f"Observation/{e['id']}" for e in stored]
            for event in stored:
                self.service.delete_in(self.tx, "Observation", event["id"])
            stored = []
        known = {_event_uid(e): e for e in stored}
        added, device = self._add_events(patient_ref, study, known)
        every = sorted(
            [*stored, *added], key=lambda e: (e.get("effectiveDateTime", ""), _event_uid(e))
        )
        refs = mapping.Refs(patient_ref, device, study_ref, self._performer())
        return _Events(added, every, refs, supersedes, superseded, replaced_kind)

    def _write_summary(
        self, events: _Events, previous: dict[str, Any] | None, stored: Stored | None
    ) -> dict[str, Any]:
        """The study's dose summary over all its events (a superseded source's totals do not
        add to the new ones)."""
        report = self.report
        if previous is not None and events.supersedes:
            previous = {**previous, "component": []}
        sop_uids = {*_sop_uids(previous or {}), report.source.sop_instance_uid}
        build = mapping.ct_summary if report.kind == "ct" else mapping.projection_summary
        built = dict(build(report, self.ctx, events.refs, events.all, sop_uids, previous))
        summary = mapping.mark_reading(built, report, "ct_totals.")
        summary = conformance.claimed(summary, mapping.RDS_PROFILE)
        self._save("Observation", summary, stored)
        return summary

    def _write_calculated(
        self,
        study: dict[str, Any],
        summary: dict[str, Any],
        events: list[dict[str, Any]],
        found: Calculated,
    ) -> tuple[list[drl.Value], list[str]]:
        """The calculated Observations (effective dose, SSDE, peak skin dose), and the values
        among them the alert rules compare (the peak skin dose)."""
        refs = [*self._effective_dose(study, summary, events), *self._ssde(events, found)]
        values: list[drl.Value] = []
        skin = found.skin
        if skin is not None:
            if skin.unfit is None:
                psd_mgy = skin.peak_skin_dose_gy * 1000
                values.append(drl.Value(calculated.PEAK_SKIN_DOSE, "examination", psd_mgy))
            made = calculated.skin_dose_observation(skin, summary, self.report.study.study_uid)
            refs += self._save_calculated(made, summary, calculated.skin_dose_agent(skin))
        return values, refs

    def _raise_issues(self, found: list[dict[str, Any]]) -> list[str]:
        """Store the DetectedIssues not raised before (each has the identifier that finds it)."""
        return [
            self._save("DetectedIssue", issue, None)
            for issue in found
            if not self._find("DetectedIssue", [("identifier", issues.issue_identifier(issue))])
        ]

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
            resource: dict[str, Any]  # the typed Observation, from here on a stored body
            if isinstance(event, CtEvent):
                index = report.ct_events.index(event)
                resource = mapping.mark_reading(dict(mapping.ct_event(event, report, self.ctx, refs)),
                                                report, f"ct_events[{index}].")  # fmt: skip
            else:
                resource = dict(mapping.projection_event(event, report, self.ctx, refs))
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

    def _effective_dose(
        self, study: dict[str, Any], summary: dict[str, Any], events: list[dict[str, Any]]
    ) -> list[str]:
        """E = k x DLP total as its own Observation with its Provenance (H4), unless the
        device reported E (its value wins); per acquisition when the examination's procedure
        has no k-factor region or it has none."""
        report = self.report
        if report.kind != "ct" or _reports_effective_dose(report):
            return []
        dlp = mapping.component_value(summary, "113813")
        procedure = mapping.classification_of(study, self.ctx).code
        region = k_factor_regions().get(procedure)
        if region is None:
            why = f"is {procedure}, of no one region" if procedure else "has no standard procedure"
            return self._effective_dose_by_acquisition(events, summary, why)
        estimate = (
            effective_dose(dlp, region, report.patient.age_years, _main_kvp(report), k_factors())
            if dlp is not None
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

    def _effective_dose_by_acquisition(
        self, events: list[dict[str, Any]], summary: dict[str, Any], why: str
    ) -> list[str]:
        """E of an examination without a k-factor region (`why`: what its procedure is) whose
        acquisitions all have one."""
        found = acquisitions.acquisition_doses(events, k_factor_regions())
        estimate = (
            effective_dose_by_acquisition(*found, self.report.patient.age_years, k_factors())
            if found
            else None
        )
        if estimate is None:
            return []
        observation = calculated.effective_dose_by_acquisition_observation(
            estimate, summary, self.report.study.study_uid, why
        )
        agent = calculated.effective_dose_by_acquisition_agent(estimate, why)
        return self._save_calculated(observation, summary, agent)

    def _ssde(self, events: list[dict[str, Any]], found: Calculated) -> list[str]:
        """The SSDE estimates of the stored CT acquisitions, each derived from its event."""
        stored = {_event_uid(e): e for e in events}
        refs: list[str] = []
        for uid, estimate in found.ssde.items():
            event = stored.get(uid)
            if event is not None:
                made = calculated.ssde_observation(
                    estimate, event, uid, self.report.patient.age_years
                )
                refs += self._save_calculated(made, event, calculated.ssde_agent(estimate))
        return refs

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
            refs.append(self._save("Observation", dict(resource), None))
        return refs

    def _patient(self) -> str:
        """The report's patient, or the study's unidentified patient when it names none."""
        ident = mapping.patient_identifier(self.report, self.ctx)
        made = mapping.patient(self.report, self.ctx) if ident else mapping.unidentified_patient(
            self.report)  # fmt: skip
        key = f"{ident[0]}|{ident[1]}" if ident else (
            f"{made['identifier'][0]['system']}|{made['identifier'][0]['value']}")  # fmt: skip
        found = patients.current(self.service.all_in(self.tx, "Patient", [("identifier", key)]))
        if found is not None:
            return f"Patient/{found.rid}"
        return self._save("Patient", dict(made), None)

    def _performer(self) -> str:
        """The Practitioner who authorized the irradiation (the first the report names), or the
        one that says the report names none; found again by name and ID."""
        person = next((p for p in self.report.participants if p.role == "authorizing"), None)
        made = mapping.practitioner(person)
        found = self._find("Practitioner", [("identifier", mapping.practitioner_key(made))])
        return (
            f"Practitioner/{found.rid}" if found else self._save("Practitioner", dict(made), None)
        )

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
                ae_title=main.ae_title,  # the system that sent it
            )
        key = mapping.device_key(equipment)
        cached = self.devices.get(key)
        if cached:
            return cached
        found = self._find("Device", [("identifier", f"{mapping.KERMA_DEVICE_KEY}|{key}")])
        if found is not None:
            self._learn_ae_title(found, equipment.ae_title)
            ref = f"Device/{found.rid}"
        else:
            made = dict(mapping.device(equipment, main.modality or self.report.modality))
            ref = self._save("Device", conformance.claimed(made, mapping.DEVICE_PROFILE), None)
        self.devices[key] = ref
        return ref

    def _learn_ae_title(self, stored: Stored, title: str | None) -> None:
        """A device seen sending from an AE title keeps it (the IG's Device profile needs it)."""
        device = _body(stored)
        kept = [
            i for i in device.get("identifier", []) if i.get("system") != mapping.AE_TITLE_SYSTEM
        ]
        if title is None or len(kept) < len(device.get("identifier", [])):
            return  # nothing new, or an AE title known already (registered, or seen before)
        device["identifier"] = [*kept, mapping.ae_title_identifier(title)]
        device = conformance.claimed(device, mapping.DEVICE_PROFILE)
        self.service.update_in(self.tx, "Device", stored.rid, device, trusted=True)

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


@dataclass(frozen=True)
class _Events:
    """The events stage's result: what it added, all the study's events in time order, the
    summary's references, and what a better source superseded."""

    added: list[dict[str, Any]]
    all: list[dict[str, Any]]
    refs: mapping.Refs
    supersedes: bool  # this report's source is better than the stored one's
    superseded: list[str]
    replaced_kind: str | None


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
