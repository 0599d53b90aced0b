"""Forwarding received dose reports by C-STORE (IHE REM, Dose Information Reporter): to a PACS
as received, to a registry de-identified (server/outbound/deidentify.py).

A failure status of the class "out of resources" (A7xx), a refused association or a network
error is tried again; any other failure (the peer does not take this object) stops it. The
object waits in KERMA_DATA_DIR/outbound/ until every destination has it, or gave up.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.status import code_to_category

from server.auth.keys import site_key
from server.config import Settings
from server.dicom.transport import narrate_only_when_debugging
from server.fhir.mapping import extension
from server.fhir.service import FhirService, body_of
from server.notify.channels import SendFailed
from server.outbound.deidentify import deidentified
from server.outbound.plan import (
    DESTINATION_URL,
    DICOM_FORWARD,
    OBJECT_URL,
    OUTBOUND_SYSTEM,
    Peer,
    peers,
    plan,
)

_TIMEOUT_S = 30.0
_PENDING = ("preparation", "in-progress")


class Forwarder:
    def __init__(self, service: FhirService, settings: Settings) -> None:
        self._service = service
        self._settings = settings
        self._peers = {peer.label: peer for peer in peers(settings)}
        self._folder = plan(settings).folder

    def channel(self, communication: dict[str, Any]) -> str:
        return DICOM_FORWARD

    def send(self, communication: dict[str, Any]) -> str:
        label, name = (
            _text(communication, DESTINATION_URL),
            _text(communication, OBJECT_URL),
        )
        peer = self._peers.get(label)
        if peer is None:
            raise SendFailed(f"{label} is no longer a forwarding destination", permanent=True)
        try:
            data = (self._folder / name).read_bytes()
        except FileNotFoundError:
            raise SendFailed(f"the object {name} is no longer kept", permanent=True) from None
        if peer.deidentify:
            data = deidentified(data, site_key(self._settings))
        status = self._store(peer, data)
        self._release(communication, name)
        return f"{peer.label} (status 0x{status:04X})"

    def _store(self, peer: Peer, data: bytes) -> int:
        dataset = dcmread(BytesIO(data))
        narrate_only_when_debugging()
        ae = AE(ae_title=self._settings.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = _TIMEOUT_S
        syntaxes = list(dict.fromkeys([dataset.file_meta.TransferSyntaxUID,
                                       ExplicitVRLittleEndian, ImplicitVRLittleEndian]))  # fmt: skip
        ae.add_requested_context(dataset.SOPClassUID, syntaxes)
        association = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
        if not association.is_established:
            raise SendFailed(f"{peer.label} did not accept an association (refused, rejected or "
                             "unreachable)")  # fmt: skip
        try:
            answer = association.send_c_store(dataset)
        finally:
            association.release()
        if "Status" not in answer:
            raise SendFailed(f"{peer.label} did not answer the C-STORE")
        status = int(answer.Status)
        category = code_to_category(status)
        if category in ("Success", "Warning"):
            return status
        retry = 0xA700 <= status <= 0xA7FF
        raise SendFailed(f"{peer.label} answered {category} 0x{status:04X}", permanent=not retry)

    def _release(self, communication: dict[str, Any], name: str) -> None:
        """Delete the kept object once no other destination still waits for it."""
        sop_uid = name.removesuffix(".dcm")
        for label in self._peers:
            key = f"{DICOM_FORWARD}/{label}/{sop_uid}"
            for stored in self._service.all_in(self._service.store, "Communication",
                                               [("identifier", f"{OUTBOUND_SYSTEM}|{key}")]):  # fmt: skip
                other = body_of(stored)
                if other["id"] != communication["id"] and other.get("status") in _PENDING:
                    return
        (self._folder / name).unlink(missing_ok=True)


def _text(resource: dict[str, Any], url: str) -> str:
    return str((extension(resource, url) or {}).get("valueString", ""))
