"""Quantities given once per pulse keep every value (issue 20): a mammogram's pre-pulse and
main pulse (GE Pristina: two KVP, X-Ray Tube Current and Pulse Width items per event), the
projections of a tomosynthesis event (IMS Giotto: eleven Exposure items), a fluoroscopy event's
multi-valued NumericValue (one value per pulse, 0 for a pulse that did not fire). Each field
holds the summary a physicist reads; every value, the range and the summary reach FHIR; the
expected values are read from the files themselves."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from fhir.resources.R4B.observation import Observation
from pydicom import dcmread

from server.config import Settings
from server.dicom.read import Read, read_dicom
from server.dose.model import ProjectionEvent
from server.ingest import build_ingestor
from server.mappings import unit_table
from server.store.port import Store
from tests.conftest import Api
from tests.dicom.conftest import SIEMENS_CT

OPENREM = SIEMENS_CT.parent
PRISTINA, GIOTTO, GE_RF = (OPENREM / n for n in (
    "MG-RDSR-GEPristina-2D.dcm", "MG-RDSR-Giotto-DBT.dcm", "RF-RDSR-GE.dcm"))  # fmt: skip
EVENT, KVP, CURRENT, WIDTH, EXPOSURE = "113706", "113733", "113734", "113793", "113736"


def _items(items: Any, code: str) -> list[Any]:
    return [i for i in items if i.ConceptNameCodeSequence[0].CodeValue == code]


def _sent(path: Path, code: str, event: int = 0) -> tuple[float, ...]:
    """The values the file gives for a concept of one event, in order."""
    items = _items(dcmread(path).ContentSequence, EVENT)[event].ContentSequence
    return tuple(float(i.MeasuredValueSequence[0].NumericValue) for i in _items(items, code))


def _first_event(path: Path | bytes) -> ProjectionEvent:
    read = read_dicom(path, unit_table())
    assert isinstance(read, Read)
    return read.report.projection_events[0]


def test_a_mammograms_pre_pulse_and_main_pulse() -> None:
    kvp, current, width = (_sent(PRISTINA, c) for c in (KVP, CURRENT, WIDTH))
    assert (kvp, current, width) == ((34.1, 33.99), (2.0, 30.48), (51.44, 558.06))
    event = _first_event(PRISTINA)
    assert {p.field: p.values for p in event.per_pulse} == {
        "kvp_kv": kvp, "tube_current_ma": current, "pulse_width_ms": width}  # fmt: skip
    # the current of the exposure: mAs over time, not the 2 mA pre-pulse (read before)
    mas = math.fsum(i * t for i, t in zip(current, width, strict=True))
    assert event.tube_current_ma == round(mas / sum(width), 4) == 28.0764
    assert event.average_tube_current_ma == event.tube_current_ma  # the file gives no average
    assert event.kvp_kv == 33.9993  # weighted by width, as the current
    assert event.pulse_width_ms == 304.75
    assert event.exposure_time_ms == 609.5  # one item: as sent


def test_a_tomosynthesis_events_exposures_add_up() -> None:
    exposures = _sent(GIOTTO, EXPOSURE)
    assert len(exposures) == 11 and exposures[0] == 6220.0  # read alone before
    event = _first_event(GIOTTO)
    assert event.exposure_uas == math.fsum(exposures) == 139890.0
    assert [p.values for p in event.per_pulse if p.field == "exposure_uas"] == [exposures]
    assert event.kvp_kv == 27.0 and event.tube_current_ma == 104.0


def test_pulses_that_did_not_fire_stay_in_the_values_not_in_the_mean() -> None:
    ds = dcmread(GE_RF)
    first = _items(ds.ContentSequence, EVENT)[0]
    [kvp] = _items(first.ContentSequence, KVP)
    kvp.MeasuredValueSequence[0].NumericValue = ["0", "70", "72", "71"]
    data = io.BytesIO()
    ds.save_as(data)
    event = _first_event(data.getvalue())
    assert event.kvp_kv == 71.0
    assert [p.values for p in event.per_pulse if p.field == "kvp_kv"] == [(0.0, 70.0, 72.0, 71.0)]


def test_every_value_reaches_fhir(store: Store, settings: Settings, api: Api) -> None:
    assert build_ingestor(store, settings).ingest_file(PRISTINA).status == "ingested"
    events = api.search("/fhir/Observation?code=113852&_sort=date")
    components = [c for c in events[0]["component"] if c["code"]["coding"][0]["code"] == CURRENT]
    assert [c["code"].get("text") for c in components] == [
        None, "X-Ray Tube Current, range over the pulses", "X-Ray Tube Current, per pulse"]  # fmt: skip
    summary, spread, values = components
    assert summary["valueQuantity"] == {
        "value": 28.0764, "unit": "mA", "system": "http://unitsofmeasure.org", "code": "mA"}  # fmt: skip
    assert (spread["valueRange"]["low"]["value"], spread["valueRange"]["high"]["value"]) == (
        2,
        30.48,
    )
    sampled = values["valueSampledData"]
    assert (sampled["data"], sampled["origin"]["code"], sampled["dimensions"]) == (
        "2 30.48",
        "mA",
        1,
    )
    kvp = [c for c in events[0]["component"] if c["code"]["coding"][0]["code"] == KVP]
    assert [c["valueSampledData"]["data"] for c in kvp if "valueSampledData" in c] == ["34.1 33.99"]
    Observation.model_validate(events[0])  # fhir.resources: valid R4 (R4B's datatypes)
