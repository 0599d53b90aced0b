"""Every dose fact OpenREM's tests assert about the RDSR corpus, checked over Kerma's FHIR API.

Each file (or group of files imported together, in order) is ingested into a fresh store;
each expected fact is then answered from what `GET /fhir/...` returns and compared in
OpenREM's unit (quantities are converted with Kerma's unit table). Facts Kerma deliberately
answers differently, or that belong to other issues, are listed with the reason; a fact with
no answer at all fails the test.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest

from server.app import create_app
from server.auth.users import add_user
from server.config import Settings
from server.dicom.read import Read, read_dicom
from server.dicom.sr import concept
from server.dicom.text import age_years
from server.fhir.mapping import person
from server.ingest import build_ingestor
from server.mappings import unit_table
from server.store.sqlite import SqliteStore

DATA = Path(__file__).parent.parent / "data"
CORPUS = DATA / "dicom" / "openrem"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
FACTS = json.loads((DATA / "expected" / "openrem_expected.json").read_text())
DOSE_FILES = (
    "CT-ESR", "CT-RDSR", "NM-CT-RDSR", "DX-RDSR", "RF-RDSR", "RF-No", "RF-Pat", "MG-RDSR", "Dual-RDSR",
    "DX-Im", "MG-Im", "CT-SC",
)  # fmt: skip
# Whole files that other issues read.
FILE_ELSEWHERE: dict[str, str] = {}
UNITS = unit_table()
THEIR_UNITS = {
    "Gy·m²": "Gy.m2",
    "cGy·cm²": "cGy.cm2",
    "mGy·cm": "mGy.cm",
    "µAs": "uA.s",
    "m²": "m2",
    "count": "1",
    "years": "a",
}

# Quantities (by prefix) that other issues answer: said here, not silently.
ELSEWHERE = {
    "CT XLSX export": "export files are issue 7 (statistics and exports)",
    "RF XLSX export": "export files are issue 7",
    "DX XLSX export": "export files are issue 7",
    "MG CSV export": "export files are issue 7",
    "PHE 2019 CT export": "the PHE survey export is issue 7",
    "openSkin": "skin dose maps are issue 9",
    "cumulative DAP over alert window": "alert windows are issue 6",
    "cumulative dose at RP over alert window": "alert windows are issue 6",
    "patient: not_patient_indicator": "flagging QA/phantom patient IDs is site configuration, issue 6",
}
# Quantities Kerma does not keep, and why.
NOT_KEPT = {
    "has_intent": "Has Intent is not kept: it does not change how a dose is checked or reported",
    "scope_of_accumulation": "Kerma keeps one summary per study whatever scope the device declares",
    "observer_type": "the observer of an RDSR is always a device",
    "data_available": "the detector/source/mechanical 'data available' flags are not kept",
    "institution_address": "the institution's address is not kept on the Device",
    "ii_field_size": "Siemens writes the image-intensifier size as XML in a Comment: kept as the event's note, not parsed",
    "institution_name)": "OpenREM's test asserts a rendered page text here ('Institution name is ...'), not a stored value",
}
# Facts Kerma answers differently on purpose.
DIFFERENT = {
    (
        "CT-RDSR-Siemens-Continued-1.dcm + CT-RDSR-Siemens-Continued-2.dcm",
        "number of studies in database after import",
    ): (
        "both RDSRs carry the same Study Instance UID: Kerma keeps one ImagingStudy with all 4 events "
        "(FHIR identifies a study by its UID); OpenREM makes a second study for a continued one"
    ),
    (
        "CT-RDSR-Siemens-Continued-1.dcm + CT-RDSR-Siemens-Continued-2.dcm",
        "CT event: count of ctirradiationeventdata",
    ): ("one study holds the events of both RDSRs (see the study count)"),
    ("CT-RDSR-Siemens_Flash-TAP-SS.dcm", "CT event: acquisition_protocol"): (
        "the file declares ISO_IR 100 but holds UTF-8; OpenREM keeps the garbled 'testÃ¦Ã¸Ã¥', Kerma repairs it to 'testæøå'"
    ),
    ("DX-RDSR-Canon_CXDI.dcm", "observer context: device_observer_name"): (
        "the header's Station Name (CANONDaRt) names the device; the observer name 'PC' is the recording computer"
    ),
    ("CT-RDSR-Siemens_Flash-TAP-SS.dcm", "observer context: device_observer_serial_number"): (
        "the header's Device Serial Number (0018,1000) identifies the scanner; the observer context only fills gaps"
    ),
    (
        "RF-RDSR-Philips_Azurion.dcm",
        "accumulated projection x-ray dose: fluoro_dose_area_product_total",
    ): (
        "OpenREM's only source for this value is a disabled test whose number (0.00101567 Gy.m2) the file does not "
        "hold; Kerma reads the file's own Fluoro Dose Area Product Total"
    ),
}


def _not_ours(fact: dict[str, Any]) -> str | None:
    """Why a single fact is not checked here, or None."""
    expected = fact["expected"]
    if (
        isinstance(expected, str)
        and len(expected) in (40, 64)
        and all(c in "0123456789abcdef" for c in expected)
    ):
        return (
            "a SHA pseudonym from OpenREM's anonymising settings: pseudonymised exports are issue 7"
        )
    if (
        fact["quantity"]
        in ("patient: patient_name", "patient: patient_id", "patient: patient_birth_date")
        and expected is None
    ):
        return "OpenREM's default settings do not store patient identity; Kerma keeps it, behind roles and audit"
    return None


def _groups() -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fact in FACTS:
        if all(name.startswith(DOSE_FILES) for name in fact["file"].split(" + ")):
            groups[fact["file"]].append(fact)
    return dict(groups)


GROUPS = _groups()


class Answers:
    """Kerma's answer to each OpenREM quantity, read over the FHIR REST API."""

    def __init__(self, client: Any, token: str, files: list[str]) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        first = pydicom.dcmread(CORPUS / files[0], stop_before_pixels=True)
        self.study = self.one(f"/fhir/ImagingStudy?identifier=urn:oid:{first.StudyInstanceUID}")
        self.summary = self.one(f"/fhir/Observation?code=73569-6&part-of={self.study['id']}")
        self.patient = (
            self.read(self.study["subject"]["reference"])
            if "reference" in self.study["subject"]
            else {}
        )
        uids = dict.fromkeys(
            uid for name in files for uid in _event_uids(CORPUS / name)
        )  # file order, once
        self.events = [e for e in (self.event(uid) for uid in uids) if e is not None]
        self.device = self.read(self.summary["device"]["reference"])

    def get(self, url: str) -> dict[str, Any]:
        r = self.client.get(url, headers=self.headers)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()  # type: ignore[no-any-return]

    def one(self, url: str) -> dict[str, Any]:
        bundle = self.get(url)
        assert bundle["total"] == 1, (url, bundle["total"])
        return bundle["entry"][0]["resource"]  # type: ignore[no-any-return]

    def read(self, ref: str) -> dict[str, Any]:
        return self.get(f"/fhir/{ref}")

    def event(self, uid: str) -> dict[str, Any] | None:
        bundle = self.get(
            f"/fhir/Observation?identifier=urn:dicom:uid|urn:oid:{uid}&code={DCM}|113852"
        )
        return bundle["entry"][0]["resource"] if bundle.get("entry") else None

    def answer(self, quantity: str, index: int | None) -> Any:
        group, _, name = quantity.partition(": ")
        handler = HANDLERS.get(quantity) or HANDLERS.get(group)
        if handler is None and quantity.startswith("RF detail view"):
            handler, name = _detail_view_fact, quantity
        if handler is None:
            raise KeyError(f"no answer for {quantity!r}")
        return handler(self, name, index)


