"""DRL comparison on ingestion: the corpus against the UK and German sets gives exactly the
exceedances its values imply, once, as valid DetectedIssues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from server.config import Settings
from server.fhir import FhirService
from server.fhir.mapping import Context
from server.fhir.validation import validate
from server.ingest import build_ingestor
from server.mappings import national_levels
from server.site.tables import SiteTables, load
from server.store.port import Store
from tests.dicom.conftest import CORPUS
from tests.fhir.test_levels import local_level

SETS = "UKHSA GB 2022,BfS DE 2022"
PHILIPS = CORPUS / "openrem" / "CT-SC-Philips_Brilliance16P.dcm"


def _issues(service: FhirService) -> list[dict[str, Any]]:
    found = service.search("DetectedIssue", [("_count", "100")]).matches
    return [orjson.loads(s.body or b"") for s in found]


def test_the_corpus_against_uk_and_german_drls(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    ingestor = build_ingestor(store, Settings(data_dir=tmp_path, drl_sets=SETS))
    for path in sorted(CORPUS.rglob("*.dcm")):
        ingestor.ingest_file(path)
    issues = sorted(_issues(service), key=lambda i: i["detail"])
    assert [i["detail"] for i in issues] == [
        "CT Dose Length Product Total 1102 mGy·cm of the examination is 1.67 times the UKHSA GB "
        "2022 DRL of 660 mGy·cm for Chest, abdomen, pelvis (Cancer)",
        "CT Dose Length Product Total 724.5 mGy·cm of the examination is 1.10 times the UKHSA GB "
        "2022 DRL of 660 mGy·cm for Chest, abdomen, pelvis (Cancer)",
        # per radiograph: the DRGEM abdomen AP (erect), a study no examination rule matches,
        # classified by its exposure (image header DAP 13.52 Gy·cm²)
        "Dose Area Product 0.001352 Gy·m² of an irradiation event is 6.76 times the BfS DE 2022 "
        "DRL of 0.0002 Gy·m² for Abdomen a. p./p. a.",
        # per sequence: the Philips chest/abdomen/pelvis study's "30S KIDNEYS" acquisition is an
        # abdomen-pelvis sequence (CTDIvol 11.33 mGy; the UK sets 10 mGy per sequence)
        "Mean CTDIvol 11.33 mGy of an irradiation event is 1.13 times the UKHSA GB 2022 DRL of "
        "10 mGy for Abdomen and pelvis (Abscess)",
    ]
    for issue in issues:
        assert validate(issue) == [], issue
        assert issue["status"] == "preliminary" and issue["severity"] == "moderate"
        holder = orjson.loads(
            service.read(*issue["implicated"][0]["reference"].split("/")).body or b""
        )
        # the dose summary holds a total, the irradiation event its own value
        per_event = "irradiation event" in issue["detail"]
        assert holder["code"]["coding"][0]["code"] == ("113852" if per_event else "73569-6")
        assert issue.get("patient") == holder.get("subject")
    # the same files again raise nothing new
    for path in sorted(CORPUS.rglob("*.dcm")):
        ingestor.ingest_file(path)
    assert len(_issues(service)) == 4


def test_no_sets_no_comparison(store: Store, service: FhirService, tmp_path: Path) -> None:
    build_ingestor(store, Settings(data_dir=tmp_path)).ingest_file(PHILIPS)
    assert _issues(service) == []


@pytest.mark.parametrize("sets", ["BfS DE 2022", "UKHSA GB 2012"])
def test_other_sets_do_not_apply(
    sets: str, store: Store, service: FhirService, tmp_path: Path
) -> None:
    build_ingestor(store, Settings(data_dir=tmp_path, drl_sets=sets)).ingest_file(PHILIPS)
    assert _issues(service) == []


def _replace_text(items: Any, old: str, new: str) -> None:
    for item in items:
        if getattr(item, "TextValue", None) == old:
            item.TextValue = new
        if "ContentSequence" in item:
            _replace_text(item.ContentSequence, old, new)


def test_a_significant_event_by_the_german_criteria(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    import io

    from pydicom import dcmread

    # GE's QA scan (CTDIvol 222.59 mGy), presented as a patient's CT: a significant event
    ds = dcmread(CORPUS / "openrem" / "CT-RDSR-GEPixelMed.dcm")
    settings = Settings(data_dir=tmp_path, alert_rules="de_strlschv_annex14")
    ingestor = build_ingestor(store, settings)
    as_is = io.BytesIO()
    ds.save_as(as_is)
    ingestor.ingest_bytes(as_is.getvalue(), "qa.dcm")
    assert _issues(service) == []  # physics and QA studies raise nothing
    _replace_text(ds.ContentSequence, "10.13 RADIOTHERAPY QA", "Abdomen")
    ds.StudyInstanceUID = ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    patient = io.BytesIO()
    ds.save_as(patient)
    assert ingestor.ingest_bytes(patient.getvalue(), "ct.dcm").status == "ingested"
    [issue] = _issues(service)
    assert issue["severity"] == "high"
    assert issue["code"]["coding"][0]["code"] == "significant-event"
    assert issue["detail"] == (
        "StrlSchV Anlage 14 (DE): CTDIvol above 80 mGy in a body CT (single examination); "
        "the value is 222.6 mGy (an irradiation event), the limit 80 mGy"
    )
    event = orjson.loads(service.read(*issue["implicated"][0]["reference"].split("/")).body or b"")
    assert event["code"]["coding"][0]["code"] == "113852"
    assert validate(issue) == []


def test_the_sites_own_levels_made_over_the_api(
    store: Store, service: FhirService, tmp_path: Path, api: Any
) -> None:
    """A local DRL and a local alert level for chest/abdomen/pelvis CT, created over the API,
    are compared with (no DRL set chosen in the settings)."""
    for level in (
        local_level("Site 2026", "DRL", "113830", "event", 10, "mGy", "ct-acq-abdomen-pelvis"),
        local_level("Site 2026", "alert", "113813", "examination", 1000, "mGy.cm", "ct-cap-w"),
        local_level("Site 2026", "DRL", "113830", "event", 1, "mGy", "ct-head-wo"),
    ):
        assert api.post("/fhir/ObservationDefinition", level).status_code == 201
    build_ingestor(store, Settings(data_dir=tmp_path)).ingest_file(PHILIPS)
    found = {i["code"]["coding"][0]["code"]: i for i in _issues(service)}
    assert set(found) == {"drl-exceeded", "alert-level-exceeded"}
    assert found["drl-exceeded"]["severity"] == "moderate"
    assert found["drl-exceeded"]["detail"] == (  # the study's "30S KIDNEYS" sequence
        "Mean CTDIvol 11.33 mGy of an irradiation event is 1.13 times the Site 2026 DRL of "
        "10 mGy for CT abdomen-pelvis sequence"
    )
    assert found["alert-level-exceeded"]["severity"] == "high"
    assert found["alert-level-exceeded"]["detail"] == (
        "CT Dose Length Product Total 1102 mGy·cm of the examination is 1.10 times the "
        "Site 2026 alert level of 1000 mGy·cm for CT chest, abdomen, pelvis"
    )
    for issue in found.values():
        assert validate(issue) == []


def test_levels_changed_over_the_api_apply_from_the_next_reading(
    store: Store, service: FhirService, api: Any
) -> None:
    national = national_levels()
    levels = SiteTables(service, frozenset({"UKHSA GB 2022"}), national, max_age_s=0)
    ctx = Context()
    chosen = levels.context(ctx).levels
    assert {lv.set for lv in chosen} == {"UKHSA GB 2022"}  # from mappings/drl, not yet loaded
    load(service, list(national))
    assert len(levels.context(ctx).levels) == len(chosen)  # the same levels, stored
    level = local_level("Site 2026", "DRL", "113830", "event", 10, "mGy", "ct-cap-w")
    api.post("/fhir/ObservationDefinition", level)
    site = levels.context(ctx)
    [local] = [lv for lv in site.levels if lv.set == "Site 2026"]
    assert (local.value, local.procedures) == (10, {"ct-cap-w"})
    cached = SiteTables(service, frozenset(), national, max_age_s=3600)
    assert len(cached.context(ctx).levels) == 1
    api.post("/fhir/ObservationDefinition", {**level, "identifier": [{"value": "another"}]})
    assert len(cached.context(ctx).levels) == 1  # read again only after max_age_s


def _set_numeric(items: Any, code: str, value: float) -> None:
    for item in items:
        concept = item.get("ConceptNameCodeSequence")
        if concept and concept[0].CodeValue == code and "MeasuredValueSequence" in item:
            item.MeasuredValueSequence[0].NumericValue = str(value)
        if "ContentSequence" in item:
            _set_numeric(item.ContentSequence, code, value)


def test_the_group_criterion_on_one_device(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    """20 chest/abdomen/pelvis CTs on the Siemens Flash: averaging above twice the UK DRL
    (660 mGy·cm) is a significant event once one of them is above three times it."""
    import io

    from pydicom import dcmread
    from pydicom.uid import generate_uid

    settings = Settings(
        data_dir=tmp_path, drl_sets="UKHSA GB 2022", alert_rules="de_strlschv_annex14"
    )
    ingestor = build_ingestor(store, settings)
    template = dcmread(CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm")

    def study(dlp_total: float) -> str:
        ds = template.copy()
        ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
        _set_numeric(ds.ContentSequence, "113813", dlp_total)
        buffer = io.BytesIO()
        ds.save_as(buffer)
        assert ingestor.ingest_bytes(buffer.getvalue(), "ct.dcm").status == "ingested"
        return str(ds.StudyInstanceUID)

    def events() -> list[dict[str, Any]]:
        return [
            i for i in _issues(service) if i["code"]["coding"][0]["code"] == "significant-event"
        ]

    for _ in range(19):
        study(1400.0)  # above twice the DRL, not three times
    assert events() == []
    trigger = study(2100.0)  # the 20th, above three times: the group now qualifies
    found = {i["identifier"][0]["value"].split("/")[-1]: i for i in events()}
    assert set(found) == {"drl-3x", "group-20"}
    group = found["group-20"]
    assert group["identifier"][0]["value"].startswith(f"group:{trigger}/")
    assert (
        "the value is 1435 mGy·cm (the mean of the group), the limit 1320 mGy·cm, 2.17 times the "
        "UKHSA GB 2022 DRL" in group["detail"]
    )
    study(1400.0)  # the next one: the same group trigger, not raised again
    assert len([i for i in events() if i["identifier"][0]["value"].endswith("group-20")]) == 1


def test_acknowledging_an_alert(
    store: Store, service: FhirService, tmp_path: Path, api: Any, as_role: Any
) -> None:
    build_ingestor(store, Settings(data_dir=tmp_path, drl_sets=SETS)).ingest_file(PHILIPS)
    [issue] = [i for i in _issues(service) if "Total" in i["detail"]]  # the DLP total
    url = f"/fhir/DetectedIssue/{issue['id']}/$acknowledge"
    comment = {"resourceType": "Parameters", "parameter": [{"name": "comment", "valueString": "obese patient, protocol checked"}]}  # fmt: skip
    assert as_role("viewer").post(url, comment).status_code == 403
    # the radiographer of the fixtures works on Device/dev-a, not on the Philips scanner
    assert as_role("radiographer").post(url, comment).status_code == 403
    assert len(api.search("/fhir/DetectedIssue?status=preliminary")) == 2  # the review list
    done = api.post(url, comment)
    assert done.status_code == 200, done.get_data(as_text=True)
    body = done.get_json()
    assert body["status"] == "final"
    [entry] = body["mitigation"]
    assert entry["author"] == {"display": "mpe-user"}
    assert entry["extension"][0]["valueString"] == "obese patient, protocol checked"
    assert validate(body) == []
    assert len(api.search("/fhir/DetectedIssue?status=preliminary")) == 1  # the other one
    assert len(api.post(url, {"resourceType": "Parameters"}).get_json()["mitigation"]) == 2
    assert api.post("/fhir/DetectedIssue/nope/$acknowledge", comment).status_code == 404
    # a radiographer of the Philips scanner may
    from server.auth.users import add_user

    summary = orjson.loads(
        service.read(*issue["implicated"][0]["reference"].split("/")).body or b""
    )
    token = add_user(store, "rad-philips", "radiographer", (summary["device"]["reference"],))
    assert as_role(token).post(url, comment).status_code == 200


def test_substantial_radiation_dose_levels_of_an_intervention(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    """SIR/NCRP 168 follow-up levels: the Zee's doses 2,500 times over (Ka,r 6.2 Gy, DAP 390
    Gy·cm², a calculated peak skin dose of 4.2 Gy) raise the peak skin dose and the reference
    air kerma levels, not the KAP level; the Zee as it is raises nothing."""
    from dataclasses import replace

    from server.dicom.read import Read, read_dicom
    from server.mappings import unit_table

    ingestor = build_ingestor(store, Settings(data_dir=tmp_path, alert_rules="sir_srdl"))
    zee = CORPUS / "openrem" / "RF-RDSR-Siemens-Zee.dcm"
    assert ingestor.ingest_file(zee).status == "ingested"
    assert _issues(service) == []
    outcome = read_dicom(zee, unit_table())
    assert isinstance(outcome, Read)
    report = outcome.report

    def more(value: float | None) -> float | None:
        return None if value is None else value * 2500

    high = replace(
        report,
        study=replace(report.study, study_uid="1.2.826.0.1.3680043.8.498.2"),
        source=replace(report.source, sop_instance_uid="1.2.826.0.1.3680043.8.498.3"),
        projection_events=tuple(replace(e, event_uid=e.event_uid + ".9", dose_rp_gy=more(e.dose_rp_gy),
                                        dap_gy_m2=more(e.dap_gy_m2)) for e in report.projection_events),
        projection_totals=tuple(replace(t, dose_rp_total_gy=more(t.dose_rp_total_gy),
                                        dap_total_gy_m2=more(t.dap_total_gy_m2))
                                for t in report.projection_totals),
    )  # fmt: skip
    assert ingestor.store_report(high, "high.dcm").status == "ingested"
    issues = sorted(_issues(service), key=lambda i: i["detail"])
    assert {i["code"]["coding"][0]["code"] for i in issues} == {"substantial-radiation-dose"}
    assert [i["evidence"][0]["code"][0]["text"] for i in issues] == [
        "SIR/NCRP 168 SRDL peak-skin-dose",
        "SIR/NCRP 168 SRDL reference-air-kerma",
    ]
    assert issues[0]["detail"].startswith(
        "SIR/NCRP 168 SRDL: calculated peak skin dose above 3 Gy; the value is 4.206 Gy "
        "(the examination), the limit 3 Gy"
    )
    assert issues[1]["detail"].startswith(
        "SIR/NCRP 168 SRDL: reference air kerma (Dose (RP) total) above 5 Gy"
    )
    assert all(validate(i) == [] for i in issues)
