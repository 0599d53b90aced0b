"""One CT scanner's examinations over four months, for the statistics, charts and exports."""

from __future__ import annotations

import pytest

from server.config import Settings
from server.store.port import Store
from tests.ingest.test_monitoring import four_months


@pytest.fixture
def scanner(store: Store, settings: Settings) -> None:
    """24 chest/abdomen/pelvis CTs on one Siemens scanner: 12 with DLP 500 mGy·cm (every 7 days
    from 3 August to 19 October 2026), 12 with 900 (every 2 days from 31 October)."""
    four_months(store, settings)
