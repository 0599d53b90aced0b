"""Pseudonymisation that holds, over the whole corpus (issue 19): every pseudonymised output
(the authority's Bulk Data $export, the CSV and XLSX exports, the surveys) is scanned for
every identifier the source files hold, by DICOM PS3.15 Annex E's reading of what identifies
(UIDs, accession numbers, patient IDs, names, birth dates, addresses); and a birth date cannot
be narrowed below a year from the ages and dates an output gives."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

import server.reports
from server.app import create_app
from server.auth.users import add_user
from server.config import Settings
from server.fhir.validation import validate
from server.ingest import build_ingestor
from server.mappings import yaml_names
from server.store.sqlite import SqliteStore
from tests.conftest import Api
from tests.fhir.test_bulk_export import _run
from tests.reports.test_department import text_of

CORPUS = Path(__file__).parent.parent / "data" / "dicom"
FILES = sorted(CORPUS.rglob("*.dcm"))
PERIOD = "from=1980-01-01&to=2029-12-31"
# PS3.15 table E.1-1: what identifies a patient or a study, besides every UID
_IDENTIFYING = {"AccessionNumber", "PatientID", "OtherPatientIDs", "PatientBirthDate",
                "PatientAddress", "IssuerOfPatientID", "StudyID", "MedicalRecordLocator",
                "RequestedProcedureID", "ScheduledProcedureStepID", "FillerOrderNumberImagingServiceRequest",
                "PlacerOrderNumberImagingServiceRequest"}  # fmt: skip
# UIDs of the standard (SOP classes, transfer syntaxes, coding schemes): public, not identifying
_PUBLIC_UIDS = {"SOPClassUID", "ReferencedSOPClassUID", "TransferSyntaxUID", "CodingSchemeUID",
                "MediaStorageSOPClassUID", "ImplementationClassUID", "MappingResourceUID",
                "ContextGroupExtensionCreatorUID", "ReferencedTransferSyntaxUIDInFile"}  # fmt: skip
# what a file says of its device and study: words a placeholder patient name may share
_DESCRIPTIVE = ("Manufacturer", "ManufacturerModelName", "StationName", "InstitutionName",
                "StudyDescription", "SeriesDescription", "ProtocolName", "DeviceSerialNumber",
                "CodeMeaning")  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, SqliteStore]]:
    """The corpus ingested."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("pseudonyms"),
                        base_url="http://kerma.test/fhir")  # fmt: skip
    store = SqliteStore(settings.sqlite_path)
    ingestor = build_ingestor(store, settings)
    for path in FILES:
        ingestor.ingest_file(path)
    yield settings, store
    store.close()


@pytest.fixture(scope="module")
def site(corpus: tuple[Settings, SqliteStore]) -> tuple[Api, Api, Api]:
    """Clients as the authority, an mpe and an admin."""
    settings, store = corpus
    client = create_app(settings, store).test_client()
    return tuple(
        Api(client, add_user(store, f"{r}-user", r)) for r in ("authority", "mpe", "admin")
    )  # type: ignore[return-value]


@pytest.fixture(scope="module")
def sources() -> list[tuple[Dataset, list[tuple[str, str]]]]:
    """Each file of the corpus as pydicom reads it, with its text values (seconds: read once
    for the tests below)."""
    read = [pydicom.dcmread(path, stop_before_pixels=True, force=True) for path in FILES]
    return [(ds, list(_values(ds))) for ds in read]


def _identifiers(values: list[list[tuple[str, str]]]) -> dict[str, str]:
    """Every identifying value of the corpus (lower case) -> the attribute it came from."""
    descriptive = {word for found in values for keyword, text in found
                   if keyword in _DESCRIPTIVE for word in _tokens(text)}  # fmt: skip
    found: dict[str, str] = {}
    for each in values:
        for keyword, value in each:
            if keyword in _DESCRIPTIVE:
                continue
            if keyword.endswith(("Name", "Physician")) and value.lower() in descriptive:
                continue  # a QA phantom "patient" named after a scanner model
            found.setdefault(value.lower(), keyword)
    return found


# what _values may yield from: UIDs, person names, sequences, and values pydicom has not
# typed yet (implicit VR, UN); else only the attributes named above
_MAY_IDENTIFY_VRS = {None, "SQ", "UI", "PN", "UN"}
_WORDS_KEPT = _IDENTIFYING | set(_DESCRIPTIVE)


def _tokens(text: str) -> set[str]:
    """The words and numbers of a text, as an identifier would stand in it."""
    return set(re.findall(r"[\w.\-]+", text.lower()))


