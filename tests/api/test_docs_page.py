"""The API's docs page (/docs, swagger-ui) in a real browser on a machine with no internet: it
reads the OpenAPI document from Kerma and lists the operations."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_graphiql import served  # noqa: F401
from tests.browser import browser_page

ARTEFACTS = Path(__file__).parent.parent.parent / "test-artefacts" / "docs"


def test_the_docs_page_lists_the_documented_operations(served: str) -> None:  # noqa: F811
    with browser_page(ARTEFACTS) as (page, requested):
        page.goto(f"{served}/docs/")
        search = page.locator(".opblock-get", has_text="/fhir/Observation").first
        search.wait_for()
        page.screenshot(path=str(ARTEFACTS / "docs.png"))
        assert page.locator(".info .title").inner_text().startswith("Kerma")
        assert page.locator(".opblock").count() > 300  # 413 operations in openapi/openapi.yaml
    assert f"{served}/docs/openapi.json" in requested
    assert all(url.startswith(served) for url in requested), requested
