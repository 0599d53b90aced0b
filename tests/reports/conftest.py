"""A site with 24 CT examinations on one scanner, compared with the UK DRLs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.app import create_app
from server.config import Settings
from server.store.port import Store
from tests.conftest import Api
from tests.ingest.test_monitoring import four_months
from tests.notify.conftest import smtp_server  # noqa: F401  # a real SMTP server, for mailed reports


@pytest.fixture
def site(settings: Settings, store: Store, request: pytest.FixtureRequest) -> Api:
    """24 CT chest/abdomen/pelvis examinations compared with the UK DRLs (12 above it)."""
    uk = replace(settings, drl_sets="UKHSA GB 2022")
    four_months(store, uk)  # into the empty store: the users come after
    tokens: dict[str, str] = request.getfixturevalue("tokens")
    return Api(create_app(uk, store).test_client(), tokens["mpe"])
