"""The one access decision every resource passes on its way in or out of the FHIR service.

The service, transactions and GraphQL's loaders take a `Gate` and ask it about each search
they run, each resource they hand out and each version they write; `server/auth/access.py`
implements it for a user's role. Kerma's own work (ingest, jobs) passes no gate.
"""

from __future__ import annotations

from typing import Any, Protocol

from server.fhir.search import SearchRequest
from server.store.port import Stored
from server.store.query import Clause


class Gate(Protocol):
    def require(self, rtype: str, action: str = "read") -> None:
        """403 unless the user may do `action` (read, write, delete) on the type at all."""

    def check_search(self, request: SearchRequest) -> None:
        """403 for a search that would test what the user may not read (a chain or include
        through a type the role does not read, or through another device's dose data)."""

    def restriction(self, rtype: str) -> tuple[Clause, ...]:
        """Clauses the user's searches of `rtype` get and may not lift."""

    def may_read(self, stored: Stored) -> bool:
        """Whether this resource may leave Kerma for this user."""

    def check_write(self, rtype: str, new: dict[str, Any] | None, current: Stored | None) -> None:
        """403 unless the user may replace `current` (None: nothing stored) by `new` (None: a
        delete); `new` may be completed (the author of what the user adds)."""
