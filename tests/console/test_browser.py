"""The console in a real browser (Debian's Chromium through Playwright) at 1366x768, as a
physicist and a radiographer use it: sign in, find a study by filter, open it and its skin
dose map, acknowledge an alert from the work list, analyse the doses, map an unmapped protocol to a standard procedure, make the department
report and download it, sign out; a radiographer cannot open another
device's study, a form without its CSRF token is refused, the keyboard reaches everything, and
no page asks anything of another server. Screenshots of each page: test-artefacts/console/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.auth.passwords import set_password
from server.auth.users import add_user
from server.store.port import Store
from tests.browser import browser_page
from tests.console.conftest import PASSWORD, World

SHOTS = Path(__file__).parent.parent.parent / "test-artefacts" / "console"


def _sign_in(page: Any, served: str, name: str) -> None:
    page.goto(f"{served}/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{served}/")


def test_a_physicists_morning(served: str, world: World) -> None:
    with browser_page(SHOTS) as (page, requested):
        page.goto(f"{served}/")
        assert page.url.startswith(f"{served}/sign-in")
        assert page.evaluate("document.activeElement.id") == "name"  # ready to type
        page.screenshot(path=str(SHOTS / "sign-in.png"))
        _sign_in(page, served, "marie")
        assert page.get_by_role("heading", name="Kerma at a glance").is_visible()
        page.keyboard.press("Tab")  # the keyboard's first stop skips the navigation
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        page.screenshot(path=str(SHOTS / "home.png"), full_page=True)

        page.get_by_role("link", name="Studies").first.click()
        page.get_by_label("Modality").select_option("CT")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url("**/studies?**modality=CT**")
        assert page.get_by_role("status").inner_text().startswith("1 study")
        page.screenshot(path=str(SHOTS / "studies.png"), full_page=True)

        page.locator("tbody tr a").first.click()
        page.get_by_role("heading", name="Compared with the diagnostic reference levels").wait_for()
        assert "1.10 (above)" in page.inner_text("main")
        page.screenshot(path=str(SHOTS / "study-ct.png"), full_page=True)

        page.get_by_role("link", name="review").click()
        page.get_by_label("Comment").fill("Large patient; protocol checked")
        page.get_by_role("button", name="Acknowledge").click()
        page.get_by_text("Alert acknowledged with your comment.").wait_for()
        assert "acknowledged" in page.inner_text("main")
        page.screenshot(path=str(SHOTS / "alert-acknowledged.png"), full_page=True)

        page.goto(f"{served}/studies?modality=RF")
        page.locator("tbody tr a").first.click()
        page.get_by_role("link", name="Skin dose map").click()
        page.wait_for_function("document.querySelector('figure img').naturalWidth > 0")
        assert page.get_by_role("img", name="Skin dose map").is_visible()  # drawn, with its text
        assert "Peak skin dose: 0.001682 Gy" in page.inner_text("main")
        page.screenshot(path=str(SHOTS / "skin-dose-map.png"), full_page=True)

        page.get_by_role("link", name="Analysis").click()
        page.get_by_label("From").fill("1990-01-01")
        page.get_by_role("button", name="Show").click()
        # the new page first: the images of the one before passed the check below (CI, 15:50)
        page.wait_for_url("**/analysis?**from=1990-01-01**")
        page.wait_for_function(
            "[...document.querySelectorAll('figure img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert page.get_by_role("img", name="Timeline of DLP (mGy·cm)").is_visible()
        assert "no, above" in page.inner_text("table")  # the CT median against the UK DRL
        page.screenshot(path=str(SHOTS / "analysis.png"), full_page=True)

        page.get_by_role("link", name="Classification").click()
        page.get_by_label("Standard procedure for FL - Ang").fill("RPID6663 FL ERCP Biliary")
        page.get_by_role("button", name="Preview").click()
        assert page.get_by_role("status").inner_text() == "1 stored study would change"
        page.screenshot(path=str(SHOTS / "classification-preview.png"), full_page=True)
        page.get_by_role("button", name="Apply: add the rule and classify again").click()
        page.get_by_text("Done.").wait_for(timeout=60_000)
        page.screenshot(path=str(SHOTS / "classification.png"), full_page=True)
        page.goto(f"{served}/studies/{world.rf_study.split('/')[1]}")
        assert "FL ERCP Biliary" in page.inner_text("main")  # the study's classification changed

        page.get_by_role("link", name="Reports").click()
        page.get_by_label("Department dose report").check()
        page.get_by_label("From").fill("1990-01-01")
        page.get_by_role("button", name="Make the report").click()
        page.get_by_text("Done.").wait_for(timeout=60_000)  # the page refreshed itself meanwhile
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the PDF").click()
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
        page.screenshot(path=str(SHOTS / "reports.png"), full_page=True)

        page.goto(f"{served}/alerts?state=acknowledged")  # a form without its CSRF token
        page.evaluate("document.querySelector('article form input[name=csrf_token]').remove()")
        page.get_by_role("button", name="Add a comment").click()
        page.get_by_text("the form is stale or forged").wait_for()
        page.screenshot(path=str(SHOTS / "csrf-refused.png"))

        page.goto(f"{served}/")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{served}/sign-in")
        page.goto(f"{served}/studies")
        assert page.url.startswith(f"{served}/sign-in")
    assert requested and all(url.startswith(served) for url in requested), requested


def test_a_radiographer_cannot_open_another_devices_study(served: str, world: World) -> None:
    with browser_page(SHOTS) as (page, requested):
        _sign_in(page, served, "rita")
        page.goto(f"{served}/studies")
        assert page.get_by_role("status").inner_text().startswith("1 study")
        assert "CT" not in page.inner_text("tbody")
        answer = page.goto(f"{served}/studies/{world.ct_study.split('/')[1]}")
        assert answer is not None and answer.status == 403
        assert "not from a device you work on" in page.inner_text("main")
        page.screenshot(path=str(SHOTS / "radiographer-refused.png"))
    assert all(url.startswith(served) for url in requested), requested


def test_the_authority_has_a_home_without_alerts(served: str, world: World, store: Store) -> None:
    """The authority reads no alerts: its home page had been a 403; now it opens, without the
    alerts card (issue 23), and its navigation offers what it may open, each link followed."""
    add_user(store, "ada", "authority")
    set_password(store, "ada", PASSWORD)
    with browser_page(SHOTS) as (page, requested):
        _sign_in(page, served, "ada")
        assert page.get_by_role("heading", name="Kerma at a glance").is_visible()
        assert page.get_by_role("heading", name="Devices that stopped sending").is_visible()
        assert page.get_by_role("heading", name="Alerts waiting for review").count() == 0
        page.screenshot(path=str(SHOTS / "home-authority.png"), full_page=True)
        links = page.get_by_role("navigation", name="Main").get_by_role("link")
        offered = {links.nth(i).inner_text(): links.nth(i).get_attribute("href")
                   for i in range(links.count())}  # fmt: skip
        assert list(offered) == ["Home", "Analysis", "Set-up"]  # what roles.yaml lets it read
        for href in offered.values():
            answer = page.goto(f"{served}{href}")
            assert answer is not None and answer.status == 200, href
        refused = page.goto(f"{served}/studies")  # typed by hand: refused as before
        assert refused is not None and refused.status == 403
        page.goto(f"{served}/setup/devices")
        links = page.get_by_role("navigation", name="Set-up").get_by_role("link")
        assert [links.nth(i).inner_text() for i in range(links.count())] == [
            "Devices", "Reference levels"]  # fmt: skip
        for hidden in ("/setup/alerts", "/setup/users", "/setup/messages"):
            answer = page.goto(f"{served}{hidden}")
            assert answer is not None and answer.status == 403, hidden
    assert all(url.startswith(served) for url in requested), requested
