"""Which Host headers Kerma answers.

Without KERMA_BASE_URL, links (Location and Content-Location headers, paging links, fullUrls)
are made from the request's Host header, so a forged Host would put another server's address
in them, for the client, a cache or a proxy to follow. Then only the names of
KERMA_ALLOWED_HOSTS (default: this machine's names and loopback) are answered, others get 400.
With KERMA_BASE_URL set, links come from it alone and any Host is answered. /health answers
any Host: probes call it by address.
"""

from __future__ import annotations

import functools
import socket

from flask import Flask, request

from server.config import Settings
from server.fhir.errors import FhirError


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """The host names answered (lower case, without port); None: any."""
    if settings.base_url:
        return None
    listed = {h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()}
    if "*" in listed:
        return None
    wildcard = settings.http_host in ("", "0.0.0.0", "::")
    return frozenset(listed or _this_machine() | (set() if wildcard else {settings.http_host}))


@functools.cache
def _this_machine() -> frozenset[str]:
    return frozenset({"localhost", "127.0.0.1", "::1", socket.gethostname().lower(),
                      socket.getfqdn().lower()})  # fmt: skip


def host_name(header: str) -> str:
    """The name of a Host header, without its port: "[::1]:8080" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def init_app(app: Flask, settings: Settings) -> None:
    allowed = allowed_hosts(settings)
    if allowed is None:
        return

    @app.before_request
    def _check_host() -> None:
        if request.path.startswith("/health"):
            return
        name = host_name(request.headers.get("Host", ""))
        if name not in allowed:
            raise FhirError.of(400, "invalid", f"Host {name!r} is not a name of this server: "
                               "KERMA_ALLOWED_HOSTS lists them, or set KERMA_BASE_URL")  # fmt: skip
