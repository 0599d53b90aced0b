"""What every process of `kerma serve` starts from. A fork server imports this module once and
forks each HTTP, DICOM and spool process from itself (server/processes.py), so a process starts
in milliseconds with Kerma imported and the GraphQL schema built, instead of spending seconds
of a core on both, and the processes share those pages.

Nothing here opens a file, a socket or a store, or starts a thread: a forked process must not
share any of them.
"""

from __future__ import annotations

import server.http_processes  # the HTTP processes' target
import server.ingest.spool_worker  # the spool worker's
import server.network  # noqa: F401  # the DICOM listeners'
from server.config import Settings
from server.graphql.schema import system_schema

_DEFAULTS = Settings()
system_schema(_DEFAULTS.graphql_max_depth, _DEFAULTS.graphql_max_cost)  # other limits: types kept
