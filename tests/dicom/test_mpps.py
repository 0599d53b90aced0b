"""MPPS over loopback with a pynetdicom SCU: N-CREATE, N-SET, the dose report a finished step
gives, and what an RDSR of the same study does to it.

The messages carry the attributes PS3.4 F.7.2 lists for N-CREATE (Performed Procedure Step
Relationship, Information and Image Acquisition Results modules; type 2 attributes present,
empty when unknown) and for N-SET (status, end, performed series, Radiation Dose module).
"""

from __future__ import annotations

from typing import Any

import orjson
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt

from server.dicom.mpps import MPPS_CLASS
from server.dicom.mpps_scp import encode
from server.dicom.read import Read, Unreadable, read_dicom
from server.dicom.status import ERROR_ID_NO_LONGER_UPDATABLE, Status
from server.dicom.transport import NO_DELAY
from server.fhir import FhirService
from server.mappings import unit_table
from server.network import DicomListener
from tests.dicom.conftest import SIEMENS_CT, Connect, summary_of, wait_until

QUALITY = "https://kerma.example.org/fhir/CodeSystem/dose-quality"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def n_create_attributes(study_uid: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    scheduled = Dataset()
    scheduled.StudyInstanceUID = study_uid
    scheduled.ReferencedStudySequence = []
    scheduled.AccessionNumber = "ACC-MPPS-1"
    scheduled.RequestedProcedureID = "RP1"
    scheduled.RequestedProcedureDescription = "CT THORAX"
    scheduled.ScheduledProcedureStepID = "SPS1"
    scheduled.ScheduledProcedureStepDescription = ""
    scheduled.ScheduledProtocolCodeSequence = []
    ds.ScheduledStepAttributesSequence = [scheduled]
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MPPS-PAT-1"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "F"
    ds.ReferencedPatientSequence = []
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = f"{modality}_ROOM_1"
    ds.PerformedStationName = f"{modality} ROOM 1"
    ds.PerformedLocation = "Radiology"
    ds.PerformedProcedureStepStartDate = "20261126"
    ds.PerformedProcedureStepStartTime = "101500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = "Thorax"
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = []
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = modality
    ds.StudyID = "1"
    ds.PerformedProtocolCodeSequence = []
    ds.PerformedSeriesSequence = []
    return ds


def n_set_ct(status: str = "COMPLETED") -> Dataset:
    ds = _n_set_base(status)
    exposures = []
    for ctdivol, ms in ((12.5, 4200.0), (8.25, 1800.0)):
        item = Dataset()
        item.CTDIvol = ctdivol
        item.ExposureTimeInms = ms
        item.XRayTubeCurrentInmA = 220.0
        item.CTDIPhantomTypeCodeSequence = [_code("113691", "DCM", "IEC Body Dosimetry Phantom")]
        exposures.append(item)
    ds.CTExposureSequence = exposures
    ds.CommentsOnRadiationDose = "Total DLP: 512.3 mGy*cm"
    return ds


def n_set_fluoro(status: str = "COMPLETED") -> Dataset:
    ds = _n_set_base(status)
    ds.TotalTimeOfFluoroscopy = 95
    ds.TotalNumberOfExposures = 12
    ds.DistanceSourceToDetector = "1100"
    ds.DistanceSourceToEntrance = "700"
    ds.EntranceDoseInmGy = "45.6"
    ds.ImageAndFluoroscopyAreaDoseProduct = "1234.5"  # dGy.cm2
    ds.CommentsOnRadiationDose = ""
    fluoro, run = Dataset(), Dataset()
    fluoro.RadiationMode, fluoro.KVP, fluoro.XRayTubeCurrentInuA = "CONTINUOUS", "72", "3500"
    fluoro.ExposureTime = "95000"
    run.KVP, run.XRayTubeCurrentInuA, run.ExposureTime = "81", "250000", "120"
    ds.ExposureDoseSequence = [fluoro, run]
    return ds


def _n_set_base(status: str) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20261126"
    ds.PerformedProcedureStepEndTime = "103000"
    series = Dataset()
    series.PerformingPhysicianName = ""
    series.ProtocolName = "Thorax"
    series.OperatorsName = "Tech^One"
    series.SeriesInstanceUID = generate_uid()
    series.SeriesDescription = "Thorax 1.0"
    series.RetrieveAETitle = ""
    series.ReferencedImageSequence = []
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    ds.PerformedSeriesSequence = [series]
    return ds


def _mpps(connect: Connect) -> Any:
    return connect(ae_title="CT_ROOM_1", contexts=[MPPS_CLASS])


def _value(resource: dict[str, Any], code: str) -> Any:
    for c in resource["component"]:
        if c["code"]["coding"][0]["code"] == code:
            return c.get("valueQuantity", {}).get("value", c.get("valueInteger"))
    return None


def _events(service: FhirService, summary: dict[str, Any]) -> list[dict[str, Any]]:
    study = summary["partOf"][0]["reference"]
    found = service.search("Observation", [("part-of", study), ("code", "113852")])
    return [orjson.loads(s.body or b"") for s in found.matches]


def _finish(connect: Connect, study_uid: str, modality: str, changes: Dataset) -> str:
    assoc = _mpps(connect)
    uid = generate_uid()
    status, _ = assoc.send_n_create(n_create_attributes(study_uid, modality), MPPS_CLASS, uid)
    assert status.Status == Status.SUCCESS
    status, _ = assoc.send_n_set(changes, MPPS_CLASS, uid)
    assert status.Status == Status.SUCCESS
    return uid


def test_a_completed_ct_step_becomes_a_dose_report(
    connect: Connect, listener: DicomListener, service: FhirService
) -> None:
    study_uid = generate_uid()
    step = _finish(connect, study_uid, "CT", n_set_ct())
    wait_until(lambda: listener.spool.pending() == [] and service.search("Observation", []).total)
    summary = summary_of(service, study_uid)
    assert summary["meta"]["tag"][0]["code"] == "mpps"
    assert summary["identifier"][0]["value"] == f"urn:oid:{step}"
    assert _value(summary, "113813") == pytest.approx(512.3)  # DLP total, mGy.cm
    events = _events(service, summary)
    assert sorted(_value(e, "113830") for e in events) == [8.25, 12.5]  # CTDIvol, mGy
    assert {_value(e, "113824") for e in events} == {4.2, 1.8}  # exposure time, s
    assert "note" not in summary, summary["note"]


def test_a_completed_fluoroscopy_step_keeps_its_totals(
    connect: Connect, listener: DicomListener, service: FhirService
) -> None:
    study_uid = generate_uid()
    _finish(connect, study_uid, "RF", n_set_fluoro())
    wait_until(lambda: service.search("ImagingStudy", []).total == 1)
    wait_until(lambda: listener.spool.pending() == [])
    summary = summary_of(service, study_uid)
    assert _value(summary, "113722") == pytest.approx(123450.0)  # 1234.5 dGy.cm2 in mGy.cm2
    assert _value(summary, "113730") == 95  # fluoro time, s
    assert _value(summary, "113731") == 12  # exposures
    assert _value(summary, "111636") == pytest.approx(45.6)  # entrance dose, mGy
    events = _events(service, summary)
    assert sorted(_value(e, "113733") for e in events) == [72.0, 81.0]  # kVp
    fluoro = next(e for e in events if _value(e, "113733") == 72.0)
    assert _value(fluoro, "113767") == pytest.approx(3.5)  # average current, uA -> mA
    run = next(e for e in events if _value(e, "113733") == 81.0)
    assert _value(run, "113734") == pytest.approx(250.0)


def test_a_discontinued_step_is_kept_and_flagged(
    connect: Connect, listener: DicomListener, service: FhirService
) -> None:
    study_uid = generate_uid()
    _finish(connect, study_uid, "CT", n_set_ct("DISCONTINUED"))
    wait_until(lambda: service.search("ImagingStudy", []).total == 1)
    wait_until(lambda: listener.spool.pending() == [])
    summary = summary_of(service, study_uid)
    assert {"system": QUALITY, "code": "plausibility-warning"} in summary["meta"]["tag"]
    assert "mpps-discontinued" in summary["note"][0]["text"]
    assert _value(summary, "113813") == pytest.approx(512.3)


def test_a_later_rdsr_supersedes_the_step_and_a_later_step_adds_nothing(
    connect: Connect, listener: DicomListener, service: FhirService
) -> None:
    rdsr = pydicom.dcmread(SIEMENS_CT)
    _finish(connect, rdsr.StudyInstanceUID, "CT", n_set_ct())
    wait_until(lambda: service.search("ImagingStudy", []).total == 1)
    wait_until(lambda: listener.spool.pending() == [])
    assert summary_of(service, rdsr.StudyInstanceUID)["meta"]["tag"][0]["code"] == "mpps"

    assert connect().send_c_store(rdsr).Status == Status.SUCCESS
    wait_until(lambda: listener.spool.pending() == [])
    summary = summary_of(service, rdsr.StudyInstanceUID)
    assert summary["meta"]["tag"][0]["code"] == "rdsr"
    assert _value(summary, "113813") == pytest.approx(724.52, abs=0.005)  # the RDSR's alone
    assert 12.5 not in {_value(e, "113830") for e in _events(service, summary)}
    provenance = service.search("Provenance", [("_count", "100")])
    removals = [
        e["what"]["display"]
        for p in provenance.matches
        for e in orjson.loads(p.body or b"")["entity"]
        if e["role"] == "removal"
    ]
    assert removals and all("(MPPS), superseded by a dose report (RDSR)" in r for r in removals)

    _finish(connect, rdsr.StudyInstanceUID, "CT", n_set_ct())  # a late step changes nothing
    wait_until(lambda: listener.spool.pending() == [])
    assert _value(summary_of(service, rdsr.StudyInstanceUID), "113813") == pytest.approx(
        724.52, abs=0.005
    )


def test_each_protocol_error_gets_its_status(connect: Connect, listener: DicomListener) -> None:
    assoc = _mpps(connect)
    study_uid, uid = generate_uid(), generate_uid()
    status, _ = assoc.send_n_set(n_set_ct(), MPPS_CLASS, uid)
    assert status.Status == Status.NO_SUCH_OBJECT_INSTANCE == 0x0112

    finished = n_create_attributes(study_uid, "CT")
    finished.PerformedProcedureStepStatus = "COMPLETED"
    assert assoc.send_n_create(finished, MPPS_CLASS, uid)[0].Status == 0x0106
    unsaid = n_create_attributes(study_uid, "CT")
    del unsaid.PerformedProcedureStepStatus
    assert assoc.send_n_create(unsaid, MPPS_CLASS, uid)[0].Status == 0x0120

    created = n_create_attributes(study_uid, "CT")
    assert assoc.send_n_create(created, MPPS_CLASS, uid)[0].Status == Status.SUCCESS
    assert (listener.spool.folder.parent / "mpps" / f"{uid}.dcm").exists()  # on disk first
    assert assoc.send_n_create(created, MPPS_CLASS, uid)[0].Status == 0x0111

    progress = Dataset()
    progress.PerformedProcedureStepStatus = "IN PROGRESS"
    progress.PerformedProcedureStepDescription = "Thorax, with contrast"
    assert assoc.send_n_set(progress, MPPS_CLASS, uid)[0].Status == Status.SUCCESS
    assert listener.spool.pending() == []  # not finished: nothing to report yet
    assert assoc.send_n_set(n_set_ct(), MPPS_CLASS, uid)[0].Status == Status.SUCCESS
    status, _ = assoc.send_n_set(n_set_ct(), MPPS_CLASS, uid)
    assert status.Status == 0x0110 and status.ErrorID == ERROR_ID_NO_LONGER_UPDATABLE


def test_the_scp_gives_a_uid_when_the_scu_asks_for_one(listener: DicomListener) -> None:
    responses: list[Dataset] = []

    def keep(event: Any) -> None:  # pynetdicom's SCU does not return the response's UID
        responses.append(event.message.command_set)

    ae = AE(ae_title="CT_ROOM_1")
    ae.add_requested_context(MPPS_CLASS)
    handlers = [NO_DELAY, (evt.EVT_DIMSE_RECV, keep)]
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="KERMA", evt_handlers=handlers)
    status, _ = assoc.send_n_create(n_create_attributes(generate_uid(), "CT"), MPPS_CLASS)
    assoc.release()
    assert status.Status == Status.SUCCESS
    uid = responses[-1].AffectedSOPInstanceUID
    assert uid and (listener.spool.folder.parent / "mpps" / f"{uid}.dcm").exists()


