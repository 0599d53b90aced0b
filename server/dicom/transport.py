"""Socket settings for every association, ours as SCP or as SCU.

pynetdicom sends a DIMSE command and its dataset as separate small writes; with Nagle's
algorithm on, each waits for the peer's delayed ACK (about 40 ms), which caps a loopback
association at some 20 stores/s. TCP_NODELAY sends them at once.
"""

from __future__ import annotations

import logging
import socket

from pynetdicom import _config, evt
from pynetdicom.events import Event


def _no_delay(event: Event) -> None:
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


NO_DELAY = (evt.EVT_CONN_OPEN, _no_delay)


def narrate_only_when_debugging() -> None:
    """pynetdicom's standard handlers narrate every PDU and DIMSE message of an association
    made from now on: strings built under the association's lock, the whole dataset copied to
    say "Present", for a logger that drops them below WARNING (logs.py) unless Kerma logs at
    DEBUG. Off, they are not called at all (about 0.2 ms of every stored object)."""
    debugging = logging.getLogger("pynetdicom").isEnabledFor(logging.DEBUG)
    _config.LOG_HANDLER_LEVEL = "standard" if debugging else "none"
