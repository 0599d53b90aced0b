"""What every process of `kerma serve` starts from. A fork server imports this module once and
forks each HTTP, DICOM and spool process from itself (server/processes.py), so a process starts
in milliseconds with Kerma imported, instead of spending seconds of a core on it, and the
processes share those pages. Where HTTP runs in processes of their own, the fork server imports
what they run and builds their GraphQL schema too (server/preload_http.py).

Nothing here opens a file, a socket or a store, or starts a thread: a forked process must not
share any of them.
"""

from __future__ import annotations

import server.ingest.spool_worker  # the spool worker's
import server.network  # noqa: F401  # the DICOM listeners'
