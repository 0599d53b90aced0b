"""The UK radiography dose survey (the 2019 survey's examination sheet): one line per
radiography examination, its projections side by side in cGy·cm², checked against the GE
radiographs' own headers; pseudonymised."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import pydicom

from server.app import create_app
from server.config import Settings
from server.ingest import build_ingestor
from server.reports.uk_radiography import uk_radiography_layout
from server.store.port import Store
from tests.conftest import Api

CORPUS = Path(__file__).parent.parent / "data" / "dicom" / "openrem"
GE = [CORPUS / f"DX-Im-GE_XR220-{i}.dcm" for i in (1, 2, 3)]  # one examination, 3 radiographs
PERIOD = "from=2000-01-01&to=2030-01-01"


def _lines(settings: Settings, store: Store, token: str, *paths: Path) -> list[list[str]]:
    ingestor = build_ingestor(store, settings)
    for path in paths:
        assert ingestor.ingest_file(path).status == "ingested"
    api = Api(create_app(settings, store).test_client(), token)
    answer = api.get(f"/stats/survey/uk-radiography.csv?{PERIOD}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return list(csv.reader(io.StringIO(answer.get_data(as_text=True))))


def test_one_line_per_examination_with_its_projections(
    settings: Settings, store: Store, tokens: dict[str, str]
) -> None:
    header, *lines = _lines(settings, store, tokens["mpe"], *GE, CORPUS / "DX-RDSR-Canon_CXDI.dcm")
    assert header == uk_radiography_layout().columns(6) and len(header) == 14 + 6 + 6 * 11 + 8
    at = {name: n for n, name in reversed(list(enumerate(header)))}
    ge = next(line for line in lines if line[at["number of projections"]] == "3")
    images = [pydicom.dcmread(p, stop_before_pixels=True) for p in GE]
    # DAP (0018,115E) is in dGy·cm²: ten times it in cGy·cm², per projection and summed
    daps = [10 * float(ds.ImageAndFluoroscopyAreaDoseProduct) for ds in images]
    assert [float(ge[at[f"Projection {n} DAP"]]) for n in (1, 2, 3)] == daps == [4.1, 8.2, 20.5]
    assert float(ge[at["Study DAP dose"]]) == sum(daps) and ge[at["DAP dose units"]] == "cGy·cm²"
    assert ge[at["Projection 4 DAP"]] == ""  # three of six
    first = header.index("Projection 1 Name")
    projection = dict(zip(header[first : first + 11], ge[first : first + 11], strict=True))
    assert projection["Projection 1 Name"] == ""  # the device's own words: PS3.15 removes them
    assert float(projection["kVp"]) == float(images[0].KVP)
    assert float(projection["mAs"]) == float(images[0].ExposureInuAs) / 1000
    assert projection["AEC used"] == images[0].ExposureControlMode == "MANUAL"
    assert projection["Other projection info"].startswith("EI: 51.75")
    # pseudonymised: no UID, the date to the day, age in whole years, the standard procedure
    assert images[0].StudyInstanceUID not in ge and len(ge[at["Contributor's record ID"]]) == 20
    # (the exports' age: the examination's year minus the birth year, 2014 - 1957)
    born, day = images[0].PatientBirthDate, images[0].StudyDate
    assert ge[at["Exam date"]] == "2014-09-30" and ge[at["Patient age"]] == "57"
    assert int(day[:4]) - int(born[:4]) == 57
    assert ge[at["Protocol name"]] == "XR Abdomen 1 View"
    assert [line[at["PHE Record No"]] for line in lines] == ["1", "2"]


def test_more_than_six_projections_take_the_skeletal_survey_sheet(
    settings: Settings, store: Store, tokens: dict[str, str]
) -> None:
    ingestor = build_ingestor(store, settings)
    for n in range(7):  # seven radiographs of the GE examination, each taken at its own time
        ds = pydicom.dcmread(GE[n % 3])
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.AcquisitionDateTime = f"2014093014{n:02d}00"
        path = settings.data_dir / f"ge-{n}.dcm"
        ds.save_as(path)
        assert ingestor.ingest_file(path).status == "ingested"
    header, line = _lines(settings, store, tokens["mpe"])
    assert header == uk_radiography_layout().columns(20)
    assert line[header.index("number of projections")] == "7"
    assert line[header.index("Projection 7 DAP")] == "4.1"


def test_the_protocol_names_where_the_site_keeps_descriptions(
    settings: Settings, store: Store, tokens: dict[str, str]
) -> None:
    keep = replace(settings, pseudonym_descriptions="keep")
    header, line = _lines(keep, store, tokens["mpe"], GE[0])
    assert line[header.index("Projection 1 Name")] == "ABD_1_VIEW"  # (0018,1030) of the file
