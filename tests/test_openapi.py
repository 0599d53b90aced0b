"""The OpenAPI document: valid 3.1, current, and describing exactly the app's routes."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate

from server.api.openapi import render, spec_path
from server.app import create_app, openapi_json, openapi_spec
from server.config import Settings
from server.fhir import registry
from server.store.port import Store


def test_spec_is_valid_openapi_3_1() -> None:
    spec = openapi_spec()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_spec_file_is_current() -> None:
    assert spec_path().read_text(encoding="utf-8") == render(), "run `kerma openapi`"


def _app_routes(app: Any) -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/docs"):
            continue  # the documentation page itself, not the API
        if rule.endpoint.startswith("console."):
            continue  # the web console's pages (tests/console), not the API
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).rstrip("/") or "/"
        types = registry.resource_types() if "{rtype}" in path else [None]
        for rtype in types:
            concrete = path.replace("{rtype}", rtype) if rtype else path
            concrete = concrete.replace("{rid}", "{id}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((method.lower(), concrete))
    return routes


def test_spec_and_app_have_the_same_routes(app: Any) -> None:
    documented = {(m, p) for p, ops in openapi_spec()["paths"].items() for m in ops}
    assert _app_routes(app) == documented


def test_openapi_json_and_docs_are_served_without_a_token(client: Any) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.get_json()["openapi"] == "3.1.0"
    page = client.get("/docs/")
    assert page.status_code == 200 and b"swagger-ui" in page.data
    [url] = re.findall(r'url: "([^"]+)"', page.get_data(as_text=True))  # what the page fetches
    assert client.get(url).data == r.data


def test_the_document_is_read_when_first_asked_for(settings: Settings, store: Store) -> None:
    """Not while an app is made: most kerma serve processes never serve it."""
    openapi_json.cache_clear()
    app = create_app(settings, store)
    assert openapi_json.cache_info().currsize == 0
    assert app.test_client().get("/openapi.json").get_json()["openapi"] == "3.1.0"
    assert openapi_json.cache_info().currsize == 1
    app.extensions["kerma.audit"].stop()


def test_the_formats_kerma_cannot_produce_are_406_and_documented(api: Any) -> None:
    """Found by schemathesis: GET /fhir/Device/_history?_format=... answered an undocumented 406."""
    paths = openapi_spec()["paths"]
    for path in ("/fhir/Device/_history", "/fhir/Observation", "/fhir/metadata", "/fhir/$export"):
        assert "406" in paths[path]["get"]["responses"], path
        assert api.get(f"{path}?_format=stop-failed").status_code == 406, path
    assert "406" not in paths["/fhir/$graphql"]["get"]["responses"]  # JSON only, not negotiated