def _event_uids(path: Path) -> list[str]:
    outcome = read_dicom(path, UNITS)
    assert isinstance(outcome, Read)
    report = outcome.report
    return [e.event_uid for e in (*report.ct_events, *report.projection_events)]


def _components(
    resource: dict[str, Any], code: str, text: str | None = None
) -> list[dict[str, Any]]:
    return [
        c
        for c in resource.get("component", [])
        if c["code"]["coding"][0]["code"] == code
        and (text is None or text in c["code"]["coding"][0].get("display", ""))
    ]


def _value(component: dict[str, Any]) -> Any:
    """A component's value; quantities as (value, UCUM unit) so the test can convert."""
    if "valueQuantity" in component:
        q = component["valueQuantity"]
        return (q["value"], q["code"])
    if "valueCodeableConcept" in component:
        concept_value = component["valueCodeableConcept"]
        return (
            concept_value["coding"][0]
            if "coding" in concept_value
            else {"code": "", "display": concept_value["text"]}
        )
    for key in ("valueInteger", "valueString", "valueDateTime"):
        if key in component:
            return component[key]
    return None


def _values(resource: dict[str, Any], code: str, text: str | None = None) -> list[Any]:
    return [_value(c) for c in _components(resource, code, text)]


def _single(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else (values or None)


EVENT_CODES = {
    # CT
    "mean_ctdivol": "113830",
    "dlp": "113838",
    "nominal_single_collimation_width": "113826",
    "nominal_total_collimation_width": "113827",
    "pitch_factor": "113828",
    "number_of_xray_sources": "113823",
    "acquisition_protocol": "125203",
    "ct_acquisition_type": "113820",
    "ctdiw_phantom_type": "113835",
    "procedure_context": "408730004",
    "scanning_length": "113825",
    "maximum_xray_tube_current": "113833",
    "exposure_time_per_rotation": "113834",
    # both
    "kvp": "113733",
    "xray_tube_current": "113734",
    "exposure_time": "113824",
    # projection
    "acquisition_plane": "113764",
    "irradiation_event_type": "113721",
    "dose_area_product": "122130",
    "dose_rp": "113738",
    "entrance_exposure_at_rp": "111636",
    "half_value_layer": "111634",
    "average_glandular_dose": "111631",
    "image_view": "111031",
    "laterality": "272741003",
    "reference_point_definition": "113780",
    "patient_table_relationship_cid": "113745",
    "patient_orientation_cid": "113743",
    "patient_orientation_modifier_cid": "113744",
    "number_of_pulses": "113768",
    "exposure": "113736",
    "focal_spot_size": "113766",
    "average_xray_tube_current": "113767",
    "collimated_field_area": "113790",
    "anode_target_material": "111632",
    "xray_filter_type": "113772",
    "xray_filter_material": "113757",
    "xray_filter_thickness_minimum": "113758",
    "xray_filter_thickness_maximum": "113773",
    "xray_grid": "111635",
    "positioner_primary_angle": "112011",
    "compression_thickness": "111633",
    "crdr_mechanical_configuration": "113956",
    "distance_source_to_detector": "113750",
    "exposure_index": "113845",
    "target_exposure_index": "113846",
    "deviation_index": "113847",
    "percent_fibroglandular_tissue": "111046",
    "column_angulation": "113770",
    "compression_force": "111647",
    "relative_xray_exposure": "RelativeXRayExposure",
    "sensitivity": "Sensitivity",
    "magnification_factor": "EstimatedRadiographicMagnificationFactor",
    "distance_source_to_entrance_surface": "DistanceSourceToEntrance",
    "grid_focal_distance": "GridFocalDistance",
}
ACQUISITION_TYPES = {
    "number_of_axial": "113804",
    "number_of_spiral": "116152004",
    "number_of_stationary": "113806",
    "number_of_const_angle": "113805",
}


def _event_fact(a: Answers, name: str, index: int | None) -> Any:
    assert index is not None
    event = a.events[index]
    base = name.split(".")[0]
    if base == "comment":
        return event["note"][0]["text"]
    if base == "target_region":
        return event["bodySite"]["coding"][0]
    if base == "date_time_started":
        return event["effectiveDateTime"]
    if base == "irradiation_event_uid":
        return event["identifier"][0]["value"].removeprefix("urn:oid:")
    if base == "count of xrayfilters":
        return len(_components(event, "113757"))
    if base == "xraygrid_set))":  # OpenREM asserts that grids were recorded
        return bool(_components(event, "111635"))
    if base.startswith("device_"):
        device = a.read(event["device"]["reference"])
        return {
            "device_manufacturer": device.get("manufacturer"),
            "device_model_name": device.get("modelNumber"),
            "device_serial_number": device.get("serialNumber"),
        }[base]
    return _single(_values(event, EVENT_CODES[base]))


def _study_fact(a: Answers, name: str, index: int | None) -> Any:
    s = a.study
    if name in ACQUISITION_TYPES:
        return sum(
            1
            for e in a.events
            if (c := _values(e, "113820")) and c[0]["code"] == ACQUISITION_TYPES[name]
        )
    started = s.get("started", "")
    summary = a.summary
    values = {
        "study_date": started[:10],
        "study_time": _time_of(started),
        "study_instance_uid": s["identifier"][0]["value"].removeprefix("urn:oid:"),
        "study_id": next(
            (i["value"] for i in s["identifier"] if i.get("use") == "secondary"), None
        ),
        "accession_number": next(
            (i["value"] for i in s["identifier"] if i.get("type", {}).get("coding")), None
        ),
        "study_description": s.get("description"),
        "modality_type": next(m["code"] for m in s["modality"] if m["code"] != "SR"),
        "referring_physician_name": s.get("referrer", {}).get("display"),
        "performing_physician_name": _performer(s, "performing physician"),
        "operator_name": _performer(s, "operator"),
        "name_of_physician_reading_study": (s.get("interpreter") or [{}])[0].get("display"),
        "series_instance_uid": [x["uid"] for x in s["series"]],
        "number_of_events": _single(_values(summary, "113812")),
        "total_dlp": _single(_values(summary, "113813")),
        "number_of_planes": len({c["code"] for e in a.events for c in _values(e, "113764")}),
        "total_dap": _single(_values(summary, "113722")),
        "total_dap_a": _single(_values(summary, "113722")),
        "total_rp_dose_a": _single(_values(summary, "113725")),
        "total_agd_left": _single(_values(summary, "111637", "Left")),
        "total_agd_right": _single(_values(summary, "111637", "Right")),
    }
    return values[name]


def _time_of(started: str) -> str:
    """'2013-06-11T14:04:19.468Z' -> '14:04:19.468000' (OpenREM's time format)."""
    clock = started[11:].split("Z")[0].split("+")[0]
    if "." in clock:
        whole, fraction = clock.split(".")
        return f"{whole}.{fraction.ljust(6, '0')}"
    return clock


def _performer(study: dict[str, Any], role: str) -> str | None:
    for series in study["series"]:
        for performer in series.get("performer", []):
            if performer.get("function", {}).get("text") == role:
                return str(performer["actor"]["display"])
    return None


def _patient_fact(a: Answers, name: str, index: int | None) -> Any:
    p = a.patient
    if name == "patient_name":
        n = (p.get("name") or [{}])[0]
        return "^".join([n.get("family", ""), *n.get("given", [])]) if n else None
    if name == "patient_id":
        return p["identifier"][0]["value"]
    if name == "patient_birth_date":
        return p.get("birthDate")
    if name == "patient_sex":
        return {"female": "F", "male": "M", "other": "O"}.get(p.get("gender", ""))
    raise KeyError(name)


def _patient_study_fact(a: Answers, name: str, index: int | None) -> Any:
    if name in ("patient_age_decimal", "patient_age"):
        return _single(_values(a.summary, "30525-0"))
    code = {"patient_size": "8302-2", "patient_weight": "29463-7"}[name]
    bundle = a.get(f"/fhir/Observation?code=http://loinc.org|{code}&part-of={a.study['id']}")
    return bundle["entry"][0]["resource"]["valueQuantity"]["value"] if bundle.get("entry") else None


def _equipment_fact(a: Answers, name: str, index: int | None) -> Any:
    d = a.device
    names = {n["type"]: n["name"] for n in d.get("deviceName", [])}
    return {
        "institution_name": d.get("owner", {}).get("display"),
        "institutional_department_name": d.get("location", {}).get("display"),
        "manufacturer": d.get("manufacturer"),
        "manufacturer_model_name": d.get("modelNumber"),
        "station_name": names.get("user-friendly-name"),
        "device_serial_number": d.get("serialNumber"),
        "software_versions": (d.get("version") or [{}])[0].get("value"),
        "device_observer_name": names.get("user-friendly-name"),
        "device_observer_manufacturer": d.get("manufacturer"),
        "device_observer_model_name": d.get("modelNumber"),
        "device_observer_serial_number": d.get("serialNumber"),
        "device_observer_physical_location_during_observation": d.get("owner", {}).get("display"),
        "device_observer_uid": next(
            (
                i["value"].removeprefix("urn:oid:")
                for i in d["identifier"]
                if i.get("system") == "urn:dicom:uid"
            ),
            None,
        ),
    }[name]


SUMMARY_CODES = {
    "start_of_xray_irradiation": "113809",
    "end_of_xray_irradiation": "113810",
    "procedure_reported": "121058",
    "source_of_dose_information": "113854",
    "total_number_of_irradiation_events": "113812",
    "ct_dose_length_product_total": "113813",
    "acquisition_dose_area_product_total": "113727",
    "acquisition_dose_rp_total": "113729",
    "fluoro_dose_area_product_total": "113726",
    "fluoro_dose_rp_total": "113728",
    "reference_point_definition": "113780",
    "total_acquisition_time": "113855",
    "accumulated_average_glandular_dose": "111637",
}


def _summary_fact(a: Answers, name: str, index: int | None) -> Any:
    base = name.split(".")[0]
    if base == "laterality":  # of the accumulated AGD components: named in their display
        return [
            c["code"]["coding"][0]["display"].split("(")[1].rstrip(")")
            for c in _components(a.summary, "111637")
        ]
    if base == "count of accummammographyxraydose":
        return len(_components(a.summary, "111637"))
    return _single(_values(a.summary, SUMMARY_CODES[base]))


def _detail_view_fact(a: Answers, name: str, index: int | None) -> Any:
    """OpenREM's RF study page: per row (Fluoroscopy, Acquisition, Total) DAP, dose at RP, time."""
    row = name.split("'")[1] if "'" in name else ""
    what = name.rsplit(": ", 1)[-1]
    codes = {
        "Fluoroscopy": ("113726", "113728", ("113730",)),
        "Acquisition": ("113727", "113729", ("113855",)),
        "Total": ("113722", "113725", ("113730", "113855")),
    }[row]
    if what == "DAP":
        return _single(_values(a.summary, codes[0]))
    if what == "dose at RP":
        return _single(_values(a.summary, codes[1]))
    seconds = sum(v[0] for code in codes[2] for v in _values(a.summary, code))
    return (seconds, "s")


def _database_fact(a: Answers, name: str, index: int | None) -> Any:
    return a.get("/fhir/ImagingStudy?_summary=count")["total"]


def _device_count(a: Answers, name: str, index: int | None) -> Any:
    return a.get("/fhir/Device?_summary=count")["total"]


def _event_count(a: Answers, name: str, index: int | None) -> Any:
    return len(a.events)


def _sop_uids(a: Answers, name: str, index: int | None) -> Any:
    return sorted(i["value"].removeprefix("urn:oid:") for i in a.summary["identifier"])


HANDLERS: dict[str, Callable[[Answers, str, int | None], Any]] = {
    "CT event": _event_fact,
    "CT x-ray source": _event_fact,
    "CT event scanning length": _event_fact,
    "event": _event_fact,
    "event source": _event_fact,
    "event source kVp": _event_fact,
    "event source tube current": _event_fact,
    "event source exposure": _event_fact,
    "event mechanical": _event_fact,
    "event distance measurements": _event_fact,
    "event x-ray filter": _event_fact,
    "event x-ray grid": _event_fact,
    "study": _study_fact,
    "patient": _patient_fact,
    "patient study": _patient_study_fact,
    "equipment": _equipment_fact,
    "observer context": _equipment_fact,
    "unique equipment name": _equipment_fact,
    "CT radiation dose": _summary_fact,
    "CT accumulated dose": _summary_fact,
    "projection x-ray radiation dose": _summary_fact,
    "accumulated projection x-ray dose": _summary_fact,
    "accumulated mammography dose": _summary_fact,
    "number of studies in database after import": _database_fact,
    "number of unique equipment entries after import": _device_count,
    "CT event: count of ctirradiationeventdata": _event_count,
    "event: count of irradeventxraydata": _event_count,
    "event detector": _event_fact,
    "SOP instance UIDs processed: sop_instance_uid list": _sop_uids,
}


def _in_their_unit(value: Any, fact: dict[str, Any]) -> Any:
    """(value, UCUM) -> the number in the fact's unit."""
    if isinstance(value, list):
        return [_in_their_unit(v, fact) for v in value]
    if not isinstance(value, tuple):
        return value
    number, ours = value
    theirs = THEIR_UNITS.get(fact.get("unit") or "", fact.get("unit") or ours)
    if (
        theirs in UNITS
        and ours in UNITS
        and UNITS.unit(theirs).canonical_code == UNITS.unit(ours).canonical_code
    ):
        return UNITS.convert(number, ours, theirs)
    return number


def _as_text(value: Any, fact: dict[str, Any]) -> Any:
    """Codings answer with the field OpenREM names: code_value (mapped SRT -> SCT) or meaning."""
    if isinstance(value, list):
        return [_as_text(v, fact) for v in value]
    if isinstance(value, dict):
        return value["code"] if fact["quantity"].endswith(".code_value") else value.get("display")
    return value


def _matches(expected: Any, ours: Any, fact: dict[str, Any]) -> bool:
    quantity = fact["quantity"]
    ours = _as_text(_in_their_unit(ours, fact), fact)
    if fact.get("comparison", "").startswith("is None"):
        return ours is None
    if quantity.endswith(".code_value") and isinstance(expected, str):
        scheme = "SRT" if "-" in expected else "DCM"
        expected = concept(scheme, expected)[1]
    if isinstance(expected, list):  # several values: compared as sets (both tubes, all filters)
        values = ours if isinstance(ours, list) else [ours]
        if all(isinstance(v, int | float) for v in expected):
            return {round(float(v), 9) for v in expected} == {round(float(v), 9) for v in values}
        return set(map(str, expected)) == set(map(str, values))
    if quantity.endswith(("irradiation", "date_time_started")) and isinstance(ours, str):
        return (
            ours.replace("Z", "")
            .removesuffix("+00:00")
            .startswith(str(expected)[:23].rstrip("0").rstrip("."))
        )
    if quantity.endswith("patient_age_decimal"):
        return round(float(ours), 1) == float(expected)  # OpenREM keeps one decimal
    if quantity.endswith(("physician_name", "physician_reading_study", "operator_name")):
        # FHIR shows names as people write them; OpenREM joins several with " | "
        return ours == ", ".join(person(name) for name in str(expected).split(" | "))
    if quantity.endswith("patient_age"):  # an Age String: 061Y, 001D...
        years = age_years(str(expected))
        assert years is not None
        if str(expected).endswith("Y"):
            return int(float(ours)) == int(years)
        return abs(float(ours) - years) < 2 / 365.25
    values = ours if isinstance(ours, list) else [ours]
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        return any(
            v is not None
            and abs(float(v) - float(expected))
            <= 1e-9 * max(abs(float(v)), abs(float(expected))) + 1e-12
            for v in values
        )
    return any(
        str(expected) == str(v) or (isinstance(v, str) and v.startswith(str(expected)))
        for v in values
    )


@pytest.fixture(scope="module")
def corpus_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Answers]]:
    cache: dict[str, Answers] = {}
    opened: list[tuple[Any, SqliteStore]] = []

    def answers_for(group: str) -> Answers:
        if group not in cache:
            settings = Settings(data_dir=tmp_path_factory.mktemp("facts"))
            store = SqliteStore(settings.sqlite_path)
            ingestor = build_ingestor(store, settings)
            files = _files_of(group)
            for name in files:
                assert ingestor.ingest_file(CORPUS / name).status == "ingested", name
            token = add_user(store, "reader", "mpe")
            app = create_app(settings, store)
            opened.append((app, store))
            cache[group] = Answers(app.test_client(), token, files)
        return cache[group]

    yield answers_for
    # each app's audit thread held its app and store (open) until the test process ended
    for app, store in opened:
        app.extensions["kerma.audit"].stop()
        store.close()


