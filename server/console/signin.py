"""Signing in and out of the console, and who the signed-in user is on every page.

The session cookie (Flask's, signed, HttpOnly, SameSite=Lax, Secure over TLS) holds the user
name and a fingerprint of the password hash, so a new password or a revoked user ends every
session at once. Every POST carries the CSRF token of its session (Flask-WTF)."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from server.auth.access import Access
from server.auth.passwords import SignInRefused, Throttle, sign_in
from server.fhir.errors import FhirError
from server.store.port import Store, User

bp = Blueprint("signin", __name__)
_OPEN = ("console.signin.sign_in_page", "console.signin.sign_in_form", "console.static")


def _store() -> Store:
    return current_app.extensions["kerma.store"]  # type: ignore[no-any-return]


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def require_user() -> None:
    """Every console request: the CSRF token of a POST, then the signed-in user (401 sends
    the browser to the sign-in page)."""
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError) as e:
            raise FhirError.of(400, "security", f"the form is stale or forged ({e}); "
                               "reload the page and send it again") from None  # fmt: skip
    if request.endpoint in _OPEN:
        return
    user = _session_user()
    if user is None:
        raise FhirError.of(401, "login", "sign in first")
    g.user, g.access = user, Access.of(user)


def _session_user() -> User | None:
    name = session.get("user")
    user = _store().user_by_name(name) if isinstance(name, str) else None
    if user is None or not user.active or not user.password_hash:
        return None
    return user if session.get("password") == _fingerprint(user) else None


@bp.get("/sign-in")
def sign_in_page() -> str:
    return render_template("console/sign_in.html", next=_local(request.args.get("next")),
                           refused="")  # fmt: skip


@bp.post("/sign-in")
def sign_in_form() -> Any:
    settings = current_app.config["KERMA_SETTINGS"]
    throttle = Throttle(settings.sign_in_attempts, settings.sign_in_lock_minutes * 60.0)
    target = _local(request.form.get("next"))
    try:
        user = sign_in(_store(), request.form.get("name", ""), request.form.get("password", ""),
                       request.remote_addr or "", throttle)  # fmt: skip
    except SignInRefused as e:
        html = render_template("console/sign_in.html", next=target, refused=str(e),
                               name=request.form.get("name", ""))  # fmt: skip
        return Response(html, 401, content_type="text/html; charset=utf-8")
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    session.permanent = True
    session["user"] = user.name
    session["password"] = _fingerprint(user)
    return redirect(target)


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    session.clear()
    return redirect(url_for("console.signin.sign_in_page"))


def _local(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target
