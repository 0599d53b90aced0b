"""Persisted queries, as Apollo's automatic persisted queries (APQ) protocol has them, so BI
tools and dashboards can send `GET /fhir/$graphql?extensions={"persistedQuery":{"version":1,
"sha256Hash":"..."}}&variables=...`: a short, cacheable URL instead of the query text.

A client sends the hash alone; an unknown hash answers `PersistedQueryNotFound` and the
client sends hash and query once, which is kept (after checking the hash) for the next time.
Each process keeps its own bounded table: a miss costs one round trip, nothing else.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

NOT_FOUND = "PersistedQueryNotFound"


class PersistedQueryError(Exception):
    """An answer to the client, not a failure: the query is unknown, or the hash is wrong."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class PersistedQueries:
    def __init__(self, max_queries: int = 1000) -> None:
        self._queries: OrderedDict[str, str] = OrderedDict()
        self._max = max_queries
        self._lock = threading.Lock()

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The query to run: the one sent (kept under its hash when it comes with one) or
        the one kept under the hash sent alone."""
        persisted = (extensions or {}).get("persistedQuery")
        if not isinstance(persisted, dict):
            return query
        digest = str(persisted.get("sha256Hash", "")).lower()
        if persisted.get("version") != 1 or len(digest) != 64:
            raise PersistedQueryError("persistedQuery needs version 1 and a sha256Hash",
                                      "PERSISTED_QUERY_NOT_SUPPORTED")  # fmt: skip
        with self._lock:
            if query is None:
                if digest not in self._queries:
                    raise PersistedQueryError(NOT_FOUND, "PERSISTED_QUERY_NOT_FOUND")
                self._queries.move_to_end(digest)
                return self._queries[digest]
            if hashlib.sha256(query.encode()).hexdigest() != digest:
                raise PersistedQueryError("provided sha does not match query", "INVALID_SHA256")
            self._queries[digest] = query
            self._queries.move_to_end(digest)
            while len(self._queries) > self._max:
                self._queries.popitem(last=False)
        return query