def _expected_values(facts: list[dict[str, Any]]) -> list[Any]:
    """The distinct asserted values (two OpenREM tests often assert the same ones)."""
    return list({json.dumps(f["expected"], sort_keys=True): f["expected"] for f in facts}.values())


def _files_of(group: str) -> list[str]:
    """The files to ingest for a group. A lone image numbered -2, -3... also brings the images
    numbered before it: OpenREM asserts its facts at its position in the merged study."""
    files = group.split(" + ")
    if (
        len(files) == 1
        and (match := re.match(r"^(.*-)(\d)\.dcm$", files[0]))
        and files[0].startswith(("DX-Im", "MG-Im"))
    ):
        prefix, n = match.group(1), int(match.group(2))
        return [
            f"{prefix}{i}.dcm" for i in range(1, n + 1) if (CORPUS / f"{prefix}{i}.dcm").exists()
        ]
    return files


def _explained(group: str, quantity: str) -> str | None:
    for prefix, why in ELSEWHERE.items():
        if quantity.startswith(prefix):
            return why
    for part, why in NOT_KEPT.items():
        if part in quantity:
            return why
    return DIFFERENT.get((group, quantity))


@pytest.mark.parametrize("group", sorted(g for g in GROUPS if g not in FILE_ELSEWHERE))
def test_every_fact(group: str, corpus_api: Callable[[str], Answers]) -> None:
    answers = corpus_api(group)
    by_key: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
    for fact in GROUPS[group]:
        if _not_ours(fact) is None:
            by_key[(fact["quantity"], fact.get("event_index"))].append(fact)
    checked = explained = 0
    wrong: list[str] = []
    for (quantity, index), facts in by_key.items():
        if _explained(group, quantity):
            explained += 1
            continue
        ours = answers.answer(quantity, index)
        expected = _expected_values(facts)
        distinct = list(dict.fromkeys(map(str, expected)))
        if len(distinct) > 1:  # several values for one key: dual-source tubes, both breasts
            ok = _matches(expected, ours, facts[0])
        else:
            ok = _matches(expected[0], ours, facts[0])
        checked += 1
        if not ok:
            wrong.append(
                f"{quantity} [{index}]: expected {expected if len(distinct) > 1 else expected[0]}, Kerma says {ours}"
            )
    assert not wrong, "\n".join(wrong)
    assert checked + explained == len(by_key)
