"""POST and GET /fhir/$graphql (strawberry's Flask view, GraphiQL for browsers), behind the
same bearer tokens and roles as REST: statistics are aggregates, for every role that reads
MeasureReports."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response, current_app, request
from flask.typing import ResponseReturnValue
from strawberry.flask.views import GraphQLView

from server.auth.roles import role
from server.auth.users import authenticate
from server.fhir import site_context
from server.fhir.errors import FhirError
from server.graphql.schema import schema
from server.stats.rest import statistics


class KermaGraphQLView(GraphQLView[dict[str, Any], None]):
    def dispatch_request(self) -> ResponseReturnValue:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            return super().dispatch_request()  # the GraphiQL page: it sends the token itself
        user = authenticate(
            current_app.extensions["kerma.store"], request.headers.get("Authorization")
        )
        if user is None:
            raise FhirError.of(
                401, "login", "a valid bearer token is required (Authorization: Bearer <token>)"
            )
        if not role(user.role).can("read", "MeasureReport"):
            raise FhirError.of(403, "forbidden", f"role {user.role} may not read statistics")
        return super().dispatch_request()

    def get_context(self, request: Request, response: Response) -> dict[str, Any]:
        settings = current_app.config["KERMA_SETTINGS"]
        return {"statistics": statistics, "timezone": site_context(settings).timezone}


def init_app(app: Flask) -> None:
    view = KermaGraphQLView.as_view("graphql", schema=schema, graphql_ide="graphiql")
    app.add_url_rule("/fhir/$graphql", view_func=view, methods=["GET", "POST"])
