"""The statistics tests' scanner (one CT scanner's examinations over four months) and the
reports tests' site (the same compared with the UK DRLs)."""

from tests.reports.conftest import site  # noqa: F401  # the fixture
from tests.stats.conftest import scanner  # noqa: F401  # the fixture
