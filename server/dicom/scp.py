"""Kerma's DICOM door: Verification, Storage and MPPS SCP (pynetdicom).

A stored object is answered Success only once its bytes are in the spool, fsynced; reading it
is the spool processor's job, afterwards. Pixel data are never decoded, so every transfer
syntax is accepted as it comes.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from pynetdicom.transport import ThreadedAssociationServer

from server.dicom.access import CallingAeTitles
from server.dicom.part10 import part10
from server.dicom.reactor import IDLE_WAIT_S, WAIT_FOR_WORK, after_http, copy_contexts_cheaply
from server.dicom.spool import Spool
from server.dicom.status import Status
from server.dicom.transport import NO_DELAY, narrate_only_when_debugging
from server.logs import log_event
from server.mappings import read_csv_rows
from server.metrics import RECEIVED

log = logging.getLogger("kerma.dicom")

VERIFICATION = "1.2.840.10008.1.1"
MPPS = "1.2.840.10008.3.1.2.3.3"


def storage_classes() -> list[str]:
    """The SOP classes Kerma stores (mappings/dicom/storage_classes.csv says why each)."""
    return [row["uid"] for row in read_csv_rows("dicom/storage_classes.csv")]


_MAX_ASSOCIATIONS = 32  # modalities, a PACS forwarding, and a backlog being sent in parallel
# the largest PDU a sender may send us: pynetdicom's 16 KB cut a 60 KB dose report into four,
# each decoded and handed between the association's threads (the C-STORE bench's CT RDSRs: 2.6
# P-DATA PDUs per object, 2.0 with this); 1 MiB bounds what one PDU holds in memory
_MAX_PDU_BYTES = 1 << 20


@dataclass(frozen=True)
class ScpConfig:
    ae_title: str
    host: str
    port: int
    nice: int = 0  # of the associations' threads (reactor.py)
    shared_port: bool = False  # other listener processes listen on the same port


def start_scp(
    config: ScpConfig,
    spool: Spool,
    received: Callable[[], None],
    calling: CallingAeTitles,
    extra_handlers: list[tuple[evt.EventType, Callable[..., object], list[object]]] | None = None,
) -> ThreadedAssociationServer:
    """Listen in background threads; `received()` is called after each object is spooled.

    `extra_handlers` binds more services (MPPS) to the same listener, with their contexts.
    """
    narrate_only_when_debugging()
    ae = AE(ae_title=config.ae_title)
    ae.maximum_associations = _MAX_ASSOCIATIONS
    ae.maximum_pdu_size = _MAX_PDU_BYTES
    ae.add_supported_context(VERIFICATION)
    for uid in storage_classes():
        ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(MPPS)
    handlers: list[tuple[evt.EventType, Callable[..., object], list[object]]] = [
        (evt.EVT_C_STORE, handle_store, [spool, received]),
        (evt.EVT_REQUESTED, _handle_requested, [calling]),
        (evt.EVT_CONN_OPEN, after_http, [config.nice]),
        *(extra_handlers or []),
    ]
    server = ae.make_server(
        (config.host, config.port),
        evt_handlers=[NO_DELAY, WAIT_FOR_WORK, *handlers],
        server_class=_SharedPortServer if config.shared_port else ThreadedAssociationServer,
    )
    copy_contexts_cheaply(server)
    # what start_server does after making its server (it offers no server_class): shutdown()
    # removes the server from this list
    ae._servers.append(server)
    # the accept loop notices a stop at its next look (socketserver's default: every 0.5 s, each
    # stop of the listener waited that long); as often as an idle association looks
    threading.Thread(target=server.serve_forever, args=(IDLE_WAIT_S,), name="kerma-dicom-accept",
                     daemon=True).start()  # fmt: skip
    return server


class _SharedPortServer(ThreadedAssociationServer):
    """Listens on a port other listener processes listen on too (SO_REUSEPORT): the kernel
    spreads the associations over them."""

    def server_bind(self) -> None:
        cast(socket.socket, self.socket).setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def handle_store(event: Event, spool: Spool, received: Callable[[], None]) -> int:
    request, calling_ae = cast(C_STORE, event.request), event.assoc.requestor.ae_title
    sop_class = cast(UID, request.AffectedSOPClassUID)  # UIDs already: the primitive's setters
    instance = cast(UID, request.AffectedSOPInstanceUID)
    data = part10(sop_class, instance, event.context.transfer_syntax, calling_ae,
                  event.encoded_dataset(False))  # fmt: skip
    try:
        path = spool.put(data)
    except OSError as e:  # full or read-only disk: the sender keeps the object and retries
        log_event(log, "spool-failed", calling_ae=calling_ae, error=e)
        return Status.OUT_OF_RESOURCES
    log_event(log, "received", calling_ae=calling_ae, sop_class=sop_class, bytes=len(data),
              spooled=path.name)  # fmt: skip
    RECEIVED.labels(sop_class.keyword or str(sop_class)).inc()
    received()
    return Status.SUCCESS


def _handle_requested(event: Event, calling: CallingAeTitles) -> None:
    request = event.assoc.requestor.primitive
    title = request.calling_ae_title if request is not None else ""
    if calling.allows(title):
        return
    log_event(log, "association-rejected", calling_ae=title, peer=event.assoc.requestor.address)
    # A-ASSOCIATE-RJ: rejected-permanent, by the service user, calling AE title not recognised
    event.assoc.acse.send_reject(0x01, 0x01, 0x03)
    event.assoc.kill()  # waits until the peer has read the rejection and closed
