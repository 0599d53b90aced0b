"""The Flask app factory: FHIR REST at /fhir, /health, /openapi.json and the API docs at /docs."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine
from importlib import resources
from typing import Any

import orjson
from flask import Flask, Response, g, request
from flask_cors import CORS
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from server import console
from server.api import assets, graphql_view, hosts, smart, stats_rest
from server.api import fhir_rest as rest
from server.api.http import current_user
from server.auth.keys import token_key
from server.config import Settings
from server.fhir.errors import FhirError, Issue, outcome
from server.jobs.queue import jobs_for
from server.logs import log_event
from server.mappings import parse_yaml
from server.metrics import HTTP_SECONDS
from server.ops.health import readiness
from server.ops.metrics import exposition
from server.site import build_service
from server.store import Store, open_store

log = logging.getLogger("kerma.http")
_HTTP_ISSUE = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


class _BuiltOnUse(Rule):
    """A URL rule whose URL builders (what url_for runs) are compiled when first used: werkzeug
    compiles two per rule when the rule is added, generating and compiling Python source, 90 %
    of create_app (50 ms for Kerma's ~100 rules), for builders most rules never use."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        name = "_build_unknown" if append_unknown else "_build"

        def build(rule: Rule, **values: Any) -> tuple[str, str]:
            compiled = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            setattr(rule, name, compiled)  # the next call goes straight to it
            return compiled(**values)  # type: ignore[no-any-return]

        return build


class _Kerma(Flask):
    url_rule_class = _BuiltOnUse

    def async_to_sync(self, func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        """How an async view (GraphQL's: its loaders batch lookups) runs: on an event loop of
        its thread's own, kept from request to request. Flask's default (asgiref) made a thread
        and an event loop for each request: 2.5-3.1 ms for a small query where this takes 1.7."""

        def run(*args: Any, **kwargs: Any) -> Any:
            # in a copy of this request's context: the runner's own would carry context
            # variables from one request into the next
            return _thread_loop().run(func(*args, **kwargs), context=contextvars.copy_context())

        return run


_loops = threading.local()


def _thread_loop() -> asyncio.Runner:
    runner: asyncio.Runner | None = getattr(_loops, "runner", None)
    if runner is None:
        runner = _loops.runner = asyncio.Runner()
        # closed once the thread is gone (from whichever thread collects it: only the loop,
        # whose close runs nothing)
        weakref.finalize(threading.current_thread(), runner.get_loop().close)
    return runner


def create_app(settings: Settings | None = None, store: Store | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = _Kerma("kerma")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["KERMA_BASE_URL"] = settings.base_url
    app.config["KERMA_SETTINGS"] = settings
    store = store or open_store(settings)
    app.extensions["kerma.store"] = store
    app.extensions["kerma.token_key"] = token_key(settings)
    hosts.init_app(app, settings)  # first: nothing answers a forged Host
    service = build_service(store, settings)
    rest.init_app(app, service)
    app.extensions["kerma.jobs"] = jobs_for(service, settings)
    stats_rest.init_app(app)
    graphql_view.init_app(app)
    assets.init_app(app)
    smart.init_app(app)
    console.init_app(app, settings)
    _init_cors(app, settings)
    _init_meta_routes(app, store, settings)
    _init_docs(app)
    _init_errors(app)
    _init_request_log(app)
    return app


@functools.cache
def openapi_spec() -> dict[str, Any]:
    text = resources.files("kerma_openapi").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return parse_yaml(text)  # type: ignore[no-any-return]


@functools.cache
def openapi_json() -> bytes:
    """/openapi.json, read when first asked for: parsing the YAML took 0.35-0.6 s of every
    kerma serve process's start, most of which never serve it (the fork server reads it once
    for its HTTP processes, server/preload_http.py)."""
    return orjson.dumps(openapi_spec())


def _init_meta_routes(app: Flask, store: Store, settings: Settings) -> None:
    @app.get("/health")
    def health() -> Response:
        """The store answers (kept for monitors set up against it; /health/ready says more)."""
        check = readiness(store, settings)[0]
        body = {"status": "ok" if check.ok else "unavailable", "store": store.name}
        if not check.ok:
            body["reason"] = check.reason
        return Response(orjson.dumps(body), 200 if check.ok else 503,
                        content_type="application/json")  # fmt: skip

    @app.get("/health/live")
    def live() -> Response:
        """The process answers HTTP: restart it only when this fails."""
        return Response(b'{"status":"alive"}', 200, content_type="application/json")

    @app.get("/health/ready")
    def ready() -> Response:
        """Every dependency usable (store, spool, Redis and a worker, SMTP), or 503 and why."""
        checks = readiness(store, settings)
        failing = [c for c in checks if not c.ok]
        body = {
            "status": "not-ready" if failing else "ready",
            "reasons": [f"{c.name}: {c.reason}" for c in failing],
            "checks": {c.name: {"ok": c.ok, **c.facts} for c in checks},
        }
        return Response(orjson.dumps(body), 503 if failing else 200,
                        content_type="application/json")  # fmt: skip

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus's text format, for any authenticated user (no patient data in it)."""
        current_user(store)
        return Response(exposition(settings), 200, content_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json")
    @app.get("/docs/openapi.json")  # where the docs page reads it (_init_docs)
    def openapi() -> Response:
        return Response(openapi_json(), 200, content_type="application/json")


def _init_cors(app: Flask, settings: Settings) -> None:
    """Browser apps of the origins KERMA_CORS_ORIGINS names may call the API (flask-cors)."""
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        CORS(app, origins=origins, allow_headers=_CORS_REQUEST_HEADERS,
             expose_headers=_CORS_RESPONSE_HEADERS, max_age=600)  # fmt: skip


_CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Accept", "Prefer", "If-Match",
                         "If-None-Exist", "If-None-Match"]  # fmt: skip
_CORS_RESPONSE_HEADERS = ["Location", "Content-Location", "ETag", "Last-Modified", "X-Progress"]


def _init_docs(app: Flask) -> None:
    from swagger_ui import api_doc

    # the page reads the document from url_prefix + config_rel_url, served by
    # _init_meta_routes; app_type spares swagger_ui importing aiohttp and tornado to guess it
    api_doc(app, app_type="flask", config_rel_url="/openapi.json", url_prefix="/docs",
            title="Kerma API")  # fmt: skip


def _init_errors(app: Flask) -> None:
    def answer(status: int, issues: list[Issue], headers: dict[str, str] | None = None) -> Response:
        if console.is_console_request():
            return console.error_page(status, issues[0].diagnostics)
        if request.path.startswith("/fhir"):
            body = orjson.dumps(outcome(issues))
            content_type = rest.FHIR_JSON
        else:
            body = orjson.dumps({"error": issues[0].diagnostics})
            content_type = "application/json"
        return Response(body, status, headers=headers, content_type=content_type)

    @app.errorhandler(FhirError)
    def fhir_error(e: FhirError) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="kerma"'} if e.status == 401 else None
        return answer(e.status, e.issues, headers)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        status = e.code or 500
        allowed = getattr(e, "valid_methods", None)  # set on MethodNotAllowed
        headers = {"Allow": ", ".join(allowed)} if status == 405 and allowed else None
        return answer(
            status, [Issue(_HTTP_ISSUE.get(status, "processing"), e.description or e.name)], headers
        )

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error incident=%s path=%s", incident, request.path)
        return answer(
            500,
            [
                Issue(
                    "exception",
                    f"internal error; incident {incident} is in the server log",
                    "fatal",
                )
            ],
        )


def _init_request_log(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        # the path only: query strings can hold patient names or identifiers
        user = getattr(g, "user", None)
        elapsed_s = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "(no route)"
        status_class = f"{response.status_code // 100}xx"
        HTTP_SECONDS.labels(request.method, route, status_class).observe(elapsed_s)
        log_event(
            log,
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            ms=round(elapsed_s * 1000, 1),
            user=user.name if user else "-",
        )
        return response
