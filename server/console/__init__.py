"""The web console at `/`: server-rendered pages (Flask + Jinja) for medical physicists and
radiographers, over the same service functions as REST and GraphQL. People sign in with a
name and password (`server/console/signin.py`); every page then acts as that user, through
the same access gate as the API. Every form carries a CSRF token (Flask-WTF); nothing is
loaded from outside the server."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, Response, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf

from server.auth.keys import session_key
from server.config import Settings
from server.console import (
    alerts,
    analysis,
    classification,
    home,
    messages,
    reports,
    resources,
    sections,
    setup,
    signin,
    skin,
    studies,
)
from server.console.formats import FILTERS
from server.stats.studies import StudyUids

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static",
               static_url_path="/console-static")  # fmt: skip
for page in (signin, home, studies, alerts, analysis, classification, reports, setup, messages, skin,
             resources):  # fmt: skip
    bp.register_blueprint(page.bp)
bp.before_request(signin.require_user)
bp.before_request(sections.require_section)  # after: it needs the user
API_PREFIXES = ("/fhir", "/stats", "/graphql", "/auth", "/assets", "/docs", "/.well-known",
                "/health", "/openapi.json", "/metrics")  # fmt: skip


class _SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, marked Secure whenever the request came over TLS or the
    public address is https (TLS ends at a proxy in front of Kerma)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        public = str(app.config.get("KERMA_BASE_URL") or "")
        return bool(request.is_secure or public.startswith("https://"))


def init_app(app: Flask, settings: Settings) -> None:
    app.secret_key = session_key(settings)
    app.session_interface = _SessionCookies()
    app.config.update(
        SESSION_COOKIE_NAME="kerma_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as its session
    )
    app.extensions["kerma.study_uids"] = StudyUids()  # the alert filters' memory
    app.jinja_env.filters.update(FILTERS)
    app.jinja_env.globals["csrf_token"] = generate_csrf
    app.jinja_env.globals["console_sections"] = sections.open_to
    app.jinja_env.globals["setup_sections"] = sections.SETUP
    app.register_blueprint(bp)


def is_console_request() -> bool:
    """Whether the request is for a page (errors answer HTML) rather than for the API."""
    return not request.path.startswith(API_PREFIXES)


def error_page(status: int, text: str) -> Response:
    """An error as a page; 401 sends the browser to sign in, then back."""
    if status == 401:
        target = request.full_path if request.method == "GET" else "/"
        location = url_for("console.signin.sign_in_page", next=target.rstrip("?"))
        return Response(status=303, headers={"Location": location})
    html = render_template("console/error.html", status=status, text=text)
    return Response(html, status, content_type="text/html; charset=utf-8")
