"""GraphQL over HTTP: `GET|POST /fhir/$graphql` (system level) and `GET|POST
/fhir/<Type>/<id>/$graphql` (instance level: the query's root is that resource), with
strawberry's async Flask view so nested lookups are batched (loaders.py), GraphiQL for
browsers, persisted queries (persisted.py) for short cacheable GETs.

Same bearer tokens as REST; each field checks the role (statistics: who reads
MeasureReports; resources: who reads their type, radiographers their devices' Observations
only). Every request that disclosed patient data leaves one AuditEvent.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter
from flask import Flask, Request, Response, current_app, request
from flask.typing import ResponseReturnValue
from strawberry.flask.views import AsyncGraphQLView
from strawberry.http import GraphQLRequestData

from server.api.http import current_user, record
from server.auth import audit
from server.auth.access import Access
from server.fhir import registry
from server.fhir.errors import FhirError, outcome
from server.fhir.service import FhirService
from server.graphql.context import Context
from server.graphql.persisted import PersistedQueries, PersistedQueryError
from server.graphql.schema import instance_schema, system_schema
from server.stats.service import site_statistics

_PERSISTED = PersistedQueries()


class KermaGraphQLView(AsyncGraphQLView[Context, Any]):
    """One instance per request (Flask's default), so it may hold the request's context."""

    context: Context | None = None
    root: Any = None

    def __init__(self) -> None:
        # the schema (system or instance level) is chosen per request, in dispatch_request
        super().__init__(schema=None, graphql_ide="graphiql")  # type: ignore[arg-type]

    async def dispatch_request(  # type: ignore[override]
        self, rtype: str | None = None, rid: str | None = None
    ) -> ResponseReturnValue:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            return _graphiql()  # the page asks for the token and sends it itself
        user = current_user(_service().store)
        settings = current_app.config["KERMA_SETTINGS"]
        self.context = _context(Access.of(user))
        limits = (settings.graphql_max_depth, settings.graphql_max_cost)
        if rtype is not None and rid is not None:
            self.schema = instance_schema(_stored_type(rtype), *limits)
            self.root = self._instance(rtype, rid)
        else:
            self.schema = system_schema(*limits)
        try:
            response = await super().dispatch_request()
        except PersistedQueryError as e:  # 200, as Apollo clients expect, to send the query
            issue = FhirError.of(400, "not-found", str(e))
            error = {
                "message": str(e),
                "extensions": {"code": e.code, "resource": outcome(issue.issues)},
            }
            return Response(orjson.dumps({"errors": [error]}), 200, content_type="application/json")
        self._audit()
        return _json_errors(response)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        parsed = await super().parse_http_body(request)
        for data in parsed if isinstance(parsed, list) else [parsed]:
            data.query = _PERSISTED.resolve(data.query, data.extensions)
        return parsed

    async def get_context(self, request: Request, response: Response) -> Context:
        assert self.context is not None  # set by dispatch_request
        return self.context

    async def get_root_value(self, request: Request) -> Any:
        return self.root

    def _instance(self, rtype: str, rid: str) -> Any:
        assert self.context is not None
        stored = self.context.read(rtype, rid)
        return orjson.loads(stored.body or b"{}")

    def _audit(self) -> None:
        assert self.context is not None
        found = [*audit.patients_in(self.context.disclosed), *self.context.patients]
        patients = list(dict.fromkeys(found))
        if not patients:
            return
        query = request.args.get("query") or (request.get_json(silent=True) or {}).get("query", "")
        event = audit.audit_event(self.context.access.user, "operation", patients,
                                  request.method, request.path, str(query),
                                  request.remote_addr, time.time())  # fmt: skip
        record(event)


def _graphiql() -> Response:
    """GraphiQL with its libraries from Kerma (/assets), none from a CDN, and a token field."""
    page = resources.files("server.api").joinpath("templates/graphiql.html").read_bytes()
    return Response(page, 200, content_type="text/html; charset=utf-8")


def _service() -> FhirService:
    return current_app.extensions["kerma.fhir"]  # type: ignore[no-any-return]


def _stored_type(rtype: str) -> str:
    if rtype not in registry.resource_types():
        raise FhirError.of(404, "not-found", f"Kerma does not store {rtype}")
    return rtype


def _context(access: Access) -> Context:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.config["KERMA_SETTINGS"]
    service = app.extensions["kerma.fhir"]
    return Context(
        service=service,
        access=access,
        statistics=lambda: site_statistics(service, settings, app.extensions["kerma.facts"]),
    )


def init_app(app: Flask) -> None:
    view = KermaGraphQLView.as_view("graphql")
    app.add_url_rule("/fhir/$graphql", view_func=view, methods=["GET", "POST"])
    app.add_url_rule("/fhir/<rtype>/<rid>/$graphql", view_func=view, methods=["GET", "POST"])


def _json_errors(response: ResponseReturnValue) -> ResponseReturnValue:
    """Strawberry answers a request it cannot read (no query, another content type) in plain
    text; GraphQL over HTTP clients expect a JSON `errors` list."""
    if (
        isinstance(response, Response)
        and response.status_code >= 400
        and response.mimetype == "text/plain"
    ):
        error = {"message": response.get_data(as_text=True)}
        return Response(
            orjson.dumps({"errors": [error]}), response.status_code, content_type="application/json"
        )
    return response