def _values(ds: Dataset) -> Iterator[tuple[str, str]]:
    for tag in list(ds.keys()):
        try:
            raw_vr = ds.get_item(tag).VR  # as read, before pydicom converts the value
            if raw_vr not in _MAY_IDENTIFY_VRS and keyword_for_tag(tag) not in _WORDS_KEPT:
                continue  # nothing below yields it: not converted (most of the elements)
            element = ds[tag]
        except Exception:  # a private element the dictionary cannot read
            continue
        if element.VR == "SQ":
            for item in element.value or []:
                yield from _values(item)
            continue
        keyword = element.keyword or ""
        values = element.value if isinstance(element.value, list | tuple) or type(
            element.value).__name__ == "MultiValue" else [element.value]  # fmt: skip
        for value in values:
            text = str(value or "").strip()
            if element.VR == "UI" and _distinctive(text) and keyword not in _PUBLIC_UIDS:
                if not text.startswith("1.2.840.10008"):
                    yield keyword, text
            elif keyword in _WORDS_KEPT and _distinctive(text):
                yield keyword, text
            elif element.VR == "PN":
                yield from ((keyword, name) for name in _names(text))


def _distinctive(text: str) -> bool:
    """Long enough, and with a digit or a letter mix, to be found by chance in nothing else."""
    return len(text) >= 4 and text.upper() not in {"NONE", "REMOVED", "ANONYMOUS", "UNKNOWN"}


def _names(pn: str) -> list[str]:
    """A person name as it could be written out: family and given names of four letters or
    more ('Doe' is found inside too many words to test)."""
    parts = [p for p in re.split(r"[\^= ]+", pn) if len(p) >= 4]
    return [p for p in parts if p.upper() not in {"REMOVED", "ANONYMOUS", "UNKNOWN", "NONE", "NAME",
                                                  "PATIENT", "PHYSICS", "ANON"}]  # fmt: skip


@pytest.fixture(scope="module")
def outputs(site: tuple[Api, Api, Api], corpus: tuple[Settings, SqliteStore]) -> dict[str, str]:
    """Every pseudonymised output of the corpus, by name."""
    authority, mpe, _ = site
    outputs = {}
    manifest = _run(authority, "/fhir/$export")
    for o in manifest["output"]:
        answer = authority.get("/fhir" + o["url"].split("/fhir", 1)[1])
        assert answer.status_code == 200
        outputs[f"$export {o['type']}"] = answer.get_data(as_text=True)
    for level in ("study", "event"):
        answer = mpe.get(f"/stats/export/{level}.csv?{PERIOD}")
        assert answer.status_code == 200
        outputs[f"{level}.csv"] = answer.get_data(as_text=True)
        book = zipfile.ZipFile(io.BytesIO(mpe.get(f"/stats/export/{level}.xlsx?{PERIOD}").data))
        outputs[f"{level}.xlsx"] = "".join(book.read(n).decode() for n in book.namelist())
    survey = authority.get(f"/stats/survey.json?{PERIOD}")
    assert survey.status_code == 200
    outputs["survey.json"] = survey.get_data(as_text=True)
    for sheet in ("nhsbsp", "uk-radiography"):
        answer = authority.get(f"/stats/survey/{sheet}.csv?{PERIOD}")
        assert answer.status_code == 200
        outputs[f"{sheet}.csv"] = answer.get_data(as_text=True)
    settings, store = corpus
    for name in yaml_names("surveys"):  # each national survey, as the authority receives it
        national = Api(
            create_app(replace(settings, survey=name), store).test_client(), authority.token
        )
        answer = national.get(f"/stats/survey.json?{PERIOD}")
        assert answer.status_code == 200
        outputs[f"survey {name}.json"] = answer.get_data(as_text=True)
        pdf = national.get(f"/stats/survey.pdf?{PERIOD}")
        assert pdf.status_code == 200
        # the words of the document's own template are no identifier ("physics" is an
        # accession number in one file and a word of the QA count)
        outputs[f"survey {name}.pdf"] = " ".join(_tokens(text_of(pdf.data)) - _TEMPLATE_WORDS)
    return outputs


_TEMPLATE_WORDS = {word for page in (Path(server.reports.__file__).parent / "templates").glob("*.html")
                   for word in _tokens(page.read_text())}  # fmt: skip


@pytest.fixture(scope="module")
def identifiers(sources: list[tuple[Dataset, list[tuple[str, str]]]]) -> dict[str, str]:
    return _identifiers([values for _, values in sources])


def test_no_pseudonymised_output_carries_an_identifier_of_the_sources(
    outputs: dict[str, str], identifiers: dict[str, str]
) -> None:
    assert len(identifiers) > 500  # UIDs, accession numbers, IDs, names of 70 files
    assert len(outputs["$export Observation"].splitlines()) > 500
    leaks = [f"{name}: {attribute} {value!r}" for name, text in outputs.items()
             for value in identifiers.keys() & _tokens(text)
             for attribute in [identifiers[value]]]  # fmt: skip
    assert leaks == [], "\n".join(leaks)


def test_an_identified_export_does_carry_them(
    site: tuple[Api, Api, Api], identifiers: dict[str, str]
) -> None:
    """The scan finds what is there: the mpe's identified export holds the Study UIDs."""
    _, mpe, _ = site
    identified = mpe.get(f"/stats/export/study.csv?{PERIOD}&identified=true").get_data(as_text=True)
    uids = {v for v, attribute in identifiers.items() if attribute == "StudyInstanceUID"}
    assert len(uids & _tokens(identified)) > 30


