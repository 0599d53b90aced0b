"""Signing in to the console: argon2id password hashes, a session cookie that is HttpOnly,
SameSite=Lax and Secure over TLS, CSRF tokens on every form, a throttle after repeated
failures, no open redirect, sessions that end with sign-out, a new password or revocation;
API tokens keep working beside it. The `kerma users` commands set passwords."""

from __future__ import annotations

import subprocess
from pathlib import Path

from flask.testing import FlaskClient

from server.app import create_app
from server.auth.passwords import set_password
from server.config import Settings
from server.store.port import Store
from tests.conftest import REAL_HASHER
from tests.console.conftest import PASSWORD, World, csrf, sign_in, text
from tests.test_cli import KERMA, env  # noqa: F401


def test_signing_in_and_out(client: FlaskClient, world: World) -> None:
    assert client.get("/studies").headers["Location"] == "/sign-in?next=/studies"
    answer = sign_in(client, "marie", next_page="/studies?modality=CT")
    assert answer.status_code == 302 and answer.headers["Location"] == "/studies?modality=CT"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/")
    assert page.status_code == 200 and "marie (mpe)" in text(page.get_data(as_text=True))
    out = client.post("/sign-out", data={"csrf_token": csrf(page.get_data(as_text=True))})
    assert out.status_code == 302
    assert client.get("/").status_code == 303  # back to the sign-in page


def test_the_cookie_is_secure_over_tls(client: FlaskClient, world: World) -> None:
    token = csrf(client.get("/sign-in", base_url="https://kerma.test").get_data(as_text=True))
    answer = client.post("/sign-in", base_url="https://kerma.test",
                         data={"name": "marie", "password": PASSWORD, "csrf_token": token})  # fmt: skip
    assert "Secure" in answer.headers["Set-Cookie"]


def test_the_cookie_is_secure_behind_a_tls_proxy(
    world: World, store: Store, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, base_url="https://kerma.hospital.test/fhir")
    client = create_app(settings, store).test_client()
    assert "Secure" in sign_in(client, "marie").headers["Set-Cookie"]  # plain HTTP to the proxy


def test_wrong_passwords_and_the_throttle(client: FlaskClient, world: World, store: Store) -> None:
    for name in ("marie", "nobody"):  # the same answer whether the name exists or not
        refused = sign_in(client, name, "not the password")
        assert refused.status_code == 401
        assert "the name or the password is wrong" in text(refused.get_data(as_text=True))
    for _ in range(4):
        sign_in(client, "marie", "not the password")
    locked = sign_in(client, "marie")  # the right password, after five failures
    assert locked.status_code == 401
    assert "too many failed sign-ins; try again in 15 minutes" in text(
        locked.get_data(as_text=True)
    )
    assert sign_in(client, "vic").status_code == 302  # others at the same workstation still can
    for n in range(14):  # 20 failures from one address lock it for every name
        sign_in(client, f"guess{n}", "not the password")
    assert store.failed_sign_ins("address:127.0.0.1", 0) == 20
    assert sign_in(client, "vic").status_code == 401


def test_forms_without_their_csrf_token_are_refused(client: FlaskClient, world: World) -> None:
    answer = client.post("/sign-in", data={"name": "marie", "password": PASSWORD})
    assert answer.status_code == 400
    assert "the form is stale or forged" in text(answer.get_data(as_text=True))
    sign_in(client, "marie")
    assert client.post("/sign-out").status_code == 400
    assert client.get("/").status_code == 200  # still signed in


def test_no_open_redirect(client: FlaskClient, world: World) -> None:
    for target in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        assert sign_in(client, "marie", next_page=target).headers["Location"] == "/", target


def test_a_new_password_or_revocation_ends_the_session(
    client: FlaskClient, world: World, store: Store
) -> None:
    sign_in(client, "marie")
    assert client.get("/").status_code == 200
    set_password(store, "marie", "another long passphrase")
    assert client.get("/").status_code == 303
    sign_in(client, "marie", "another long passphrase")
    store.set_user_active("marie", False)
    assert client.get("/").status_code == 303
    assert sign_in(client, "marie", "another long passphrase").status_code == 401


def test_api_tokens_keep_working(client: FlaskClient, world: World, tokens: dict[str, str]) -> None:
    sign_in(client, "marie")
    assert client.get("/fhir/Patient").status_code == 401  # the session is not an API credential
    answer = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {tokens['mpe']}"})
    assert answer.status_code == 200


def test_passwords_are_argon2id_hashes(world: World, store: Store) -> None:
    user = store.user_by_name("marie")
    assert user is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    # the tests hash at the smallest cost (tests/conftest.py); the server with RFC 9106's
    assert REAL_HASHER.hash(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_the_users_commands_set_passwords(env: dict[str, str]) -> None:  # noqa: F811
    added = subprocess.run([*KERMA, "users", "add", "pia", "--role", "mpe",
                            "--password-stdin"], input="a passphrase of pia\n", env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert added.returncode == 0, added.stderr
    short = subprocess.run([*KERMA, "users", "passwd", "pia", "--password-stdin"],
                           input="short\n", env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert short.returncode != 0 and "at least 12 characters" in short.stderr
    changed = subprocess.run([*KERMA, "users", "passwd", "pia"],
                             input="a new passphrase of pia\n", env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert changed.returncode == 0 and "password of pia set" in changed.stdout
