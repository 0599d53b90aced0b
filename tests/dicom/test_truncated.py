"""A dose report cut short in transfer, and a header element of the wrong VR (issue 23): pydicom reads what is left without a word,
so 65 truncated reports were stored with events missing and no flag. The reader now walks
the file's elements and sends one that ends inside an element, a sequence or an item to
quarantine with where it was cut."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataelem import DataElement

from server.config import Settings
from server.dicom.read import Read, Unreadable, read_dicom
from server.ingest import build_ingestor
from server.ingest.quarantine import Quarantine
from server.mappings import unit_table
from server.store.port import Store
from tests.dicom.conftest import SIEMENS_CT


@pytest.mark.parametrize("kept", [0.1, 0.5, 0.85, 0.975, 0.999])
def test_a_report_cut_short_is_unreadable(kept: float) -> None:
    raw = SIEMENS_CT.read_bytes()
    outcome = read_dicom(raw[: int(len(raw) * kept)], unit_table())
    assert isinstance(outcome, Unreadable)
    assert "cut short" in outcome.reason and "(0040,A730)" in outcome.reason  # Content Sequence


def test_the_whole_report_reads_and_the_cut_one_goes_to_quarantine(
    settings: Settings, store: Store
) -> None:
    raw = SIEMENS_CT.read_bytes()
    full = read_dicom(raw, unit_table())
    assert isinstance(full, Read) and len(full.report.ct_events) == 4
    result = build_ingestor(store, settings).ingest_bytes(raw[:-629], "cut.dcm")
    assert result.status == "quarantined" and result.reason and "cut short" in result.reason
    [kept] = Quarantine(settings.quarantine_dir).items()
    assert "cut short" in kept.reason
    assert store.facts() == []


def test_a_modality_written_with_another_vr_is_no_modality(
    settings: Settings, store: Store
) -> None:
    """A Modality (CS) written as UL became modality "4294967295" (issue 23)."""
    dataset = dcmread(SIEMENS_CT)
    dataset[0x00080060] = DataElement(0x00080060, "UL", 4294967295)
    data = BytesIO()
    dataset.save_as(data)
    outcome = read_dicom(data.getvalue(), unit_table())
    assert isinstance(outcome, Read)
    assert outcome.report.source.modality is None  # what the header says: nothing usable
    assert outcome.report.modality == "CT"  # what the CT dose report says it is
