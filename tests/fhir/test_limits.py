"""Requests that cost without end get a 400 with the bound, not a 500: a body nested 300 deep
(Python's recursion), a search with 5,000 parameters or 999 values of one (SQLite's parser
stack), a chain of three links; searches at the bounds still answer."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Api


def _nested(depth: int) -> dict[str, object]:
    extension: dict[str, object] = {"url": "http://x", "valueString": "v"}
    for _ in range(depth):
        extension = {"url": "http://x", "extension": [extension]}
    return {"resourceType": "Patient", "extension": [extension]}


def test_a_body_nested_300_deep_is_400(api: Api) -> None:
    r = api.client.post("/fhir/Patient", data=json.dumps(_nested(300)),
                        headers=api.headers({"Content-Type": "application/fhir+json"}))  # fmt: skip
    assert r.status_code == 400
    assert r.get_json()["issue"][0]["diagnostics"] == "the body nests deeper than 64 levels"
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": _nested(300), "request": {"method": "POST", "url": "Patient"}}]}  # fmt: skip
    r = api.client.post("/fhir", data=json.dumps(bundle),
                        headers=api.headers({"Content-Type": "application/fhir+json"}))  # fmt: skip
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("&".join(f"name=x{i}" for i in range(5000)), 400),
        ("&".join(f"name=x{i}" for i in range(100)), 200),
        ("name=" + ",".join(f"x{i}" for i in range(999)), 400),
        ("name=" + ",".join(f"x{i}" for i in range(100)), 200),
    ],
    ids=["5000 parameters", "100 parameters", "999 values", "100 values"],
)
def test_search_bounds(api: Api, query: str, status: int) -> None:
    r = api.get(f"/fhir/Patient?{query}")
    assert r.status_code == status, r.get_data(as_text=True)[:300]
    if status == 400:
        assert (
            "at most 100 search parameters, 100 values of one"
            in r.get_json()["issue"][0]["diagnostics"]
        )


def test_chains_of_three_links_are_400_and_of_two_answer(api: Api) -> None:
    three = api.get(
        "/fhir/Observation?subject:Patient.organization:Organization.partof:Organization.name=x"
    )
    assert three.status_code == 400
    assert "a chain has at most 2 links" in three.get_json()["issue"][0]["diagnostics"]
    assert api.get("/fhir/Observation?subject:Patient.organization.name=x").status_code == 200
