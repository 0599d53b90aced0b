"""The statistics tests' scanner: one CT scanner's examinations over four months."""

from tests.stats.conftest import scanner  # noqa: F401  # the fixture
