"""The NHSBSP mammography dose survey (UK): one line per exposure in the NCCPM database's
layout, checked against what OpenREM's tests expect of the same GE file and against the
Hologic RDSR's own values."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest

from server.app import create_app
from server.config import Settings
from server.ingest import build_ingestor
from server.reports.nhsbsp import Exposure, line, nhsbsp_format
from server.store.port import Store
from tests.conftest import Api

DATA = Path(__file__).parent.parent / "data"
CORPUS = DATA / "dicom" / "openrem"
GE, HOLOGIC = "MG-Im-GE-SenDS-scaled.dcm", "MG-RDSR-Hologic_2D.dcm"
PERIOD = "from=2000-01-01&to=2030-01-01"


def _survey(settings: Settings, store: Store, token: str, *names: str) -> list[dict[str, str]]:
    ingestor = build_ingestor(store, settings)
    for name in names:
        assert ingestor.ingest_bytes((CORPUS / name).read_bytes(), name).status == "ingested"
    answer = Api(create_app(settings, store).test_client(), token).get(
        f"/stats/survey/nhsbsp.csv?{PERIOD}"
    )
    assert answer.status_code == 200 and answer.content_type == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


def _openrem(name: str) -> dict[str, Any]:
    """What OpenREM's mammography export test expects of a file's first exposure."""
    facts = json.loads((DATA / "expected" / "openrem_expected.json").read_text())
    return {f["quantity"].split("'")[1]: f["expected"] for f in facts
            if f["file"] == name and f["quantity"].startswith("MG CSV export")}  # fmt: skip


def test_the_survey_of_two_mammography_examinations(
    settings: Settings, store: Store, tokens: dict[str, str]
) -> None:
    lines = _survey(settings, store, tokens["mpe"], HOLOGIC, GE)
    assert list(lines[0]) == list(nhsbsp_format().columns)
    ge = _openrem(GE)
    # the GE examination (2013) first, then the Hologic one (2015): numbered in date order
    assert [(r["Patient number"], r["View code"]) for r in lines] == [
        ("1", "LCC"),
        ("2", "LCC"),
        ("2", "RCC"),
    ]
    first = lines[0]
    assert (ge["Laterality"], ge["View"]) == ("Left", "cranio-caudal")  # LCC
    assert (first["Anode"], first["Filter"]) == (ge["Target"], ge["Filter"]) == ("Rh", "Rh")
    assert float(first["kV"]) == ge["kVp"] and float(first["Thickness"]) == ge["Thickness"]
    assert float(first["mAs"]) == ge["uAs"] / 1000  # 51.8
    assert (first["auto/man"], first["Auto mode"]) == ("AUTO", ge["Mode"])  # AUTOMATIC
    # the Hologic RDSR: tungsten anode, rhodium filter, 28 kV, 43 mm, 90.2 and 88.8 mAs
    hologic = [(r["Anode"], r["Filter"], float(r["kV"]), float(r["Thickness"]), float(r["mAs"]))
               for r in lines[1:]]  # fmt: skip
    assert hologic == [("W", "Rh", 28.0, 43.0, 90.2), ("W", "Rh", 28.0, 43.0, 88.8)]
    header = pydicom.dcmread(CORPUS / HOLOGIC, stop_before_pixels=True)
    assert lines[1]["Age"] == str(int(header.PatientAge[:3])) == "61"  # whole years
    assert {r["Survey number"] for r in lines} == {"1"}  # the physicist sets it


def test_qa_examinations_are_not_in_the_survey(
    settings: Settings, store: Store, tokens: dict[str, str]
) -> None:
    api = Api(create_app(settings, store).test_client(), tokens["mpe"])
    lines = _survey(settings, store, tokens["mpe"], HOLOGIC)
    study = api.get("/fhir/ImagingStudy").get_json()["entry"][0]["resource"]["id"]
    marked = api.post(f"/fhir/ImagingStudy/{study}/$mark-qa", {"resourceType": "Parameters"})
    assert marked.status_code == 200, marked.get_data(as_text=True)
    assert len(lines) == 2 and _survey(settings, store, tokens["mpe"]) == []


def _exposure(**changed: Any) -> Exposure:
    values: dict[str, Any] = {"laterality": "Left", "view": "medio-lateral oblique",
                              "anode": "Molybdenum or Molybdenum compound",
                              "filter": "Molybdenum or Molybdenum compound", "kvp_kv": 27.0,
                              "thickness_mm": 50.0, "exposure_mas": 80.0, "control_mode": "MANUAL",
                              "protocol": "L MLO", "age_years": 55}  # fmt: skip
    return Exposure(**(values | changed))


def test_views_are_coded_and_numbered_and_unwanted_exposures_left_out() -> None:
    fmt, taken = nhsbsp_format(), set[str]()
    first = line(fmt, _exposure(), 3, taken)
    assert first == [
        1,
        3,
        "LOB",
        27.0,
        "Mo",
        "Mo",
        50.0,
        80.0,
        "",
        "MANUAL",
        "MANUAL",
        "",
        55,
        "",
        "",
    ]
    again = line(fmt, _exposure(), 3, taken)  # the same view once more in the examination
    assert again is not None and again[2] == "LOB2"
    assert line(fmt, _exposure(view="cranio-caudal exaggerated laterally", laterality="Right"),
                3, taken)[2] == "RXCCL"  # type: ignore[index]  # fmt: skip
    for unwanted in (_exposure(protocol="Stereo biopsy scout"), _exposure(view="specimen"),
                     _exposure(filter=""), _exposure(laterality="")):  # fmt: skip
        assert line(fmt, unwanted, 3, taken) is None


def _first_event_numbers(path: Path) -> dict[str, list[float]]:
    """The NUM items of an RDSR's first irradiation event (113706), by code, as the file has them."""

    def walk(items: Any) -> Any:
        for item in items:
            if item.ConceptNameCodeSequence[0].CodeValue == "113706":
                return item
            found = walk(getattr(item, "ContentSequence", []))
            if found is not None:
                return found
        return None

    found: dict[str, list[float]] = {}
    for item in walk(pydicom.dcmread(path).ContentSequence).ContentSequence:
        if item.ValueType == "NUM":
            code = item.ConceptNameCodeSequence[0].CodeValue
            element = item.MeasuredValueSequence[0]["NumericValue"]  # one value, or one per pulse
            values = element.value if element.VM > 1 else [element.value]
            found.setdefault(code, []).extend(float(v) for v in values)
    return found


