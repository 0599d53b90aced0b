"""GraphiQL in a real browser on a machine with no internet: the page and its libraries come
from Kerma (/assets), the token is typed into the page, and a query runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.browser import browser_page
from tests.graphql.test_fhir_graphql import flash  # noqa: F401

ARTEFACTS = Path(__file__).parent.parent.parent / "test-artefacts" / "graphiql"


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_libraries_are_served_by_kerma(client: Any) -> None:
    for name in ("graphiql.min.js", "graphiql.min.css", "react.production.min.js",
                 "react-dom.production.min.js"):  # fmt: skip
        answer = client.get(f"/assets/{name}")
        assert answer.status_code == 200 and len(answer.data) > 5000, name
    assert client.get("/assets/../../etc/passwd").status_code == 404


def test_graphiql_runs_a_query_with_nothing_from_outside(
    flash: None,  # noqa: F811
    served: str,
    tokens: dict[str, str],
) -> None:
    query = "{ ImagingStudyList { id description } }"
    with browser_page(ARTEFACTS) as (page, requested):
        page.goto(f"{served}/fhir/$graphql?query={query}")
        page.wait_for_selector(".graphiql-container")
        page.fill("#token", tokens["mpe"])
        page.dispatch_event("#token", "change")
        page.wait_for_selector(".graphiql-execute-button")
        page.click(".graphiql-execute-button")
        result = page.locator(".result-window")
        result.get_by_text("ImagingStudyList").wait_for()
        text = result.inner_text()
        page.screenshot(path=str(ARTEFACTS / "query.png"))
    assert '"ImagingStudyList"' in text and '"id"' in text and "errors" not in text
    assert requested and all(url.startswith(served) for url in requested), requested
