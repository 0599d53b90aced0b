"""Numbers no examination can have (issue 23): a CT RDSR whose CTDIvol values read NaN, -0.001
and 1e308 mGy. The Observations stay valid FHIR (NaN: no value, dataAbsentReason not-a-number;
the others kept as sent, flagged by the reader's finding), and none of the three becomes a dose
fact, so statistics stay finite."""

from __future__ import annotations

import math
import warnings
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson
from pydicom import Dataset, dcmread

from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.store.port import Store
from tests.dicom.conftest import SIEMENS_CT

QUALITY_TAG_QUERY = "https://kerma.example.org/fhir/CodeSystem/dose-quality|plausibility-warning"


def _ctdivol_items(items: Any, found: list[Dataset]) -> list[Dataset]:
    for item in items:
        names = item.get("ConceptNameCodeSequence") or [Dataset()]
        if names[0].get("CodeValue") == "113830" and "MeasuredValueSequence" in item:
            found.append(item.MeasuredValueSequence[0])
        _ctdivol_items(item.get("ContentSequence") or [], found)
    return found


def test_nan_negative_and_huge_values_are_no_facts(
    settings: Settings, store: Store, service: FhirService
) -> None:
    dataset = dcmread(SIEMENS_CT)
    first, second, third, _plausible = _ctdivol_items(dataset.ContentSequence, [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom: "NaN" is not a valid DS
        first.NumericValue, second.NumericValue, third.NumericValue = "NaN", "-0.001", "1e308"
    data = BytesIO()
    dataset.save_as(data)
    assert (
        build_ingestor(store, settings).ingest_bytes(data.getvalue(), "mutated.dcm").status
        == "ingested"
    )

    components = []
    for stored in service.search("Observation", [("code", "113852")]).matches:
        body = orjson.loads(stored.body or b"")
        components += [c for c in body["component"] if c["code"]["coding"][0]["code"] == "113830"]
    values = sorted((c.get("valueQuantity") or {}).get("value", math.inf) for c in components)
    assert values == [-0.001, 9.91, 1e308, math.inf]  # inf: the NaN one has no value
    [absent] = [c for c in components if "valueQuantity" not in c]
    assert absent["dataAbsentReason"]["coding"][0]["code"] == "not-a-number"

    event_ctdivol = sorted(f.ctdivol_mgy for f in store.facts() if f.level == "event"
                           if f.ctdivol_mgy is not None)  # fmt: skip
    assert event_ctdivol == [9.91]  # the file's fourth value, the only plausible one
    assert all(f.ctdivol_mgy is None or math.isfinite(f.ctdivol_mgy) for f in store.facts())


def _number_items(items: Any, code: str, found: list[Dataset]) -> list[Dataset]:
    for item in items:
        names = item.get("ConceptNameCodeSequence") or [Dataset()]
        if names[0].get("CodeValue") == code and "MeasuredValueSequence" in item:
            found.append(item.MeasuredValueSequence[0])
        _number_items(item.get("ContentSequence") or [], code, found)
    return found


def test_a_count_beyond_64_bits_is_an_error_value_not_a_crash(
    settings: Settings, store: Store, service: FhirService
) -> None:
    dataset = dcmread(SIEMENS_CT)
    for item in _number_items(dataset.ContentSequence, "113823", []):  # Number of X-Ray Sources
        item.NumericValue = str(2**70)
    data = BytesIO()
    dataset.save_as(data)
    result = build_ingestor(store, settings).ingest_bytes(data.getvalue(), "huge-count.dcm")
    assert result.status == "ingested"
    stored = service.search("Observation", [("code", "113852")]).matches
    sources = [c for s in stored for c in orjson.loads(s.body or b"")["component"]
               if c["code"]["coding"][0]["code"] == "113823"]  # fmt: skip
    assert sources and all(c["dataAbsentReason"]["coding"][0]["code"] == "error" for c in sources)


def test_a_file_that_breaks_the_pipeline_is_quarantined_and_the_batch_goes_on(
    settings: Settings, store: Store, tmp_path: Any
) -> None:
    from server.ingest.batch import ingest_files

    ingestor = build_ingestor(store, settings)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(SIEMENS_CT.read_bytes())
    original = ingestor.ingest_file

    def failing(path: Any) -> Any:
        if path == bad:
            raise TypeError("Integer exceeds 64-bit range")  # as orjson said of a huge count
        return original(path)

    ingestor.ingest_file = failing  # type: ignore[method-assign]
    results: list[Any] = []
    ingest_files(ingestor, [bad, SIEMENS_CT], 1, lambda path, result: results.append(result))
    assert [r.status for r in results] == ["quarantined", "ingested"]
    assert results[0].reason == "processing failed: TypeError: Integer exceeds 64-bit range"
    [kept] = ingestor.quarantine.items()
    assert kept.name == "bad.dcm" and kept.reason == results[0].reason


def test_an_impossible_value_raises_no_alert(
    tmp_path: Path, store: Store, service: FhirService
) -> None:
    """DRL checks and alert rules compare plausible values only: a CTDIvol of 1e308 mGy was an
    examination 'above the DRL' and a significant event (issue 23)."""
    settings = Settings(
        data_dir=tmp_path, drl_sets="UKHSA GB 2022", alert_rules="de_strlschv_annex14"
    )
    dataset = dcmread(SIEMENS_CT)
    for item in _ctdivol_items(dataset.ContentSequence, []):
        item.NumericValue = "1e308"
    data = BytesIO()
    dataset.save_as(data)
    assert (
        build_ingestor(store, settings).ingest_bytes(data.getvalue(), "huge.dcm").status
        == "ingested"
    )
    details = [
        orjson.loads(s.body or b"")["detail"] for s in service.search("DetectedIssue", []).matches
    ]
    assert not [d for d in details if "CTDIvol" in d], details
    flagged = service.search("Observation", [("_tag", QUALITY_TAG_QUERY)]).matches
    assert flagged  # what was set aside is shown: the summary carries the reader's findings
