"""SMART Backend Services over HTTP: the discovery document (/.well-known/smart-configuration,
at the root and under the FHIR base, public) and the token endpoint (POST /auth/token, OAuth
2.0 client credentials with a signed JWT assertion; server/auth/smart.py checks it)."""

from __future__ import annotations

import orjson
from flask import Blueprint, Flask, Response, current_app, request

from server.api.http import base_url
from server.auth import smart

bp = Blueprint("smart", __name__)


def token_url() -> str:
    """The token endpoint's absolute URL: a client's assertion is addressed (aud) to it."""
    return base_url().removesuffix("/fhir") + "/auth/token"


@bp.get("/.well-known/smart-configuration")
@bp.get("/fhir/.well-known/smart-configuration")
def configuration() -> Response:
    return Response(orjson.dumps(smart.configuration(token_url())), 200,
                    content_type="application/json")  # fmt: skip


@bp.post("/auth/token")
def token() -> Response:
    try:
        answer = smart.issue(current_app.extensions["kerma.store"], request.form, token_url(),
                             current_app.extensions["kerma.token_key"])  # fmt: skip
        status = 200
    except smart.OAuthError as e:
        answer, status = {"error": e.error, "error_description": e.description}, e.status
    response = Response(orjson.dumps(answer), status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
