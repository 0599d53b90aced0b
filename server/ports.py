"""The ports `kerma serve` listens on: a port it cannot bind named with its setting, and the
check that finds one taken before anything starts (exit 2 at once, not after seconds of
imports and a fork server)."""

from __future__ import annotations

import errno
import socket

from server.config import Settings


class ListenError(Exception):
    """A listener could not bind its port: the message names the port and its setting."""


def bind_problem(error: OSError, setting: str, host: str, port: int) -> ListenError:
    why = {
        errno.EADDRINUSE: "is in use (another program, or another kerma serve, listens there)",
        errno.EACCES: "needs privileges (ports below 1024); choose a port above 1023",
        errno.EADDRNOTAVAIL: f"cannot be bound: {host} is not an address of this machine",
    }.get(error.errno or 0, f"cannot be bound ({error.strerror})")
    return ListenError(f"{setting}={port} on {host} {why}; stop it or set {setting}")


def family_of(host: str) -> int:
    """The address family of a listening host (IPv6 when it has colons)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def taken(settings: Settings) -> list[ListenError]:
    """Each configured port that cannot be bound now, bound and let go at once as the
    listeners will bind it (SO_REUSEADDR: the last run's connections in TIME_WAIT do not
    count). The listeners still report a port taken between this check and their own bind."""
    found = []
    for setting, host, port in (
        ("KERMA_HTTP_PORT", settings.http_host, settings.http_port),
        ("KERMA_DICOM_PORT", settings.dicom_host, settings.dicom_port),
        ("KERMA_HL7_PORT", settings.hl7_host, settings.hl7_port),
    ):
        if not port:
            continue  # 0: that listener is off (or takes a port the kernel chooses)
        with socket.socket(family_of(host)) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as e:
                found.append(bind_problem(e, setting, host, port))
    return found
