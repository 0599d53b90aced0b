"""One HL7 message in, one ACK out: keep it, read it, apply it, answer.

Whatever arrives gets an answer: AA when applied, AE when understood but not applicable (a
required field missing, a date that is not a date, a store failure), AR when it is not a
message Kerma reads (no MSH, unsupported type, event or version). Nothing here raises to the
listener.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from server.dose.units import UnitTable
from server.fhir.errors import FhirError
from server.fhir.mapping import Context
from server.fhir.orders import Orders
from server.fhir.patients import Patients
from server.fhir.service import FhirService
from server.hl7 import adt, orders
from server.hl7.ack import Outcome, ack
from server.hl7.inbox import Inbox
from server.hl7.message import Malformed, Message, action, handled_types, parse, supported_versions
from server.logs import log_event

log = logging.getLogger("kerma.hl7")
Apply = Callable[[Message], Outcome]


class Hl7Handler:
    def __init__(
        self, service: FhirService, inbox: Inbox, units: UnitTable, ctx: Context, receiver: str
    ) -> None:
        self.service = service
        self.inbox = inbox
        self.units = units
        self.patients = Patients(service, ctx)
        self.orders = Orders(service, ctx)
        self.receiver = receiver
        self._actions: dict[str, Apply] = {
            "patient": self._patient,
            "merge": self._merge,
            "identifier": self._identifier,
            "order": self._order,
        }

    def handle(self, raw: bytes) -> bytes:
        try:
            message = parse(raw)
        except Malformed as e:
            log_event(log, "hl7-rejected", bytes=len(raw), error=e.code)
            return ack(None, Outcome.rejected(e.reason, e.code), self.receiver)
        key = Inbox.key(message.sender, message.event, message.control_id, raw)
        earlier = self.inbox.keep(key, message.event, raw)
        if earlier is not None and _content(earlier.raw) != _content(raw):
            reason = f"control id {message.control_id!r} was used before for another message"
            return ack(message, Outcome.failed(reason, "205", "MSH^1^10"), self.receiver)
        if earlier is not None and earlier.ack is not None:
            log_event(log, "hl7-duplicate", control=message.control_id, ack=earlier.state)
            return earlier.ack  # the same message again: the same answer, applied once
        return self._apply(key, message)

    def replay(self) -> int:
        """Apply what was kept but not applied before a crash; how many."""
        pending = self.inbox.unfinished()
        for kept in pending:
            self._apply(kept.key, parse(kept.raw))
        return len(pending)

    def _apply(self, key: str, message: Message) -> bytes:
        outcome = self._outcome(message)
        answer = ack(message, outcome, self.receiver)
        self.inbox.finish(key, outcome.code, answer, outcome.reason)
        # the reason stays in the inbox and the ACK: it may quote patient data
        log_event(
            log,
            "hl7-message",
            ack=outcome.code,
            type=message.event,
            control=message.control_id,
            error=outcome.error,
        )
        return answer

    def _outcome(self, message: Message) -> Outcome:
        if message.version not in supported_versions():
            return Outcome.rejected(
                f"HL7 version {message.version!r} is not supported "
                f"(supported: {', '.join(supported_versions())})",
                "203",
                "MSH^1^12",
            )
        todo = action(message.event)
        if todo is None:
            kind = message.event.split("^")[0]
            code = "201" if kind in handled_types() else "200"
            return Outcome.rejected(
                f"{message.event} is not a message Kerma applies", code, "MSH^1^9"
            )
        try:
            return self._actions[todo](message)
        except adt.Unreadable as e:
            return Outcome.failed(e.reason, e.code, e.where)
        except FhirError as e:
            return Outcome.failed(str(e), "207")
        except Exception as e:  # a store failure: the sender will retry
            log.exception("hl7 apply failed event=%s", message.event)
            return Outcome.failed(f"internal error: {type(e).__name__}", "207")

    def _patient(self, message: Message) -> Outcome:
        record = adt.patient(message, self.units)
        with self.service.store.transaction() as tx:
            ref = self.patients.upsert(tx, record)
        return Outcome.applied(ref)

    def _merge(self, message: Message) -> Outcome:
        record = adt.patient(message, self.units)
        prior = adt.merged_identifiers(message)
        with self.service.store.transaction() as tx:
            merged = self.patients.merge(tx, record, prior, f"HL7 {message.event} {message.sender}")
        if merged.merged is None:
            return Outcome.applied(f"{merged.survivor}; no patient known by the prior identifiers")
        return Outcome.applied(
            f"{merged.merged} merged into {merged.survivor}, {merged.moved} moved"
        )

    def _order(self, message: Message) -> Outcome:
        record = adt.patient(message, self.units)
        found = orders.orders(message)
        with self.service.store.transaction() as tx:
            patient_ref = self.patients.upsert(tx, record)
            refs = [self.orders.apply(tx, order, patient_ref) for order in found]
        return Outcome.applied(", ".join(refs))

    def _identifier(self, message: Message) -> Outcome:
        record = adt.patient(message, self.units)
        prior = adt.merged_identifiers(message)
        with self.service.store.transaction() as tx:
            ref = self.patients.change_identifier(tx, record, prior)
        if ref is None:
            return Outcome.applied("no patient known by the prior identifiers")
        return Outcome.applied(ref)


def _content(raw: bytes) -> bytes:
    """The message without its MSH segment: a resend may carry a new MSH-7 time."""
    return raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").partition(b"\r")[2].strip()