def test_a_birth_date_cannot_be_narrowed_below_a_year(outputs: dict[str, str]) -> None:
    """Each row (day, whole-year age) allows a set of birth dates; however many examinations
    of one pseudonymous patient are combined, at least a whole year stays possible."""
    windows: dict[str, list[tuple[date, date]]] = defaultdict(list)
    for row in csv.DictReader(io.StringIO(outputs["study.csv"])):
        if row["age_years"] and row["patient_pseudonym"]:
            windows[row["patient_pseudonym"]].append(_born(row["date"], int(row["age_years"])))
    for line in outputs["$export Observation"].splitlines():
        resource: dict[str, Any] = orjson.loads(line)
        ages = [c["valueQuantity"]["value"] for c in resource.get("component", [])
                if c.get("valueQuantity", {}).get("code") == "a"]  # fmt: skip
        if ages and "effectiveDateTime" in resource:
            subject = resource["subject"]["reference"]
            windows[subject].append(_born(resource["effectiveDateTime"], int(ages[0])))
    assert sum(len(w) > 1 for w in windows.values()) >= 3  # patients with several examinations
    for patient, allowed in windows.items():
        # two examinations' windows are the same year or disjoint (one ID given to two people
        # in the test files): combining them never leaves less than a year
        for low, high in allowed:
            overlaps = [(lo, hi) for lo, hi in allowed if lo <= high and low <= hi]
            common = min(hi for _, hi in overlaps) - max(lo for lo, _ in overlaps)
            assert common.days >= 364, (patient, allowed)


def _born(day: str, age: int) -> tuple[date, date]:
    """The birth dates a whole-year age at a day allows, as Kerma defines the age: the year of
    the examination minus the year of birth."""
    year = int(day[:4]) - age
    return date(year, 1, 1), date(year, 12, 31)


def test_ages_are_the_calendar_year_of_the_examination_minus_the_birth_year(
    site: tuple[Api, Api, Api], outputs: dict[str, str],
    sources: list[tuple[Dataset, list[tuple[str, str]]]],
) -> None:  # fmt: skip
    """What the windows above assume, checked against the birth and study dates of the files."""
    _, mpe, _ = site
    text = mpe.get(f"/stats/export/study.csv?{PERIOD}&identified=true").get_data(as_text=True)
    pseudonyms = {r["study_instance_uid"]: r["study_pseudonym"]
                  for r in csv.DictReader(io.StringIO(text))}  # fmt: skip
    ages = {r["study_pseudonym"]: r["age_years"]
            for r in csv.DictReader(io.StringIO(outputs["study.csv"]))}  # fmt: skip
    expected: dict[str, set[int]] = defaultdict(set)
    for ds, _ in sources:
        birth, day = str(ds.get("PatientBirthDate", "")), str(ds.get("StudyDate", ""))
        uid = str(ds.get("StudyInstanceUID", ""))
        # placeholder birth dates (before 1900, after the study: 9999-01-01) give no age
        if (
            len(birth) == 8
            and len(day) == 8
            and uid in pseudonyms
            and "1900" <= birth[:4] <= day[:4]
        ):
            expected[pseudonyms[uid]].add(int(day[:4]) - int(birth[:4]))
    checked = [p for p, years in expected.items() if len(years) == 1 and ages.get(p)]
    assert len(checked) >= 10
    for pseudonym in checked:
        assert {int(ages[pseudonym])} == expected[pseudonym], pseudonym


def test_each_national_survey_of_the_corpus_is_valid(outputs: dict[str, str]) -> None:
    """The surveys the authority receives, made from the corpus, are valid R4 Bundles (their
    PDFs rendered above)."""
    for name in yaml_names("surveys"):
        bundle = orjson.loads(outputs[f"survey {name}.json"])
        assert bundle["type"] == "collection" and validate(bundle) == [], name


_DESCRIPTIONS = ("StudyDescription", "SeriesDescription", "ProtocolName",
                 "RequestedProcedureDescription", "PerformedProcedureStepDescription")  # fmt: skip


def test_the_examinations_own_words_are_removed(
    outputs: dict[str, str], sources: list[tuple[Dataset, list[tuple[str, str]]]]
) -> None:
    """PS3.15 removes study, series, requested procedure and protocol descriptions (free text
    that may name a person): no pseudonymised output carries one of the corpus's, unless the
    site keeps them (KERMA_PSEUDONYM_DESCRIPTIONS=keep, below)."""
    # (a description that is also a coded meaning or a body part, "Abdomen", is vocabulary)
    meanings = {
        text.lower() for _, values in sources for keyword, text in values
        if keyword == "CodeMeaning"
    }  # fmt: skip
    meanings |= {str(ds.get("BodyPartExamined", "")).lower() for ds, _ in sources}
    words = {str(ds.get(k)).strip() for ds, _ in sources for k in _DESCRIPTIONS
             if len(str(ds.get(k) or "").strip()) >= 6} - {None}  # fmt: skip
    words = {w for w in words if w.lower() not in meanings}
    assert len(words) > 30
    found = [(name, w) for name, text in outputs.items() for w in sorted(words)
             if f'"{w}"' in text or f",{w}," in text or f",{w}\n" in text]  # fmt: skip
    assert found == [], found
