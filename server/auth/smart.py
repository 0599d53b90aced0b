"""SMART Backend Services (HL7 SMART App Launch 2.x, "backend services"): a system such as an
EHR or an integration engine asks for an access token with the OAuth 2.0 client credentials
grant, proving who it is with a JWT it signed with its private key (`private_key_jwt`, RS384 or
ES384); Kerma checks the signature against the public keys registered for the client
(`kerma clients add --jwks`), grants the system scopes the client's role allows
(`system/Observation.read`, `system/*.read`...), and answers with a short-lived access token.

The access token is a JWT Kerma signs itself (HS256, server/auth/keys.py), so every process
serving the store can check it; the client's registration (role, devices, keys) is read again
at each request, so a revoked client's tokens stop working at once. PyJWT (with cryptography)
does the JOSE work.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import jwt

from server.auth.roles import Action, Role, role
from server.store.port import Store, User

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
TOKEN_SECONDS = 300
ASSERTION_SECONDS = 300  # the longest an assertion may live (SMART: no more than 5 minutes)
_ISSUER = "kerma"
# SMART v1 (read, write, *) and v2 (c, r, u, d, s) permissions as Kerma's actions
_V1 = {"read": ("read",), "write": ("write", "delete"), "*": ("read", "write", "delete")}
_V2 = {"c": "write", "r": "read", "u": "write", "d": "delete", "s": "read"}


@dataclass(frozen=True)
class OAuthError(Exception):
    """An OAuth 2.0 error response (RFC 6749 5.2)."""

    status: int
    error: str
    description: str


def configuration(token_url: str) -> dict[str, Any]:
    """/.well-known/smart-configuration of a server that serves backend services."""
    return {
        "token_endpoint": token_url,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.read", "system/*.rs", "system/*.write", "system/*.cud",
                             "system/*.*", "system/Observation.read", "system/Observation.rs"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }  # fmt: skip


def issue(store: Store, form: Mapping[str, str], token_url: str, key: bytes) -> dict[str, Any]:
    """The token response for a client credentials request; OAuthError otherwise."""
    if form.get("grant_type") != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
        raise OAuthError(400, "invalid_request", f"send client_assertion_type {ASSERTION_TYPE} "
                         "and a client_assertion")  # fmt: skip
    client = _authenticated_client(store, form["client_assertion"], token_url)
    requested = form.get("scope", "").split()
    if not requested:
        raise OAuthError(400, "invalid_scope", "ask for system scopes, e.g. system/*.read")
    refused = [s for s in requested if not allowed(role(client.role), s)]
    if refused:
        raise OAuthError(400, "invalid_scope", f"client {client.name} (role {client.role}) may "
                         f"not have {' '.join(refused)}")  # fmt: skip
    now = int(time.time())
    claims = {"iss": _ISSUER, "sub": client.name, "scope": " ".join(requested),
              "iat": now, "exp": now + TOKEN_SECONDS, "jti": uuid.uuid4().hex}  # fmt: skip
    token = jwt.encode(claims, key, algorithm="HS256")
    return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS,
            "scope": claims["scope"]}  # fmt: skip


def _authenticated_client(store: Store, assertion: str, token_url: str) -> User:
    """The registered, active client whose key signed this assertion for this endpoint."""
    try:
        header = jwt.get_unverified_header(assertion)
        issuer = str(jwt.decode(assertion, options={"verify_signature": False}).get("iss", ""))
    except jwt.PyJWTError as e:
        raise OAuthError(401, "invalid_client", f"the client_assertion is not a JWT: {e}") from None
    client = store.user_by_name(issuer) if issuer else None
    if client is None or not client.active or not client.jwks:
        raise OAuthError(401, "invalid_client", f"no active backend client {issuer!r}")
    if header.get("alg") not in ASSERTION_ALGORITHMS:
        raise OAuthError(401, "invalid_client", f"sign with {' or '.join(ASSERTION_ALGORITHMS)}")
    public = _key(client, header.get("kid"))
    try:
        claims = jwt.decode(assertion, public, algorithms=[header["alg"]], audience=token_url,
                            issuer=client.name, options={"require": ["exp", "iss", "sub", "jti"]})  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise OAuthError(401, "invalid_client", "the client_assertion has expired") from None
    except jwt.PyJWTError as e:
        raise OAuthError(401, "invalid_client", f"the client_assertion is not valid: {e}") from None
    if claims["sub"] != client.name:
        raise OAuthError(401, "invalid_client", "the assertion's sub must be its iss, the client")
    if claims["exp"] > time.time() + ASSERTION_SECONDS:
        raise OAuthError(401, "invalid_client", f"an assertion lives {ASSERTION_SECONDS} s at most")
    if not store.first_use(f"{client.name}|{claims['jti']}", float(claims["exp"])):
        raise OAuthError(401, "invalid_client", "this client_assertion was used before (jti)")
    return client


def _key(client: User, kid: str | None) -> Any:
    keys = json.loads(client.jwks).get("keys", [])
    found = [k for k in keys if kid is None or k.get("kid") == kid]
    if not found:
        raise OAuthError(401, "invalid_client", f"client {client.name} has no key {kid!r}")
    try:
        return jwt.PyJWK(found[0]).key
    except jwt.PyJWTError as e:
        raise OAuthError(401, "invalid_client", f"the registered key cannot be used: {e}") from None


def verify(store: Store, token: str, key: bytes) -> User | None:
    """The client an access token was issued to, with its granted scopes; None when the
    token is not one of Kerma's, has expired, or the client was revoked since."""
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"], issuer=_ISSUER,
                            options={"require": ["exp", "sub", "scope"]})  # fmt: skip
    except jwt.PyJWTError:
        return None
    client = store.user_by_name(str(claims["sub"]))
    if client is None or not client.active:
        return None
    return replace(client, scopes=frozenset(str(claims["scope"]).split()))


def permits(scopes: frozenset[str], rtype: str, action: Action) -> bool:
    """Whether granted system scopes cover an action on a type."""
    return any(rtype_of == "*" or rtype_of == rtype for rtype_of, actions in map(parse, scopes)
               if action in actions)  # fmt: skip


def allowed(of: Role, scope: str) -> bool:
    """Whether a role may be granted a system scope (a scope it cannot use is refused)."""
    rtype, actions = parse(scope)
    if not rtype or not actions:
        return False
    if rtype == "*":
        return all("*" in getattr(of, action) for action in actions)
    return all(of.can(action, rtype) for action in actions)


def parse(scope: str) -> tuple[str, tuple[Action, ...]]:
    """`system/Observation.read` -> ("Observation", ("read",)); ("", ()) for what is not a
    system scope.

    >>> parse("system/*.read"), parse("system/Observation.rs"), parse("patient/*.read")
    (('*', ('read',)), ('Observation', ('read',)), ('', ()))
    """
    context, _, rest = scope.partition("/")
    rtype, _, permission = rest.partition(".")
    if context != "system" or not rtype:
        return "", ()
    if permission in _V1:
        return rtype, _V1[permission]  # type: ignore[return-value]
    if permission and set(permission) <= set(_V2):
        return rtype, tuple(dict.fromkeys(_V2[c] for c in permission))  # type: ignore[misc]
    return "", ()
