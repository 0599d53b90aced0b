"""What the fork server adds when kerma serve forks its HTTP processes (server/preload.py): the
web app's modules, the GraphQL schema and the OpenAPI document, imported and built once (about
3 CPU-seconds) instead of in each. Not when HTTP runs in kerma serve's own process, which has
its own.
"""

from __future__ import annotations

import server.http_processes  # noqa: F401  # the HTTP processes' target
from server.app import openapi_json
from server.config import Settings
from server.graphql.schema import system_schema

_DEFAULTS = Settings()
system_schema(_DEFAULTS.graphql_max_depth, _DEFAULTS.graphql_max_cost)  # other limits: types kept
openapi_json()