def _finished_step(changes: Dataset, study_uid: str = "1.2.3.4") -> Dataset:
    step = n_create_attributes(study_uid, "CT")
    for element in changes:
        step[element.tag] = element
    return step


def test_a_step_without_a_study_goes_to_quarantine_with_its_reason() -> None:
    step = _finished_step(n_set_ct())
    del step.ScheduledStepAttributesSequence[0].StudyInstanceUID
    outcome = read_dicom(encode(step, generate_uid()), unit_table())
    assert isinstance(outcome, Unreadable)
    assert "without a Study Instance UID" in outcome.reason


@pytest.mark.parametrize(
    ("comment", "dlp_mgy_cm"),
    [
        ("Total DLP: 512.3 mGy*cm", 512.3),
        ("CTDIvol=12.5 mGy; DLP=1234,5", 1234.5),
        ("Event 1 of 2", None),
        ("", None),
    ],
)
def test_dlp_is_read_from_the_comment_when_the_site_pattern_matches(
    comment: str, dlp_mgy_cm: float | None
) -> None:
    changes = n_set_ct()
    changes.CommentsOnRadiationDose = comment
    outcome = read_dicom(encode(_finished_step(changes), generate_uid()), unit_table())
    assert isinstance(outcome, Read)
    assert outcome.report.ct_totals is not None
    assert outcome.report.ct_totals.dlp_total_mgy_cm == dlp_mgy_cm
    assert [e.ctdivol_mgy for e in outcome.report.ct_events] == [12.5, 8.25]
