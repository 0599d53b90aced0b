"""SMART Backend Services, the whole flow over a real HTTP server: a client registered with
`kerma clients add` and a key made here signs a JWT, gets an access token at the token endpoint
the discovery document names, and reads Observations with it; a wrong signature, an expired or
replayed assertion and a scope it lacks each get the OAuth error they should; scopes limit what
the token reaches; static tokens keep working; CORS only for the origins configured."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug.serving import make_server

from server.app import create_app
from server.config import Settings
from server.store.port import Store
from tests.graphql.test_fhir_graphql import flash  # noqa: F401

ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _jwks(*keys: tuple[Any, str, str]) -> str:
    found = []
    for private, alg, kid in keys:
        algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS384" else jwt.algorithms.ECAlgorithm
        found.append({**json.loads(algorithm.to_jwk(private.public_key())), "kid": kid, "alg": alg})
    return json.dumps({"keys": found})


@pytest.fixture
def keys() -> dict[str, Any]:
    return {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": ec.generate_private_key(ec.SECP384R1()),
            "other": rsa.generate_private_key(public_exponent=65537, key_size=2048)}  # fmt: skip


@pytest.fixture
def client_id(settings: Settings, keys: dict[str, Any], tmp_path: Path) -> str:
    """A backend client registered with the CLI, role viewer, with an RSA and an EC key."""
    jwks = tmp_path / "ehr.jwks.json"
    jwks.write_text(_jwks((keys["rsa"], "RS384", "r1"), (keys["ec"], "ES384", "e1")))
    kerma = str(Path(sys.executable).parent / "kerma")
    done = subprocess.run([kerma, "clients", "add", "ehr", "--role", "viewer", "--jwks", str(jwks)],
                          env={"KERMA_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "client_id: ehr" in done.stdout
    return "ehr"


@pytest.fixture
def base(settings: Settings, store: Store) -> Iterator[str]:
    app = create_app(
        replace(settings, base_url="", cors_origins="https://ehr.hospital.test"), store
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _assertion(key: Any, alg: str, kid: str, aud: str, *, expires_in: int = 240, jti: str | None = None,
               iss: str = "ehr") -> str:  # fmt: skip
    now = int(time.time())
    claims = {"iss": iss, "sub": iss, "aud": aud, "exp": now + expires_in, "iat": now,
              "jti": jti or uuid.uuid4().hex}  # fmt: skip
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _token(endpoint: str, assertion: str, scope: str) -> requests.Response:
    return requests.post(endpoint, data={"grant_type": "client_credentials", "scope": scope,
                                         "client_assertion_type": ASSERTION,
                                         "client_assertion": assertion}, timeout=10)  # fmt: skip


def test_a_backend_client_gets_a_token_and_reads_observations(
    flash: None,  # noqa: F811
    base: str,
    client_id: str,
    keys: dict[str, Any],
) -> None:
    discovery = requests.get(f"{base}/fhir/.well-known/smart-configuration", timeout=10).json()
    assert discovery["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    endpoint = discovery["token_endpoint"]
    assert endpoint == f"{base}/auth/token"
    for key, alg, kid in ((keys["rsa"], "RS384", "r1"), (keys["ec"], "ES384", "e1")):
        answer = _token(endpoint, _assertion(key, alg, kid, endpoint), "system/Observation.read")
        assert answer.status_code == 200, answer.text
        granted = answer.json()
        assert granted["token_type"] == "bearer" and granted["expires_in"] <= 300
        assert answer.headers["Cache-Control"] == "no-store"
        headers = {"Authorization": f"Bearer {granted['access_token']}"}
        events = requests.get(f"{base}/fhir/Observation?code=113852", headers=headers, timeout=10)
        assert events.status_code == 200 and len(events.json()["entry"]) == 4
        # the token reaches what its scopes say, no more (the role would read Patients)
        patients = requests.get(f"{base}/fhir/Patient", headers=headers, timeout=10)
        assert patients.status_code == 403 and "scopes" in patients.text


def test_the_errors_a_client_gets(base: str, client_id: str, keys: dict[str, Any]) -> None:
    endpoint = f"{base}/auth/token"

    def error(answer: requests.Response) -> tuple[int, str]:
        return answer.status_code, answer.json()["error"]

    wrong_key = _assertion(keys["other"], "RS384", "r1", endpoint)
    assert error(_token(endpoint, wrong_key, "system/*.read")) == (401, "invalid_client")
    expired = _assertion(keys["rsa"], "RS384", "r1", endpoint, expires_in=-60)
    answer = _token(endpoint, expired, "system/*.read")
    assert (
        error(answer) == (401, "invalid_client") and "expired" in answer.json()["error_description"]
    )
    lacking = _assertion(keys["rsa"], "RS384", "r1", endpoint)
    assert error(_token(endpoint, lacking, "system/*.write")) == (400, "invalid_scope")  # a viewer
    once = _assertion(keys["rsa"], "RS384", "r1", endpoint, jti="same-jti")
    assert _token(endpoint, once, "system/*.read").status_code == 200
    assert error(_token(endpoint, once, "system/*.read")) == (401, "invalid_client")  # replayed
    elsewhere = _assertion(keys["rsa"], "RS384", "r1", "https://other.example/token")
    assert error(_token(endpoint, elsewhere, "system/*.read")) == (401, "invalid_client")
    stranger = _assertion(keys["rsa"], "RS384", "r1", endpoint, iss="nobody")
    assert error(_token(endpoint, stranger, "system/*.read")) == (401, "invalid_client")
    no_grant = requests.post(endpoint, data={"grant_type": "password"}, timeout=10)
    assert error(no_grant) == (400, "unsupported_grant_type")


def test_tokens_stop_with_the_client_and_static_tokens_keep_working(
    base: str, client_id: str, keys: dict[str, Any], tokens: dict[str, str], store: Store
) -> None:
    endpoint = f"{base}/auth/token"
    granted = _token(endpoint, _assertion(keys["rsa"], "RS384", "r1", endpoint), "system/*.read")
    headers = {"Authorization": f"Bearer {granted.json()['access_token']}"}
    assert requests.get(f"{base}/fhir/Patient", headers=headers, timeout=10).status_code == 200
    store.set_user_active("ehr", False)
    assert requests.get(f"{base}/fhir/Patient", headers=headers, timeout=10).status_code == 401
    static = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert requests.get(f"{base}/fhir/Patient", headers=static, timeout=10).status_code == 200
    forged = jwt.encode({"iss": "kerma", "sub": "viewer-user", "scope": "system/*.*",
                         "exp": int(time.time()) + 60}, "guessed", algorithm="HS256")  # fmt: skip
    forged_headers = {"Authorization": f"Bearer {forged}"}
    assert (
        requests.get(f"{base}/fhir/Patient", headers=forged_headers, timeout=10).status_code == 401
    )


def test_cors_for_the_configured_origins_only(base: str, tokens: dict[str, str]) -> None:
    preflight = {"Origin": "https://ehr.hospital.test", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "Authorization"}  # fmt: skip
    answer = requests.options(f"{base}/fhir/Patient", headers=preflight, timeout=10)
    assert answer.headers.get("Access-Control-Allow-Origin") == "https://ehr.hospital.test"
    assert "authorization" in answer.headers.get("Access-Control-Allow-Headers", "").lower()
    stranger = requests.get(
        f"{base}/fhir/metadata", headers={"Origin": "https://evil.test"}, timeout=10
    )
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_no_cors_by_default(client: Any) -> None:
    answer = client.get("/fhir/metadata", headers={"Origin": "https://ehr.hospital.test"})
    assert "Access-Control-Allow-Origin" not in answer.headers
