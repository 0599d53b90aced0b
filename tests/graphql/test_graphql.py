"""GraphQL: the dose analytics give the numbers of the REST statistics, behind the same
tokens and roles; errors carry an OperationOutcome; openapi/schema.graphql is current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from server.graphql.schema import schema
from tests.conftest import Api
from tests.stats.test_statistics import PERIOD

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
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema.as_str() + "\n", (
        "run `kerma graphql-schema`"
    )
