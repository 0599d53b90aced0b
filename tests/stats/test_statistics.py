"""Statistics over the dose facts: numbers checked by hand and against numpy, over REST as
JSON and CSV, with DRL comparisons, periods in the site's time zone, load and proposals."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pytest

from server.config import Settings
from server.dose.statistics import combine, split, summarise
from server.ingest import build_ingestor
from server.store.port import Store
from tests.conftest import Api
from tests.ingest.test_monitoring import SIEMENS, _series

CAP = "CT Chest/Abdomen/Pelvis w IV Contrast"
PERIOD = "from=2026-07-01&to=2026-12-01"


def test_summaries_agree_with_numpy() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(5, 0.6, 5000)
    values[::97] = np.nan  # unknown values are left out
    groups = rng.integers(0, 40, 5000)
    for s in summarise(values, groups):
        mine = values[(groups == s.group) & ~np.isnan(values)]
        assert s.n == mine.size
        assert s.median == pytest.approx(np.median(mine))
        assert (s.p25, s.p75, s.p95) == pytest.approx(tuple(np.percentile(mine, [25, 75, 95])))
        assert s.sd == pytest.approx(np.std(mine, ddof=1))
        assert (s.min, s.max, s.mean) == pytest.approx((mine.min(), mine.max(), mine.mean()))
    [one] = summarise([3.0], [0])
    assert (one.n, one.sd, one.median, one.p95) == (1, 0.0, 3.0, 3.0)
    assert summarise([], []) == []
    codes = combine([np.array([2, 0]), np.array([1, 3])], [3, 4])
    assert [split(int(c), [3, 4]) for c in codes] == [[2, 1], [0, 3]]


def test_dose_statistics_by_procedure_with_the_drl(
    scanner: None, settings: Settings, store: Store, tokens: dict[str, str]
) -> None:
    api = _api(settings, store, tokens, drl_sets="UKHSA GB 2022")
    body = api.get(f"/stats/dose?quantity=dlp_mgy_cm&group=procedure&{PERIOD}").get_json()
    [row] = body["rows"]
    assert row["procedure"] == CAP and row["n"] == 24
    assert (row["min"], row["p25"], row["median"], row["p75"], row["max"]) == (
        500,
        500,
        700,
        900,
        900,
    )
    assert row["mean"] == 700 and row["sd"] == pytest.approx(200 * (24 / 23) ** 0.5)
    assert row["unit"] == "mGy·cm"
    assert row["drl"] == [{"set": "UKHSA GB 2022", "examination": "Chest, abdomen, pelvis",
                           "level": 660.0, "ratio": 1.0606, "within": False}]  # fmt: skip


def test_by_month_and_device_as_csv(scanner: None, api: Api) -> None:
    text = api.get(
        f"/stats/dose?quantity=dlp_mgy_cm&group=month,device&format=csv&{PERIOD}"
    ).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    # the studies of 115, 108... 38 days before 26 November (500), then 26, 24... 4 days
    # before (900): 31 October is the first of those
    assert [(r["month"], r["n"], r["median"]) for r in rows] == [
        ("2026-08", "5", "500.0"), ("2026-09", "4", "500.0"), ("2026-10", "4", "500.0"),
        ("2026-11", "11", "900.0"),
    ]  # fmt: skip
    assert {r["device_name"] for r in rows} == {"SIEMENS SOMATOM Definition Flash CTAWP00001"}


def test_per_event_by_protocol_and_load(scanner: None, api: Api) -> None:
    body = api.get(
        f"/stats/dose?quantity=ctdivol_mgy&level=event&group=protocol&{PERIOD}"
    ).get_json()
    tap = next(r for r in body["rows"] if r["protocol"] == "TAP")
    assert (tap["n"], tap["median"], tap["p95"]) == (24, 11.5, 13.0)
    load = api.get(f"/stats/load?quantity=dlp_mgy_cm&group=weekday&{PERIOD}").get_json()["rows"]
    assert sum(r["n"] for r in load) == 24 and all(r["weekday"][0] in "1234567" for r in load)


def test_a_local_drl_proposal(scanner: None, api: Api) -> None:
    [row] = api.get(f"/stats/drl-proposal?quantity=dlp_mgy_cm&{PERIOD}").get_json()["rows"]
    assert (row["procedure"], row["n"], row["devices"]) == (CAP, 24, 1)
    assert row["typical_value"] == 700 and row["proposal"] == 700  # one device: its median


def test_who_may_read_statistics_and_bad_queries(scanner: None, as_role: Any, api: Api) -> None:
    url = f"/stats/dose?quantity=dlp_mgy_cm&{PERIOD}"
    assert as_role("authority").get(url).status_code == 200  # aggregates only
    assert as_role("nobody-token").get(url).status_code == 401
    for bad in ("quantity=weight", "quantity=dlp_mgy_cm&group=colour", "quantity=dlp_mgy_cm&level=x",
                "quantity=dlp_mgy_cm&from=yesterday", "quantity=dlp_mgy_cm&from=2026-12-01&to=2026-01-01",
                "quantity=dlp_mgy_cm&group=device,device"):  # fmt: skip
        answer = api.get(f"/stats/dose?{bad}")
        assert answer.status_code == 400 and answer.get_json()["error"], bad
    # a default period reaching before year 1 was a 500 (found by schemathesis)
    early = api.get("/stats/dose?quantity=dlp_mgy_cm&to=0001-12-07")
    assert early.status_code == 400 and "from 1900-01-01 on" in early.get_json()["error"]
    answer = api.get("/stats/dose?quantity=dlp_mgy_cm&to=1900-03-01")
    assert answer.status_code == 200 and answer.get_json()["from"].startswith("1900-01-01")


def _api(settings: Settings, store: Store, tokens: dict[str, str], **changes: str) -> Api:
    from dataclasses import replace

    from server.app import create_app

    app = create_app(replace(settings, **changes), store)
    return Api(app.test_client(), tokens["mpe"])


def test_periods_are_the_sites_local_time_with_daylight_saving() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from server.stats.service import _period_codes

    berlin = ZoneInfo("Europe/Berlin")
    moments = [
        datetime(2026, 10, 31, 23, 30, tzinfo=UTC),  # 00:30 CET on 1 November
        datetime(2026, 7, 31, 22, 30, tzinfo=UTC),  # 00:30 CEST on 1 August
        datetime(2026, 7, 31, 21, 30, tzinfo=UTC),  # 23:30 CEST, still July
    ]
    dates = np.array([m.timestamp() for m in moments])
    codes, labels = _period_codes(dates, "%Y-%m", berlin)
    assert [labels[c] for c in codes] == ["2026-11", "2026-08", "2026-07"]
    codes, labels = _period_codes(dates, "%Y-%m", UTC)
    assert [labels[c] for c in codes] == ["2026-10", "2026-07", "2026-07"]


def test_a_study_written_after_a_query_counts_in_the_next(
    scanner: None, api: Api, store: Store, settings: Settings
) -> None:
    from pydicom import dcmread

    url = f"/stats/dose?quantity=dlp_mgy_cm&{PERIOD}"
    assert api.get(url).get_json()["rows"][0]["n"] == 24
    _series(build_ingestor(store, settings), dcmread(SIEMENS), range(1, 0, -1), 13.0, 2000.0)
    [row] = api.get(url).get_json()["rows"]
    assert (row["n"], row["max"]) == (25, 2000)


def test_statistics_as_fhir_measure_reports(
    scanner: None, settings: Settings, store: Store, tokens: dict[str, str], as_role: Any
) -> None:
    from server.fhir.validation import validate

    api = _api(settings, store, tokens, drl_sets="UKHSA GB 2022")
    url = "/fhir/Measure/dose-dlp-mgy-cm-study/$evaluate-measure?periodStart=2026-07-01&periodEnd=2026-11-30&group=procedure"
    answer = api.get(url)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    report = answer.get_json()
    assert validate(report) == []
    # the canonical is where this Kerma serves the Measure (KERMA_BASE_URL)
    assert report["measure"] == f"{settings.base_url}/Measure/dose-dlp-mgy-cm-study"
    assert "reporter" not in report  # the site is not set up in this test
    [group] = report["group"]
    assert group["population"][0]["count"] == 24 and group["measureScore"]["value"] == 700
    [stratum] = group["stratifier"][0]["stratum"]
    assert stratum["value"] == {  # coded (the procedure is Kerma's local one), mrp-2 kept
        "coding": [{"system": "https://kerma.example.org/fhir/CodeSystem/procedure",
                    "code": "ct-cap-w", "display": CAP}],
        "text": CAP,
    } and "component" not in stratum  # fmt: skip
    assert stratum["measureScore"] == {
        "value": 700.0,
        "unit": "mGy·cm",
        "system": "http://unitsofmeasure.org",
        "code": "mGy.cm",
    }
    details = {e["url"]: e for e in stratum["extension"][0]["extension"]}
    assert (
        details["p75"]["valueQuantity"]["value"] == 900
        and details["min"]["valueQuantity"]["value"] == 500
    )
    drl = {e["url"]: e for e in details["drl"]["extension"]}
    assert drl["set"]["valueString"] == "UKHSA GB 2022" and drl["ratio"]["valueDecimal"] == 1.0606
    # the same numbers as the JSON statistics
    [row] = api.get(f"/stats/dose?quantity=dlp_mgy_cm&group=procedure&{PERIOD}").get_json()["rows"]
    assert (row["median"], row["p75"], row["n"]) == (700, 900, 24)
    measure = api.get("/fhir/Measure/dose-dlp-mgy-cm-study").get_json()
    assert measure["url"] == report["measure"]
    assert (
        validate(measure) == [] and measure["scoring"]["coding"][0]["code"] == "continuous-variable"
    )
    assert as_role("authority").get(url).status_code == 200
    assert api.get("/fhir/Measure/nonsense/$evaluate-measure").status_code == 404
    assert api.get(url.replace("2026-11-30", "30.11.2026")).status_code == 400


@pytest.mark.parametrize(
    ("chart", "words"),
    [
        (f"timeline.svg?quantity=dlp_mgy_cm&procedure={CAP}&{PERIOD}", ["Median DLP (mGy·cm)", "DRL UKHSA GB 2022: 660 mGy·cm", "2026-11"]),
        (f"boxplot.svg?quantity=dlp_mgy_cm&{PERIOD}", ["CTAWP00001", "DLP (mGy·cm)", "DLP per examination, per device"]),
        (f"histogram.svg?quantity=ctdivol_mgy&level=event&{PERIOD}", ["Irradiation events", "CTDIvol (mGy)"]),
        (f"load.svg?quantity=dlp_mgy_cm&{PERIOD}", ["Mon", "Hour of the day", "Examinations by weekday and hour"]),
    ],
)  # fmt: skip
def test_charts_render(
    scanner: None,
    settings: Settings,
    store: Store,
    tokens: dict[str, str],
    chart: str,
    words: list[str],
) -> None:
    """Each chart is SVG with its words as text, and renders to a PNG that is not blank."""
    import cairosvg
    from PIL import Image

    api = _api(settings, store, tokens, drl_sets="UKHSA GB 2022")
    answer = api.get(f"/stats/charts/{chart}")
    assert answer.status_code == 200 and answer.content_type == "image/svg+xml"
    svg = answer.get_data(as_text=True)
    for word in words:
        assert word in svg, word
    png = Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg.encode())))
    assert png.size[0] > 500 and png.size[1] > 250
    colours = png.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 20  # drawn, not blank


def test_unknown_chart(api: Api) -> None:
    assert api.get("/stats/charts/pie.svg?quantity=dlp_mgy_cm").status_code == 404


def test_the_device_table(scanner: None, api: Api) -> None:
    rows = api.get(f"/stats/devices?{PERIOD}").get_json()["rows"]
    [siemens] = [r for r in rows if r["examinations"]]
    assert siemens["name"] == "SIEMENS SOMATOM Definition Flash CTAWP00001"
    assert (siemens["type"], siemens["manufacturer"], siemens["model"]) == (
        "CT",
        "SIEMENS",
        "SOMATOM Definition Flash",
    )
    assert siemens["serial_number"] and siemens["examinations"] == 24
    assert siemens["first"].startswith("2026-08-03T") and siemens["last"].startswith("2026-11-22T")