def test_per_pulse_values_and_an_exposure_from_current_and_time(
    settings: Settings, store: Store, tokens: dict[str, str]
) -> None:
    """The GE Pristina RDSR gives kVp and mA per pulse (a pre-pulse and the main pulse) and no
    Exposure (113736): the survey writes the kVp weighted by pulse width, and the mAs the
    pulses delivered (the sum of mA x width)."""
    name = "MG-RDSR-GEPristina-2D.dcm"
    first = _survey(settings, store, tokens["mpe"], name)[0]
    numbers = _first_event_numbers(CORPUS / name)
    kv, ma, width_ms = numbers["113733"], numbers["113734"], numbers["113793"]
    assert "113736" not in numbers and len(kv) == len(ma) == len(width_ms) == 2
    weighted_kv = sum(k * w for k, w in zip(kv, width_ms, strict=True)) / sum(width_ms)
    assert float(first["kV"]) == pytest.approx(weighted_kv, abs=1e-3)  # 34.0, not the pre-pulse
    delivered_mas = sum(m * w for m, w in zip(ma, width_ms, strict=True)) / 1000
    assert float(first["mAs"]) == pytest.approx(delivered_mas, abs=1e-3)  # 17.1
    assert (first["View code"], first["Anode"], first["Filter"]) == ("RCC", "Rh", "Ag")
