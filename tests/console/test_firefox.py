"""The console in Firefox: Debian's Firefox ESR at 1366x768, driven over WebDriver BiDi (its own
remote protocol) by puppeteer-core from web/node_modules (web/e2e/firefox.mjs): sign in, the
home page, a study found by filter, the analysis page with its charts drawn, the alerts,
classification, reports and set-up pages, sign out; no request leaves the server. Screenshots:
test-artefacts/console/firefox-*.png."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.console.conftest import PASSWORD, World
from tests.console.test_browser import SHOTS

ROOT = Path(__file__).parent.parent.parent
FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox") or "/usr/bin/firefox-esr"


def test_a_physicists_morning_in_firefox(served: str, world: World) -> None:
    if not Path(FIREFOX).exists() or not (ROOT / "web/node_modules/puppeteer-core").exists():
        pytest.fail("Debian's firefox-esr and web/node_modules are installed by scripts/setup")
    done = subprocess.run(
        ["node", str(ROOT / "web/e2e/firefox.mjs"), served, "marie", PASSWORD, str(SHOTS), FIREFOX],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["seen"] == ["/", "/studies?modality=CT", "/analysis?from=1990-01-01", "/alerts",
                              "/classification", "/reports", "/setup/devices"]  # fmt: skip
    # data: URLs are Firefox's own (a font of its date fields): nothing goes over the network
    outside = [u for u in report["requested"] if not u.startswith((served, "data:"))]
    assert report["requested"] and not outside, outside
