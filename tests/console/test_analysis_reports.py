"""The analysis page (charts titled in words and units, DRL compliance, a procedure chosen by
its code) and the reports page (asked for, made in the background, downloaded, listed), as a
physicist and as a radiographer bound to the fluoroscopy unit use them."""

from __future__ import annotations

import re
import time

import pytest
from flask.testing import FlaskClient

from tests.console.conftest import World, csrf, sign_in, text
from tests.reports.test_department import text_of

PERIOD = "from=1990-01-01&to=2020-01-01"
CAP = "CT Chest/Abdomen/Pelvis w IV Contrast"


@pytest.fixture
def marie(client: FlaskClient, world: World) -> FlaskClient:
    assert sign_in(client, "marie").status_code == 302
    return client


def _charts(page: str) -> list[str]:
    return [src.replace("&amp;", "&") for src in re.findall(r'<img src="([^"]+\.svg[^"]*)"', page)]


def test_the_analysis_page(marie: FlaskClient) -> None:
    page = marie.get(f"/analysis?quantity=dlp_mgy_cm&{PERIOD}").get_data(as_text=True)
    words = text(page)
    # the CT examination's DLP (724.5 mGy·cm in its RDSR, shown with 3 digits) against the UK DRL of 660 mGy·cm
    assert f"{CAP} 1 725 mGy·cm 725 mGy·cm UKHSA GB 2022: 660 mGy·cm 1.0978 no, above" in words
    charts = _charts(page)
    assert [c.split("?")[0] for c in charts] == [f"/analysis/{k}.svg" for k in
                                                 ("timeline", "boxplot", "histogram", "load")]  # fmt: skip
    titles = {"timeline": "Median DLP (mGy·cm)", "boxplot": "DLP (mGy·cm)",
              "histogram": "Examinations", "load": "Hour of the day"}  # fmt: skip
    for url in charts:
        answer = marie.get(url)
        assert answer.status_code == 200 and answer.content_type == "image/svg+xml"
        svg = answer.get_data(as_text=True)
        assert titles[url.split("/")[2].split(".")[0]] in svg
        assert "dlp_mgy_cm" not in svg  # words, never field names


def test_a_procedure_chosen_by_its_code(marie: FlaskClient) -> None:
    page = marie.get(f"/analysis?procedure=ct-cap-w&{PERIOD}").get_data(as_text=True)
    assert f'value="{CAP}"' in page  # the code became the procedure's name
    [timeline] = [c for c in _charts(page) if "/timeline.svg" in c]
    svg = marie.get(timeline).get_data(as_text=True)
    assert "DRL UKHSA GB 2022: 660 mGy·cm" in svg and CAP in svg


def test_a_bad_choice_is_said_on_the_page(marie: FlaskClient) -> None:
    answer = marie.get("/analysis?from=yesterday")
    assert answer.status_code == 200
    assert "from must be a date YYYY-MM-DD" in text(answer.get_data(as_text=True))
    assert marie.get("/analysis/pie.svg").status_code == 404


def test_a_radiographer_analyses_her_devices_only(client: FlaskClient, world: World) -> None:
    assert sign_in(client, "rita").status_code == 302
    page = client.get(f"/analysis?quantity=dlp_mgy_cm&{PERIOD}").get_data(as_text=True)
    assert CAP not in text(page)
    boxplot = client.get(f"/analysis/boxplot.svg?quantity=dap_gy_m2&{PERIOD}").get_data(
        as_text=True
    )
    assert "SOMATOM" not in boxplot
    assert "Site-wide reports are made by roles" in text(
        client.get("/reports").get_data(as_text=True)
    )
    form = {"kind": "department", "start": "1990-01-01", "end": "2019-12-31",
            "csrf_token": csrf(client.get("/analysis").get_data(as_text=True))}  # fmt: skip
    assert client.post("/reports", data=form).status_code == 403


def test_a_survey_asked_for_watched_and_downloaded(marie: FlaskClient) -> None:
    token = csrf(marie.get("/reports").get_data(as_text=True))
    form = {"kind": "survey", "start": "1990-01-01", "end": "2019-12-31", "csrf_token": token}
    asked = marie.post("/reports", data=form)
    assert asked.status_code == 303 and "/reports?task=" in asked.headers["Location"]
    deadline = time.monotonic() + 60
    while True:
        page = marie.get(asked.headers["Location"]).get_data(as_text=True)
        if "Done." in page or "Failed" in page or time.monotonic() > deadline:
            break
        assert 'http-equiv="refresh"' in page  # watched without a script
        time.sleep(0.2)
    words = text(page)
    assert "National DRL survey asked by marie Done." in words, words
    assert "National DRL survey 1990-01-01 to 2020-01-01" in words  # listed with the earlier ones
    pdf_link, bundle_link = re.findall(r'href="(/reports/[^"]+\.(?:pdf|json))"', page)[:2]
    pdf = marie.get(pdf_link)
    assert (
        pdf.content_type == "application/pdf" and "attachment" in pdf.headers["Content-Disposition"]
    )
    assert CAP in text_of(pdf.data)
    bundle = marie.get(bundle_link).get_json()
    assert bundle["resourceType"] == "Bundle" and bundle["entry"]
    assert marie.post("/reports", data={**form, "start": "someday"}).status_code == 400
