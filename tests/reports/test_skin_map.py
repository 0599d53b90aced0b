"""The skin dose map figure (H8) over REST and in the console: PNG, SVG and PDF of the Alphenix
examination's map, read back: the map's cells embedded one pixel per cell with the peak cell in
the darkest colour, the colour scale in Gy, the regions, the peak's value and place, the
isodose contours at the site's levels; audited, forbidden where it should be."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from server.calculated import observations as calculated
from server.calculated.skin_map import Layout, colour, dose_text, peak_place, picture
from server.config import Settings
from server.dose.skin import surface_view
from server.ingest import build_ingestor
from server.store.port import Store
from tests.conftest import Api

ALPHENIX = Path(__file__).parent.parent / "data/dicom/openrem/RF-RDSR-Canon-Alphenix-rotational.dcm"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def peak(store: Store, settings: Settings, api: Api) -> dict:  # type: ignore[type-arg]
    assert build_ingestor(store, settings).ingest_file(ALPHENIX).status == "ingested"
    [found] = api.search("/fhir/Observation?code=peak-skin-dose")
    return found  # type: ignore[no-any-return]


def _images(svg: str) -> list[Image.Image]:
    root = ET.fromstring(svg)
    return [Image.open(io.BytesIO(base64.b64decode(
        (i.get("{http://www.w3.org/1999/xlink}href") or "").split(",", 1)[1]))).convert("RGBA")
        for i in root.iter(f"{SVG}image")]  # fmt: skip


def _texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_svg_has_the_map_its_scale_and_its_peak(peak: dict, api: Api) -> None:  # type: ignore[type-arg]
    answer = api.get(f"/fhir/Observation/{peak['id']}/$skin-dose-map?_format=svg")
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml"
    svg = answer.get_data(as_text=True)
    grid = calculated.skin_dose_grid(peak)
    assert grid is not None and grid.shape == (94, 94)
    unrolled = _images(svg)[0]  # one pixel per 1 cm cell
    assert unrolled.size == (94, 94)
    row, col = np.unravel_index(np.nanargmax(grid), grid.shape)
    assert unrolled.getpixel((int(col), int(row))) == (*colour(1.0), 255)
    assert unrolled.getpixel((93, 2))[3] == 0  # not skin: the head is narrower than the torso
    texts = _texts(svg)
    assert {"front", "left side", "back", "right side", "Skin dose (Gy)", "R", "L"} <= set(texts)
    peak_gy = peak["valueQuantity"]["value"]
    title = next(t for t in texts if t.startswith("Skin dose map"))
    assert f"peak {dose_text(peak_gy)}" in title and "7.66 mGy" in title
    assert "on the left side" in title  # the beam entered the patient's left (the lateral arc)
    assert not any(
        t.endswith(" Gy") and t[0].isdigit() for t in texts
    )  # no contour: 2 Gy not reached


def test_contours_where_the_dose_reaches_the_levels() -> None:
    """A made-up map reaching 4 Gy on the back: contours at 2 and 3 Gy, none at 5 Gy."""
    layout = Layout(front_columns=20, side_columns=30)
    grid = np.zeros((60, 100))
    grid[30:40, 55:65] = 4.0  # the back is columns 50 to 69
    svg = picture(grid, layout, (2.0, 3.0, 5.0), "2026-12-01", "svg").decode()
    texts = _texts(svg)
    assert "2 Gy" in texts and "3 Gy" in texts and "5 Gy" not in texts
    assert "on the back" in peak_place(grid, layout)
    front, back = (surface_view(grid, 20, 30, side) for side in ("front", "back"))
    assert np.nanmax(front) == 0.0 and np.nanmax(back) == 4.0  # seen from behind only


def test_png_and_pdf(peak: dict, api: Api) -> None:  # type: ignore[type-arg]
    png = api.get(f"/fhir/Observation/{peak['id']}/$skin-dose-map")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert Image.open(io.BytesIO(png.get_data())).size == (1100, 640)
    pdf = api.get(f"/fhir/Observation/{peak['id']}/$skin-dose-map", Accept="application/pdf")
    assert pdf.mimetype == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.get_data())).pages[0].extract_text()
    assert "Skin dose (Gy)" in text and "7.66 mGy" in text


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
