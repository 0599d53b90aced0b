"""What sites send that Kerma read wrong (issue 20): a value reported as 0 is a value (an RF
RDSR whose first event says Average X-Ray Tube Current 0 mA keeps 0 mA, where Kerma took the
mean of the per-pulse currents), and a vendor's neighbouring code is read as the concept meant."""

from __future__ import annotations

import io
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sr._concepts_dict import concepts

from server.dicom.read import Read, read_dicom
from server.dose.classify import Exam
from server.mappings import classification_rules, code_aliases, unit_table
from tests.dicom.conftest import SIEMENS_CT

GE_RF = SIEMENS_CT.parent / "RF-RDSR-GE.dcm"
MG = SIEMENS_CT.parent / "MG-RDSR-GEPristina-2D.dcm"
DX_IMAGE = SIEMENS_CT.parent / "DX-Im-DRGEM.dcm"
AVERAGE_CURRENT, EVENT = "113767", "113706"


def _items(items: Any, code: str) -> list[Any]:
    found = []
    for item in items:
        name = item.get("ConceptNameCodeSequence")
        if name and name[0].CodeValue == code:
            found.append(item)
        if "ContentSequence" in item:
            found += _items(item.ContentSequence, code)
    return found


def test_a_reported_zero_average_tube_current_is_kept() -> None:
    ds = dcmread(GE_RF)
    first = _items(ds.ContentSequence, EVENT)[0]
    [average] = _items(first.ContentSequence, AVERAGE_CURRENT)
    sent = float(average.MeasuredValueSequence[0].NumericValue)
    as_sent = read_dicom(GE_RF, unit_table())
    assert (
        isinstance(as_sent, Read)
        and as_sent.report.projection_events[0].average_tube_current_ma == sent
    )
    average.MeasuredValueSequence[0].NumericValue = "0"
    data = io.BytesIO()
    ds.save_as(data)
    zero = read_dicom(data.getvalue(), unit_table())
    assert isinstance(zero, Read)
    assert zero.report.projection_events[0].average_tube_current_ma == 0.0


def test_a_neighbouring_code_is_read_as_the_concept_meant() -> None:
    """An MG RDSR whose Anode Target Material is coded 113632 (no DICOM code) keeps its anode
    target as when coded 111632; every alias names a written code DICOM does not define (or a
    private one) and a standard DICOM code."""
    defined = {code for codes in concepts["DCM"].values() for code in codes}
    for (scheme, written), (standard_scheme, standard) in code_aliases().items():
        assert scheme != "DCM" or written not in defined
        assert standard_scheme == "DCM" and standard in defined
    ds = dcmread(MG)
    anodes = _items(ds.ContentSequence, "111632")
    assert anodes
    as_sent = read_dicom(MG, unit_table())
    assert isinstance(as_sent, Read)
    expected = [e.anode_target for e in as_sent.report.projection_events]
    assert all(expected)
    for item in anodes:
        item.ConceptNameCodeSequence[0].CodeValue = "113632"
    data = io.BytesIO()
    ds.save_as(data)
    aliased = read_dicom(data.getvalue(), unit_table())
    assert isinstance(aliased, Read)
    assert [e.anode_target for e in aliased.report.projection_events] == expected


def test_the_anatomic_region_sequence_when_body_part_examined_is_empty() -> None:
    """A radiograph whose header names its region only as a code (Anatomic Region Sequence,
    SCT 51185008 Chest): the region is that code, and the acquisition rules read "Chest"."""
    ds = dcmread(DX_IMAGE)
    if "BodyPartExamined" in ds:
        del ds.BodyPartExamined
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = "51185008", "SCT", "Chest"
    ds.AnatomicRegionSequence = [region]
    data = io.BytesIO()
    ds.save_as(data)
    read = read_dicom(data.getvalue(), unit_table())
    assert isinstance(read, Read)
    [event] = read.report.projection_events
    assert event.target_region is not None
    assert (event.target_region.value, event.target_region.meaning) == ("51185008", "Chest")


def test_a_philips_private_table_height_is_the_table_height() -> None:
    """The Allura Xper gives its table height only as Philips' private item 021 (890 mm); the
    Azurion gives it twice, the standard 113753 and the private item, with the same value."""
    allura = read_dicom(SIEMENS_CT.parent / "RF-Pat-Orientation-Modifier-Missing.dcm", unit_table())
    azurion = read_dicom(SIEMENS_CT.parent / "RF-RDSR-Philips_Azurion.dcm", unit_table())
    assert isinstance(allura, Read) and isinstance(azurion, Read)
    assert allura.report.projection_events[0].table_height_mm == 890.0
    assert azurion.report.projection_events[0].table_height_mm == 935.0


def test_a_mammography_secondary_capture_with_dose_in_its_header_is_read() -> None:
    """A flat-field QA exposure a mammography unit saved as a secondary capture, its dose in
    the header (here the GE Senographe image's, 29 kV, AGD 0.01373 dGy): read as the image it
    is, not skipped; the rules recognise it as QA by its name."""
    ds = dcmread(SIEMENS_CT.parent / "MG-Im-GE-SenDS-scaled.dcm")
    as_image = read_dicom(SIEMENS_CT.parent / "MG-Im-GE-SenDS-scaled.dcm", unit_table())
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.ProtocolName = "FLAT FIELD"
    data = io.BytesIO()
    ds.save_as(data)
    capture = read_dicom(data.getvalue(), unit_table())
    assert isinstance(capture, Read) and isinstance(as_image, Read)
    [event] = capture.report.projection_events
    [image_event] = as_image.report.projection_events
    assert (event.kvp_kv, event.agd_mgy) == (29.0, image_event.agd_mgy) != (None, None)
    assert capture.report.modality == "MG"
    found = classification_rules().classify(Exam("MG", protocols=("FLAT FIELD",)))
    assert found is not None and (found.rule, found.procedure) == ("qa", None)


def test_examination_times_no_clock_can_give_are_set_aside() -> None:
    """The GE RF RDSR with its Study Date a placeholder (9999-12-31) and its first event
    started 1899-12-30: neither is used (the study's date falls back to the start of
    irradiation), both are findings, and the doses are as sent."""
    ds = dcmread(GE_RF)
    as_sent = read_dicom(GE_RF, unit_table())
    ds.StudyDate = "99991231"
    first = _items(ds.ContentSequence, EVENT)[0]
    [started] = _items(first.ContentSequence, "111526")  # DateTime Started
    started.DateTime = "18991230000000"
    data = io.BytesIO()
    ds.save_as(data)
    read = read_dicom(data.getvalue(), unit_table())
    assert isinstance(read, Read) and isinstance(as_sent, Read)
    report, sent = read.report, as_sent.report
    assert report.study.started is None and sent.study.started is not None
    assert report.irradiation_start == sent.irradiation_start  # none given: the events date it
    events, sent_events = report.projection_events, sent.projection_events
    assert events[0].started is None and events[1].started == sent_events[1].started is not None
    assert [e.dap_gy_m2 for e in events] == [e.dap_gy_m2 for e in sent_events]
    said = [f.message for f in report.findings if f.code == "implausible-time"]
    assert said == [
        "study date 9999-12-31 is a placeholder or a clock error: not used",
        "1 irradiation event dated 1899-12-30 is a placeholder or a clock error: its time not used",
    ]
