"""One CT scanner's examinations over four months, for the statistics, charts and exports."""

from __future__ import annotations

import pytest

from server.config import Settings
from server.ingest import build_ingestor
from server.store.port import Store
from tests.ingest.test_monitoring import SIEMENS, _series


@pytest.fixture
def scanner(store: Store, settings: Settings) -> None:
    """24 chest/abdomen/pelvis CTs on one Siemens scanner: 12 with DLP 500 mGy·cm (every 7 days
    from 3 August to 19 October 2026), 12 with 900 (every 2 days from 31 October)."""
    from pydicom import dcmread

    ingestor = build_ingestor(store, settings)
    template = dcmread(SIEMENS)
    _series(ingestor, template, range(115, 31, -7), 10.0, 500.0)
    _series(ingestor, template, range(26, 2, -2), 13.0, 900.0)
