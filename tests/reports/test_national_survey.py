"""The national survey an authority asks for (KERMA_SURVEY): its examinations, population,
minimum per room and units, each rule with its source; what is left out is said with the
reason. UK CT over the 24 examinations of the site; German radiography over the corpus's
GE radiographs, in cGy·cm² as the BfS writes DAP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from server.app import create_app
from server.config import Settings
from server.dose.surveys import Population
from server.fhir.validation import validate
from server.ingest import build_ingestor
from server.mappings import survey_rules
from server.reports import national
from server.site import build_service
from server.stats.service import Query, Statistics, site_statistics
from server.store.port import Store
from tests.conftest import Api
from tests.reports.test_department import DEVICE, PERIOD, archived, text_of

CORPUS = Path(__file__).parent.parent / "data" / "dicom" / "openrem"
START, END = datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)


def _app(settings: Settings, store: Store, token: str, survey: str) -> Api:
    return Api(create_app(replace(settings, survey=survey), store).test_client(), token)


def _stats(settings: Settings, store: Store) -> Statistics:
    return site_statistics(build_service(store, settings), settings)


def _strata(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for e in bundle["entry"] if e["resource"]["resourceType"] == "MeasureReport"
            for g in e["resource"]["group"] for st in g["stratifier"] for s in st["stratum"]]  # fmt: skip


def test_the_uk_ct_survey(
    site: Api, settings: Settings, store: Store, tokens: dict[str, str]
) -> None:
    uk = _app(settings, store, tokens["mpe"], "uk_ukhsa")
    bundle = uk.get(f"/stats/survey.json?{PERIOD}").get_json()
    assert validate(bundle) == []
    [stratum] = _strata(bundle)  # CAP has a UK DLP level, no CTDIvol one
    examination = stratum["component"][0]["value"]["text"]
    assert examination == "Chest, abdomen, pelvis (Cancer)"
    assert stratum["population"][0]["count"] == 24 and stratum["measureScore"]["value"] == 700
    drl = next(e for e in stratum["extension"][0]["extension"] if e["url"] == "drl")
    assert {e["url"]: e.get("valueDecimal") for e in drl["extension"]}["ratio"] == 1.0606  # 700/660
    pdf = uk.get(f"/stats/survey.pdf?{PERIOD}")
    text = text_of(pdf.data)
    assert "UK national patient dose audit (UKHSA)" in text
    assert "CT: DLP per complete examination (mGy·cm)" in text
    # examination, room, n, median, mean, the UK NDRL, median / NDRL
    assert f"Chest, abdomen, pelvis (Cancer) {DEVICE} 24 700 700 660 1.06" in text
    # the rules, each with its source
    assert "age 16 years or more; weight 50-90 kg" in text and "PHE 2019 CT survey" in text
    assert (
        "at least 10 examinations (patients)" in text
        and 'ICRP Publication 135 (2017), glossary "National DRL"' in text
    )
    # CTDIvol: the CAP acquisitions have no UK CTDIvol level; said so, not left blank
    assert "CT: CTDIvol per sequence (mGy)" in text
    assert (
        "CT acquisition: chest, abdomen and pelvis: 24 value(s), no UKHSA DRL for this quantity"
        in text
    )
    assert "Dose values compared with: UKHSA GB 2022" in text
    assert (
        archived(pdf.data)["survey-bundle.json"]["entry"][-1]["resource"]["group"]
        == (bundle["entry"][-1]["resource"]["group"])
    )
    # the site's own survey is unchanged without KERMA_SURVEY
    own = site.get(f"/stats/survey.json?{PERIOD}").get_json()
    assert {c["code"]["text"] for s in _strata(own) for c in s["component"]} == {
        "procedure",
        "device",
    }


def test_rooms_with_too_few_patients_and_patients_outside_the_band_are_left_out(
    site: Api, settings: Settings, store: Store
) -> None:
    stats, rules = _stats(settings, store), survey_rules("uk_ukhsa")
    [dlp, _] = national.tables(stats, replace(rules, min_patients=25), START, END)
    assert dlp.rows == [] and [r.summary.n for r in dlp.too_few] == [24]
    [weight] = set(
        stats.values(Query("weight_kg", "study", (), START.timestamp(), END.timestamp()))
    )
    lighter = replace(rules.population, weight_max_kg=weight - 1)
    [dlp, _] = national.tables(stats, replace(rules, population=lighter), START, END)
    assert (dlp.rows, dlp.too_few, dlp.outside) == ([], [], 24)
    unweighed = Population(without_weight=False)
    assert unweighed.admits(np.array([40.0, 40.0]), np.array([np.nan, 70.0])).tolist() == [
        False,
        True,
    ]


def _radiographs(store: Store, settings: Settings, copies: int) -> None:
    """The GE Optima XR220 study (three abdomen radiographs, 56 years, no weight) `copies`
    times as studies of their own, and the DRGEM and Canon radiographs once."""
    ingestor = build_ingestor(store, settings)
    for n in range(copies):
        study = generate_uid()
        for i in (1, 2, 3):
            ds = pydicom.dcmread(CORPUS / f"DX-Im-GE_XR220-{i}.dcm")
            ds.StudyInstanceUID, ds.SOPInstanceUID = study, generate_uid()
            ds.AccessionNumber = f"ACC{n}"
            path = settings.data_dir / f"copy-{n}-{i}.dcm"
            ds.save_as(path)
            assert ingestor.ingest_bytes(path.read_bytes(), path.name).status == "ingested"
    for name in ("DX-Im-DRGEM.dcm", "DX-RDSR-Canon_CXDI.dcm"):
        assert ingestor.ingest_bytes((CORPUS / name).read_bytes(), name).status == "ingested"


def test_the_german_survey_in_cgy_cm2(
    settings: Settings, store: Store, tokens: dict[str, str]
) -> None:
    _radiographs(store, settings, copies=10)
    # the file's own values: DAP (0018,115E) in dGy·cm², so cGy·cm² is ten times it
    dap_cgy_cm2 = sorted(10 * float(pydicom.dcmread(CORPUS / f"DX-Im-GE_XR220-{i}.dcm")
                                    .ImageAndFluoroscopyAreaDoseProduct) for i in (1, 2, 3))  # fmt: skip
    assert dap_cgy_cm2 == [4.1, 8.2, 20.5]
    de = _app(settings, store, tokens["mpe"], "de_bfs")
    period = "from=2000-01-01&to=2030-01-01"
    bundle = de.get(f"/stats/survey.json?{period}").get_json()
    assert validate(bundle) == []
    [stratum] = _strata(bundle)  # canonical units in the data: Gy·m²
    assert stratum["population"][0]["count"] == 30
    assert stratum["measureScore"] == {"value": 8.2e-06, "unit": "Gy·m²",
                                       "system": "http://unitsofmeasure.org", "code": "Gy.m2"}  # fmt: skip
    text = text_of(de.get(f"/stats/survey.pdf?{period}").data).replace("/ ", "/")  # (wrapped)
    assert "Projektionsradiographie: Dosisflächenprodukt pro Aufnahme (cGy·cm²)" in text
    # 10 examinations (the minimum counts patients), 30 radiographs; median 8.2 and mean
    # 10.9 cGy·cm² against the DRW of 200 cGy·cm²
    assert (
        "Abdomen a. p./p. a. GE Healthcare Optima XR220 01234MOB54 10 30 8.20 10.9 200 0.04" in text
    )
    assert "age 18 years or more; examinations without a recorded age left out" in text
    assert "at least ten examinations" in text  # the Ärztliche Stelle's rule, cited
    # the DRGEM radiograph's patient has no recorded age (left out); the Canon chest a.p. is
    # no examination of the BfS list Kerma maps
    assert "1 value(s) of patients outside the survey's population" in text
    assert "XR Chest 1 View Anteroposterior: 1 value(s), no BfS DRL for this quantity" in text


def test_one_copy_is_too_few_for_a_room(settings: Settings, store: Store) -> None:
    _radiographs(store, settings, copies=1)
    stats = _stats(settings, store)
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    [table] = national.tables(stats, survey_rules("de_bfs"), start, end)
    assert table.rows == []
    [row] = table.too_few  # one examination of three radiographs: one patient, not three
    assert (row.group["examination"], table.examinations_of(row), row.summary.n) == (
        "Abdomen a. p./p. a.",
        1,
        3,
    )
    assert round(table.scaled(row.summary.median), 6) == 8.2  # Gy·m² to cGy·cm²
