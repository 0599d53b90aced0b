"""The CapabilityStatement says exactly what is served: every operation route of the app is
listed with its OperationDefinition and every listed one is routed; the interactions it names
answer; Kerma's own OperationDefinitions are served and valid; and the IG server statements it
`instantiates` are met, interaction by interaction and search parameter by parameter."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationdefinition import OperationDefinition

IG = Path(__file__).parent.parent / "data" / "fhir-rds-ig" / "capabilitystatements"
_OP = re.compile(r"^/fhir(?:/(<rtype>|[A-Z]\w+))?(?:/<rid>)?/\$([a-z-]+)$")
_NOT_OPERATIONS = ("export-status", "export-file")  # Bulk Data's status and file URLs


def _statement(client: Any) -> dict[str, Any]:
    answer = client.get("/fhir/metadata")
    assert answer.status_code == 200
    return answer.get_json()  # type: ignore[no-any-return]


def _routed(app: Any) -> set[tuple[str, str]]:
    """(level, operation) of every operation route: level "system", a type, or "*"."""
    found = set()
    for rule in app.url_map.iter_rules():
        match = _OP.match(rule.rule)
        if match and match.group(2) not in _NOT_OPERATIONS:
            where = match.group(1)
            found.add(
                (
                    "system" if where is None else "*" if where == "<rtype>" else where,
                    match.group(2),
                )
            )
    return found


def _listed(cs: dict[str, Any]) -> set[tuple[str, str]]:
    rest = cs["rest"][0]
    found = {("system", op["name"]) for op in rest["operation"]}
    stored = [r for r in rest["resource"] if r.get("interaction")]
    every = set.intersection(*({op["name"] for op in r["operation"]} for r in stored))
    found |= {("*", name) for name in every}
    found |= {(r["type"], op["name"]) for r in rest["resource"] for op in r["operation"]
              if op["name"] not in every or not r.get("interaction")}  # fmt: skip
    return found


def test_every_operation_route_is_listed_and_every_listed_operation_routed(
    app: Any, client: Any
) -> None:
    cs = _statement(client)
    CapabilityStatement.model_validate(cs)
    routed, listed = _routed(app), _listed(cs)
    assert routed == listed
    assert {"graphql", "validate", "everything", "export", "reassign", "skin-dose-map"} <= {
        n for _, n in listed
    }


def test_kermas_own_operations_have_their_definitions(client: Any) -> None:
    cs = _statement(client)
    definitions = {op["definition"] for r in cs["rest"][0]["resource"] for op in r["operation"]}
    own = sorted(
        d
        for d in definitions
        if "/OperationDefinition/" in d and not d.startswith("http://hl7.org")
    )
    assert len(own) >= 8
    for canonical in own:
        path = canonical[canonical.index("/fhir/") :]
        answer = client.get(path)  # public, like the statement
        assert answer.status_code == 200, canonical
        definition = answer.get_json()
        OperationDefinition.model_validate(definition)
        assert definition["url"] == canonical
    assert client.get("/fhir/OperationDefinition/nonsense").status_code == 404


def test_the_interactions_it_lists_answer(api: Any, client: Any) -> None:
    cs = _statement(client)
    patient = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Patient")
    codes = {i["code"] for i in patient["interaction"]}
    assert {"read", "create", "update", "patch", "delete", "search-type"} <= codes
    assert patient["conditionalUpdate"] is True and patient["conditionalDelete"] == "single"
    assert set(cs["format"]) >= {"application/fhir+json", "application/fhir+xml"}
    assert cs["patchFormat"] == ["application/json-patch+json"]
    made = api.post("/fhir/Patient", {"resourceType": "Patient"}).get_json()
    assert api.client.patch(f"/fhir/Patient/{made['id']}", data=b"[]", headers=api.headers(
        {"Content-Type": "application/json-patch+json"})).status_code == 200  # fmt: skip
    assert api.get("/fhir/Patient?_format=xml").status_code == 200


def test_the_ig_server_statements_it_instantiates_are_met(client: Any) -> None:
    cs = _statement(client)
    ours = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert cs["instantiates"]
    for canonical in cs["instantiates"]:
        name = canonical.rsplit("/", 1)[1]
        ig = json.loads((IG / f"CapabilityStatement-{name}.json").read_text())
        assert ig["url"] == canonical
        for rest in ig["rest"]:
            assert rest["mode"] == "server"
            for wanted in rest["resource"]:
                mine = ours[wanted["type"]]
                interactions = {i["code"] for i in mine["interaction"]}
                assert {i["code"] for i in wanted.get("interaction", [])} <= interactions, wanted[
                    "type"
                ]
                params = {p["name"] for p in mine["searchParam"]}
                assert {p["name"] for p in wanted.get("searchParam", [])} <= params, wanted["type"]
