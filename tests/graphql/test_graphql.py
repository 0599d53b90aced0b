"""GraphQL: the dose analytics give the numbers of the REST statistics, behind the same
tokens and roles; errors carry an OperationOutcome; openapi/schema.graphql is current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from server.config import Settings
from server.graphql.errors import Schema
from server.graphql.fhir_types import read_json
from server.graphql.schema import fhir_fields, instance_schema, sdl, system_schema
from tests.conftest import Api
from tests.stats.test_statistics import CAP, PERIOD

SCHEMA_FILE = Path(__file__).parent.parent.parent / "openapi" / "schema.graphql"
QUERY = """query($from: Date, $to: Date) {
  doseStatistics(quantity: "dlp_mgy_cm", groupBy: [PROCEDURE, DEVICE], from: $from, to: $to) {
    group { name value } summary { n median p75 mean sd } unit drl { set level ratio within }
  }
}"""
PERIOD_VARS = {"from": "2026-07-01", "to": "2026-12-01"}


def _post(api: Any, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = {"query": query, "variables": variables or {}}
    return api.client.post(
        "/fhir/$graphql",
        data=orjson.dumps(body),
        headers=api.headers({"Content-Type": "application/json"}),
    )


def test_dose_statistics_agree_with_rest(scanner: None, api: Api) -> None:
    answer = _post(api, QUERY, PERIOD_VARS)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    [row] = answer.get_json()["data"]["doseStatistics"]
    [rest] = api.get(f"/stats/dose?quantity=dlp_mgy_cm&group=procedure,device&{PERIOD}").get_json()[
        "rows"
    ]
    numbers = row["summary"]
    assert (
        (numbers["n"], numbers["median"], numbers["p75"], numbers["mean"])
        == (rest["n"], rest["median"], rest["p75"], rest["mean"])
        == (24, 700, 900, 700)
    )
    assert {g["name"]: g["value"] for g in row["group"]}["device_name"] == rest["device_name"]
    assert row["unit"] == "mGy·cm"


def test_load_and_devices(scanner: None, api: Api) -> None:
    query = """query($from: Date, $to: Date) {
      modalityLoad(groupBy: [WEEKDAY], from: $from, to: $to) { group { value } n }
      devices(from: $from, to: $to) { name serialNumber examinations first }
    }"""
    data = _post(api, query, PERIOD_VARS).get_json()["data"]
    assert sum(r["n"] for r in data["modalityLoad"]) == 24
    [device] = [d for d in data["devices"] if d["examinations"]]
    assert device["examinations"] == 24 and device["first"].startswith("2026-08-03")


def test_same_tokens_and_roles_and_errors_as_operation_outcomes(api: Api, as_role: Any) -> None:
    assert _post(as_role("nobody"), QUERY).status_code == 401
    assert _post(as_role("authority"), QUERY, PERIOD_VARS).status_code == 200  # aggregates
    [denied] = _post(as_role("authority"), "{ alerts { issue } }").get_json()["errors"]
    assert denied["extensions"]["resource"]["issue"][0]["code"] == "forbidden"
    bad = _post(api, '{ doseStatistics(quantity: "weight_in_stone") { unit } }').get_json()
    [error] = bad["errors"]
    assert "quantity must be one of" in error["message"]
    assert error["extensions"]["resource"]["resourceType"] == "OperationOutcome"
    assert "Traceback" not in str(bad)
    unknown = _post(api, "{ nonsense }").get_json()
    assert "nonsense" in unknown["errors"][0]["message"]


def test_graphiql_page(api: Api) -> None:
    page = api.client.get("/fhir/$graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and b"graphiql" in page.data.lower()


def test_the_schema_file_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == sdl(), "run `kerma graphql-schema`"


@pytest.mark.parametrize("rtype", ["ImagingStudy", "Observation", "Patient", "DetectedIssue"])
def test_an_instance_schema_is_what_strawberry_makes_of_its_root(rtype: str) -> None:
    """The instance level's schema is cut from the system schema's types; strawberry building
    it from the resource type as the root gives the same schema."""
    limits = Settings().graphql_max_depth, Settings().graphql_max_cost
    root = fhir_fields().types.resources[rtype]
    built = Schema(query=root, extensions=[])
    read_json(built._schema, fhir_fields().types)
    cut = instance_schema(rtype, *limits)
    assert cut.as_str() == built.as_str()
    assert cut._schema.query_type is system_schema(*limits)._schema.type_map[rtype]


def test_drl_compliance_timeline_and_alerts_agree_with_rest(site: Api) -> None:
    period = "from=2026-07-01&to=2026-12-01"
    query = """query($from: Date, $to: Date, $procedure: String) {
      drlCompliance(quantity: "dlp_mgy_cm", from: $from, to: $to) {
        group { name value } n median p75 unit drl { set examination level ratio within } }
      timeline(quantity: "dlp_mgy_cm", procedure: $procedure, period: MONTH, from: $from, to: $to) {
        unit points { period n median p75 } drl { set level } }
      alerts(from: $from, to: $to) { issue identified severity code deviceName status }
    }"""
    answer = _post(site, query, {**PERIOD_VARS, "procedure": CAP}).get_json()
    assert "errors" not in answer, answer
    result = answer["data"]
    [row] = result["drlCompliance"]
    [rest] = site.get(f"/stats/dose?quantity=dlp_mgy_cm&group=procedure&{period}").get_json()[
        "rows"
    ]
    assert (row["n"], row["median"], row["p75"], row["unit"]) == (24, 700, 900, "mGy·cm")
    assert row["drl"] == rest["drl"] == [{"set": "UKHSA GB 2022", "examination": "Chest, abdomen, pelvis",
                                          "level": 660.0, "ratio": 1.0606, "within": False}]  # fmt: skip

    months = site.get(f"/stats/dose?quantity=dlp_mgy_cm&group=month&{period}").get_json()["rows"]
    timeline = result["timeline"]
    assert [(p["period"], p["n"], p["median"], p["p75"]) for p in timeline["points"]] == [
        (m["month"], m["n"], m["median"], m["p75"]) for m in months
    ]
    assert [p["period"] for p in timeline["points"]] == ["2026-08", "2026-09", "2026-10", "2026-11"]
    assert timeline["drl"] == [{"set": "UKHSA GB 2022", "level": 660.0}]

    alerts = site.get(f"/stats/above-levels?{period}").get_json()["rows"]
    assert len(result["alerts"]) == len(alerts) == 12
    assert [(a["issue"], a["code"], a["deviceName"]) for a in result["alerts"]] == [
        (a["issue"], a["code"], a["device_name"]) for a in alerts
    ]


def test_persisted_queries_make_short_cacheable_gets(scanner: None, api: Api) -> None:
    import hashlib

    query = '{ modalityLoad(groupBy: [MODALITY], from: "2026-07-01", to: "2026-12-01") { n } }'
    digest = hashlib.sha256(query.encode()).hexdigest()
    extensions = orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}}).decode()

    def get() -> Any:
        return api.client.get("/fhir/$graphql", query_string={"extensions": extensions},
                              headers=api.headers()).get_json()  # fmt: skip

    [missing] = get()["errors"]
    assert missing["message"] == "PersistedQueryNotFound"
    assert missing["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    body = {"query": query, "extensions": orjson.loads(extensions)}
    sent = api.client.post("/fhir/$graphql", data=orjson.dumps(body),
                           headers=api.headers({"Content-Type": "application/json"}))  # fmt: skip
    assert sent.get_json()["data"]["modalityLoad"] == [{"n": 24}]
    assert get()["data"]["modalityLoad"] == [{"n": 24}]
    body["query"] = query.replace("MODALITY", "DEVICE")  # not the query of that hash
    wrong = api.client.post("/fhir/$graphql", data=orjson.dumps(body),
                            headers=api.headers({"Content-Type": "application/json"}))  # fmt: skip
    assert wrong.get_json()["errors"][0]["extensions"]["code"] == "INVALID_SHA256"
