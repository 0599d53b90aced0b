"""Patients only, by default (issue 19): a QA or phantom examination (a rule with `procedure:
null`) is left out of statistics, DRL proposals, surveys and the department report and counted
apart; an examination no rule classified counts as "not classified", never under its own words
as if they were a standard procedure, and its words are listed (the report's annex)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from server.ingest import build_ingestor
from server.reports.documents import department_pdf, survey_files
from server.site import build_service
from server.store.port import Store
from tests.conftest import Api
from tests.reports.test_department import text_of

CORPUS = Path(__file__).parents[1] / "data" / "dicom" / "openrem"
PERIOD = "from=1990-01-01&to=2026-12-01"
QA_DLP_MGY_CM = 1590.0  # the Flash QA file: CT Dose Length Product Total (113813), mGy.cm


@pytest.fixture
def examinations(store: Store, settings: Settings) -> None:
    ingestor = build_ingestor(store, settings)
    for name in (
        "CT-RDSR-Siemens_Flash-QA-DS.dcm",  # the physicist's phantom series
        "RF-RDSR-Siemens-Zee.dcm",  # no rule matches it: no words but "RF"
        "CT-RDSR-Siemens-Continued-1.dcm",
    ):  # a CT classified to a procedure
        outcome = ingestor.ingest_file(CORPUS / name)
        assert outcome.study and outcome.events_added, (name, outcome)


def test_the_facts_say_what_each_examination_is(examinations: None, store: Store) -> None:
    studies = {f.modality + ("-qa" if f.category == "qa" else ""): f
               for f in store.facts() if f.level == "study"}  # fmt: skip
    assert sorted((k, f.category) for k, f in studies.items()) == [
        ("CT", "procedure"),
        ("CT-qa", "qa"),
        ("RF", "unclassified"),
    ]
    assert studies["CT-qa"].dlp_mgy_cm == pytest.approx(QA_DLP_MGY_CM, abs=0.01)
    qa_uid = studies["CT-qa"].study_uid
    assert {f.category for f in store.facts(qa_uid) if f.level == "event"} == {"qa"}


def test_statistics_leave_qa_out_and_name_the_unclassified(examinations: None, api: Api) -> None:
    ct = api.get(f"/stats/dose?quantity=dlp_mgy_cm&group=procedure&{PERIOD}").get_json()
    assert [r["n"] for r in ct["rows"]] == [1]  # the classified CT, not the phantom
    assert all(r["max"] < QA_DLP_MGY_CM for r in ct["rows"])
    assert ct["left_out"] == {"qa": 1, "not_classified": [{"name": "(no name)", "n": 1}]}
    rf = api.get(f"/stats/dose?quantity=dap_gy_m2&group=procedure&{PERIOD}").get_json()
    assert [r["procedure"] for r in rf["rows"]] == ["not classified"]
    assert rf["rows"][0]["drl"] == []
    proposals = api.get(f"/stats/drl-proposal?quantity=dap_gy_m2&{PERIOD}").get_json()
    assert proposals["rows"] == []  # nothing to propose a level for
    load = api.get(f"/stats/load?quantity=dlp_mgy_cm&group=modality&{PERIOD}").get_json()
    assert load["rows"] == [{"modality": "CT", "n": 1}]


def test_the_report_and_the_survey_leave_qa_out(
    examinations: None, store: Store, settings: Settings
) -> None:
    service = build_service(store, settings)
    start, end = datetime(1990, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    now = datetime(2026, 12, 5, tzinfo=UTC)
    text = text_of(department_pdf(service, settings, start, end, now))
    assert "Left out: 1 QA, phantom and physics examination(s)" in text
    assert "Not classified to a standard procedure: 1 examination(s)" in text
    assert "Annex: examinations not classified" in text and "(no name) 1" in text
    assert "1,590" not in text and "1590" not in text
    survey = text_of(survey_files(service, settings, start, end, now)["application/pdf"])
    assert "1,590" not in survey and "1590" not in survey
    assert (
        "Not in this survey: 1 QA, phantom and physics examination(s) (no patient); "
        "1 examination(s) not classified to a standard procedure." in survey
    )  # (their names stay home: PS3.15 removes study descriptions; the report's annex has them)


def _mark(api: Api, rid: str, qa: bool | None = None) -> Any:
    body = {"resourceType": "Parameters"}
    if qa is not None:
        body["parameter"] = [{"name": "qa", "valueBoolean": qa}]  # type: ignore[assignment]
    return api.post(f"/fhir/ImagingStudy/{rid}/$mark-qa", body)


def test_a_physicist_marks_a_study_no_patient_examination(
    examinations: None, api: Api, as_role: Any, store: Store, settings: Settings
) -> None:
    """The classified CT (a Siemens chest CT) marked QA by the physicist: statistics leave it
    out and count it; classifying every study again keeps the mark; qa false gives it back to
    the rules. Roles without $mark-qa get 403; an unknown study 404; a wrong parameter 400."""
    [ct] = [s for s in api.search("/fhir/ImagingStudy?_count=10")
            if "Thorax" in s.get("description", "")]  # fmt: skip
    assert as_role("radiographer").post(f"/fhir/ImagingStudy/{ct['id']}/$mark-qa",
                                        {"resourceType": "Parameters"}).status_code == 403  # fmt: skip
    assert _mark(api, "no-such-study").status_code == 404
    bad = api.post(f"/fhir/ImagingStudy/{ct['id']}/$mark-qa",
                   {"resourceType": "Parameters", "parameter": [{"name": "qa", "valueString": "x"}]})  # fmt: skip
    assert bad.status_code == 400
    marked = _mark(api, ct["id"])
    assert marked.status_code == 200, marked.get_json()
    [found] = [e for e in marked.get_json()["extension"] if e["url"].endswith("/classification")]
    decision = {e["url"]: e for e in found["extension"]}
    assert decision["rule"]["valueString"] == "marked-qa" and "markedBy" in decision
    assert "coding" not in (marked.get_json().get("procedureCode") or [{}])[0]
    stats = api.get(f"/stats/dose?quantity=dlp_mgy_cm&group=procedure&{PERIOD}").get_json()
    assert stats["rows"] == [] and stats["left_out"]["qa"] == 2  # the phantom and this one
    from server.classification.reclassify import reclassify
    from server.mappings import classification_rules, unit_table

    counts = reclassify(build_service(store), classification_rules(), unit_table())
    assert counts["marked"] == 1
    again = api.get(f"/stats/dose?quantity=dlp_mgy_cm&group=procedure&{PERIOD}").get_json()
    assert again["left_out"]["qa"] == 2
    back = _mark(api, ct["id"], qa=False)
    assert back.status_code == 200
    assert back.get_json()["procedureCode"][0]["coding"][0]["code"] == "RPID16"
    restored = api.get(f"/stats/dose?quantity=dlp_mgy_cm&group=procedure&{PERIOD}").get_json()
    assert [r["n"] for r in restored["rows"]] == [1] and restored["left_out"]["qa"] == 1


def test_a_study_the_new_rules_call_qa_leaves_the_statistics(
    examinations: None, api: Api, store: Store
) -> None:
    """The unclassified RF study ("FL - Ang") that a new rule with procedure null calls QA:
    classified again, its dose facts become QA (they stayed 'not classified' when neither the
    study's nor its acquisitions' procedure changed)."""
    from server.classification.reclassify import reclassify
    from server.dose.classify import Rules
    from server.mappings import read_csv_rows, read_yaml, unit_table

    table = read_yaml("classification/rules.yaml")
    qa_rule = {"id": "qa-ang", "modality": ["RF"], "all": ["fl - ang"], "procedure": None}
    table = {**table, "version": table["version"] + 1, "rules": [qa_rule, *table["rules"]]}
    rules = Rules(table, read_csv_rows("classification/procedures.csv"))
    assert reclassify(build_service(store), rules, unit_table())["changed"] == 1
    rf = api.get(f"/stats/dose?quantity=dap_gy_m2&group=procedure&{PERIOD}").get_json()
    assert rf["rows"] == [] and rf["left_out"] == {"qa": 2, "not_classified": []}
