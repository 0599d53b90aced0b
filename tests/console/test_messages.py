"""Messages out on the console, in Chromium: the dose results a RIS refused (AR) are listed as
stopped with the RIS's reason, and a physicist sends one again; a viewer sees the list but
may not send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.config import Settings
from server.notify.delivery import Dispatcher, Policy
from server.outbound.senders import senders
from server.site import build_service
from server.store.port import Store
from tests.browser import browser_page
from tests.console.conftest import World, sign_in, text
from tests.console.test_browser import SHOTS, _sign_in
from tests.dicom.conftest import free_port
from tests.outbound.conftest import Ris


@pytest.fixture
def ris() -> Iterator[Ris]:
    running = Ris(free_port())
    running.answer = lambda message: "AR"
    running.start()
    yield running
    running.stop()


@pytest.fixture
def settings(tmp_path: Path, ris: Ris) -> Settings:
    return Settings(data_dir=tmp_path, drl_sets="UKHSA GB 2022", base_url="http://kerma.test/fhir",
                    ris_port=ris.port)  # fmt: skip


def _refused(store: Store, settings: Settings) -> list[dict[str, Any]]:
    service = build_service(store, settings)
    Dispatcher(service, Policy(1, 3), senders(service, settings)).run_once()
    found = service.search("Communication", [("identifier", "urn:kerma:outbound|")]).matches
    return [orjson.loads(s.body or b"") for s in found]


def test_a_refused_result_is_listed_and_sent_again(
    served: str,
    world: World,
    store: Store,
    settings: Settings,
) -> None:
    refused = _refused(store, settings)
    assert [c["status"] for c in refused] == ["stopped", "stopped"]
    with browser_page(SHOTS) as (page, _):
        _sign_in(page, served, "marie")
        page.goto(f"{served}/setup/messages?status=stopped")
        assert page.get_by_role("status").inner_text().startswith("2 messages")
        rows = page.locator("tbody tr")
        assert "the RIS answered AR" in rows.first.inner_text()
        assert "dose results to the RIS" in rows.first.inner_text()
        page.screenshot(path=str(SHOTS / "setup-messages.png"), full_page=True)
        page.get_by_role("button", name="Send again").first.click()
        page.wait_for_url("**/setup/messages?status=stopped")
        assert page.get_by_text("Queued again").is_visible()
        assert page.locator("tbody tr").count() == 1
    statuses = sorted(c["status"] for c in _listing(store, settings))
    assert statuses == ["preparation", "stopped"]


def _listing(store: Store, settings: Settings) -> list[dict[str, Any]]:
    found = (
        build_service(store, settings)
        .search("Communication", [("identifier", "urn:kerma:outbound|")])
        .matches
    )
    return [orjson.loads(s.body or b"") for s in found]


def test_a_viewer_sees_the_list_but_cannot_send_again(
    app: Any, world: World, store: Store, settings: Settings
) -> None:
    _refused(store, settings)
    client = app.test_client()
    sign_in(client, "vic")
    html = client.get("/setup/messages").get_data(as_text=True)
    assert "2 messages" in text(html) and ">Send again</button>" not in html
    rid = _listing(store, settings)[0]["id"]
    assert client.post(f"/setup/messages/{rid}/again").status_code in (400, 403)
