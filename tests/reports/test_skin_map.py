"""The skin dose map over REST (H8): PNG and SVG of the Alphenix examination's map, read back
(the peak cell in the darkest colour, the scale's text), audited, forbidden where it should be."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.calculated import observations as calculated
from server.calculated.skin_map import CELL_PX, MARGIN_PX, colour
from server.config import Settings
from server.ingest import build_ingestor
from server.store.port import Store
from tests.conftest import Api

ALPHENIX = Path(__file__).parent.parent / "data/dicom/openrem/RF-RDSR-Canon-Alphenix-rotational.dcm"


@pytest.fixture
def peak(store: Store, settings: Settings, api: Api) -> dict:  # type: ignore[type-arg]
    assert build_ingestor(store, settings).ingest_file(ALPHENIX).status == "ingested"
    [found] = api.search("/fhir/Observation?code=peak-skin-dose")
    return found  # type: ignore[no-any-return]


def test_png_shows_the_map(peak: dict, api: Api) -> None:  # type: ignore[type-arg]
    answer = api.get(f"/fhir/Observation/{peak['id']}/$skin-dose-map")
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    image = Image.open(io.BytesIO(answer.get_data())).convert("RGBA")
    grid = calculated.skin_dose_grid(peak)
    assert grid is not None and grid.shape == (94, 94)
    assert image.size == (94 * CELL_PX, 94 * CELL_PX + 2 * MARGIN_PX)
    row, col = np.unravel_index(np.nanargmax(grid), grid.shape)
    centre = (int(col) * CELL_PX + CELL_PX // 2, MARGIN_PX + int(row) * CELL_PX + CELL_PX // 2)
    assert image.getpixel(centre) == (*colour(1.0), 255)
    unexposed = (2, MARGIN_PX + 90 * CELL_PX + 2)  # the feet end of the torso, front
    assert image.getpixel(unexposed) == (*colour(0.0), 255)
    assert image.getpixel((93 * CELL_PX, MARGIN_PX + 2))[3] == 0  # not skin: the head is narrower


def test_svg_says_the_peak(peak: dict, api: Api) -> None:  # type: ignore[type-arg]
    answer = api.get(f"/fhir/Observation/{peak['id']}/$skin-dose-map?_format=svg")
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml"
    root = ET.fromstring(answer.get_data(as_text=True))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts[:4] == ["front", "left", "back", "right"]
    peak_mgy = peak["valueQuantity"]["value"] * 1000
    assert texts[-1] == f"0 - {peak_mgy:.3g} mGy (peak)"
    cells = list(root.iter("{http://www.w3.org/2000/svg}rect"))
    grid = calculated.skin_dose_grid(peak)
    assert grid is not None and len(cells) == np.count_nonzero(~np.isnan(grid))
    by_accept = api.get(f"/fhir/Observation/{peak['id']}/$skin-dose-map", Accept="image/svg+xml")
    assert by_accept.mimetype == "image/svg+xml"


def test_bad_requests(peak: dict, api: Api, as_role) -> None:  # type: ignore[no-untyped-def,type-arg]
    gif = api.get(f"/fhir/Observation/{peak['id']}/$skin-dose-map?_format=gif")
    assert gif.status_code == 406 and gif.get_json()["resourceType"] == "OperationOutcome"
    [summary] = api.search("/fhir/Observation?code=73569-6")
    assert api.get(f"/fhir/Observation/{summary['id']}/$skin-dose-map").status_code == 404
    assert (
        as_role("authority").get(f"/fhir/Observation/{peak['id']}/$skin-dose-map").status_code
        == 403
    )
    assert api.client.get(f"/fhir/Observation/{peak['id']}/$skin-dose-map").status_code == 401
    assert api.get(f"/fhir/Observation/{peak['id']}/$skin-dose-map").status_code == 200
    audits = as_role("admin").search("/fhir/AuditEvent?_count=1000")
    paths = {x.get("description") for a in audits for x in a["entity"]}
    assert f"GET /fhir/Observation/{peak['id']}/$skin-dose-map" in paths
