"""One HL7 message in, one ACK out: keep it, read it, apply it, answer.

Whatever arrives gets an answer: AA when applied, AE when understood but not applicable (a
required field missing, a date that is not a date, a store failure), AR when it is not a
message Kerma reads (no MSH, unsupported type, event or version, larger than the limits).
Nothing here raises to the listener.

Only the MSH segment is parsed before the message is kept and checked against the limits, so
the cost of a message Kerma refuses does not grow with its size.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from server.config import Settings
from server.dose import plausibility
from server.dose.patient import PatientRecord
from server.dose.units import UnitTable
from server.fhir.errors import FhirError
from server.fhir.mapping import Context
from server.fhir.service import FhirService
from server.hl7 import adt, orders
from server.hl7.ack import Outcome, ack
from server.hl7.inbox import Inbox, Kept
from server.hl7.message import (
    Malformed,
    Message,
    action,
    handled_types,
    parse,
    parse_header,
    segment_count,
    supported_version,
    supported_versions,
)
from server.logs import log_event
from server.mappings import plausibility_bounds, unit_table
from server.metrics import HL7_MESSAGES
from server.orders.requests import Orders
from server.patients.identity import Patients
from server.site import build_service, site_context
from server.store.port import Store

log = logging.getLogger("kerma.hl7")
Apply = Callable[[Message], Outcome]
# a message that was being applied when Kerma stopped this often is not applied again
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Limits:
    """The largest message Kerma reads (KERMA_HL7_MAX_BYTES, KERMA_HL7_MAX_SEGMENTS)."""

    max_bytes: int = 1024 * 1024
    max_segments: int = 1000

    def refusal(self, raw: bytes) -> Outcome | None:
        if len(raw) > self.max_bytes:
            return Outcome.rejected(
                f"the message has {len(raw)} bytes; Kerma reads up to {self.max_bytes} "
                "(KERMA_HL7_MAX_BYTES)",
                "207",
            )
        segments = segment_count(raw)
        if segments > self.max_segments:
            return Outcome.rejected(
                f"the message has {segments} segments; Kerma reads up to "
                f"{self.max_segments} (KERMA_HL7_MAX_SEGMENTS)",
                "207",
            )
        return None


class Hl7Handler:
    def __init__(
        self,
        service: FhirService,
        inbox: Inbox,
        units: UnitTable,
        ctx: Context,
        receiver: str,
        limits: Limits,
    ) -> None:
        self.service = service
        self.inbox = inbox
        self.units = units
        self.patients = Patients(service, ctx)
        self.orders = Orders(service, ctx)
        self.receiver = receiver
        self.limits = limits
        self._actions: dict[str, Apply] = {
            "patient": self._patient,
            "merge": self._merge,
            "identifier": self._identifier,
            "order": self._order,
        }

    def handle(self, raw: bytes) -> bytes:
        answer = self._reply(raw)
        HL7_MESSAGES.labels(_message_type(raw), _ack_code(answer)).inc()
        return answer

    def _reply(self, raw: bytes) -> bytes:
        try:
            header = parse_header(raw)
        except Malformed as e:
            log_event(log, "hl7-rejected", bytes=len(raw), error=e.code)
            return ack(None, Outcome.rejected(e.reason, e.code), self.receiver)
        key = Inbox.key(header.sender, header.event, header.control_id, raw)
        earlier = self.inbox.keep(key, header.event, raw)
        if earlier is not None and _content(earlier.raw) != _content(raw):
            reason = f"control id {header.control_id!r} was used before for another message"
            return ack(header, Outcome.failed(reason, "205", "MSH^1^10"), self.receiver)
        if earlier is not None and earlier.ack is not None:
            log_event(log, "hl7-duplicate", control=header.control_id, ack=earlier.state)
            return earlier.ack  # the same message again: the same answer, applied once
        if earlier is not None:  # kept but never answered: this is another try
            return self._retry(earlier, header)
        return self._apply(key, raw, header)

    def replay(self) -> int:
        """Apply what was kept but not applied before Kerma stopped; how many."""
        pending = self.inbox.unfinished()
        for kept in pending:
            self._retry(kept, parse_header(kept.raw))
        return len(pending)

    def _retry(self, kept: Kept, header: Message) -> bytes:
        if kept.attempts >= MAX_ATTEMPTS:
            reason = (
                f"Kerma stopped {kept.attempts} times while applying this message; it is kept "
                "in the HL7 inbox and not applied again"
            )
            return self._answer(kept.key, header, Outcome.failed(reason, "207"))
        self.inbox.attempt(kept.key)
        return self._apply(kept.key, kept.raw, header)

    def _apply(self, key: str, raw: bytes, header: Message) -> bytes:
        return self._answer(key, header, self._outcome(raw, header))

    def _answer(self, key: str, header: Message, outcome: Outcome) -> bytes:
        answer = ack(header, outcome, self.receiver)
        self.inbox.finish(key, outcome.code, answer, outcome.reason)
        # the reason stays in the inbox and the ACK: it may quote patient data
        log_event(
            log,
            "hl7-message",
            ack=outcome.code,
            type=header.event,
            control=header.control_id,
            error=outcome.error,
        )
        return answer

    def _outcome(self, raw: bytes, header: Message) -> Outcome:
        refusal = self.limits.refusal(raw)
        if refusal is not None:
            return refusal
        if not supported_version(header.version):
            return Outcome.rejected(
                f"HL7 version {header.version!r} is not supported "
                f"(supported: {supported_versions()})",
                "203",
                "MSH^1^12",
            )
        todo = action(header.event)
        if todo is None:
            kind = header.event.split("^")[0]
            code = "201" if kind in handled_types() else "200"
            return Outcome.rejected(
                f"{header.event} is not a message Kerma applies", code, "MSH^1^9"
            )
        try:
            return self._actions[todo](parse(raw))
        except Malformed as e:
            return Outcome.rejected(e.reason, e.code)
        except adt.Unreadable as e:
            return Outcome.failed(e.reason, e.code, e.where)
        except FhirError as e:
            return Outcome.failed(str(e), "207")
        except Exception as e:  # a store failure: the sender will retry
            log.exception("hl7 apply failed event=%s", header.event)
            return Outcome.failed(f"internal error: {type(e).__name__}", "207")

    def _patient(self, message: Message) -> Outcome:
        record, aside = self._record(message)
        with self.service.store.transaction() as tx:
            ref = self.patients.upsert(tx, record)
        return Outcome.applied(ref + aside)

    def _merge(self, message: Message) -> Outcome:
        record, aside = self._record(message)
        prior = adt.merged_identifiers(message)
        with self.service.store.transaction() as tx:
            merged = self.patients.merge(tx, record, prior, f"HL7 {message.event} {message.sender}")
        if merged.merged is None:
            return Outcome.applied(
                f"{merged.survivor}; no patient known by the prior identifiers{aside}"
            )
        return Outcome.applied(
            f"{merged.merged} merged into {merged.survivor}, {merged.moved} moved{aside}"
        )

    def _order(self, message: Message) -> Outcome:
        record, aside = self._record(message)
        found = orders.orders(message)
        with self.service.store.transaction() as tx:
            patient_ref = self.patients.upsert(tx, record)
            refs = [self.orders.apply(tx, order, patient_ref) for order in found]
        return Outcome.applied(", ".join(refs) + aside)

    def _identifier(self, message: Message) -> Outcome:
        record, aside = self._record(message)
        prior = adt.merged_identifiers(message)
        with self.service.store.transaction() as tx:
            ref = self.patients.change_identifier(tx, record, prior)
        if ref is None:
            return Outcome.applied("no patient known by the prior identifiers" + aside)
        return Outcome.applied(ref + aside)

    def _record(self, message: Message) -> tuple[PatientRecord, str]:
        """The message's patient with what no person can have set aside (plausibility bounds
        of mappings/dose/plausibility.yaml), and "; " + what was, for the ACK's MSA-3."""
        record, notes = plausibility.plausible_record(
            adt.patient(message, self.units), plausibility_bounds(), date.today()
        )
        return record, "".join(f"; {note}" for note in notes)


def _content(raw: bytes) -> bytes:
    """The message without its MSH segment: a resend may carry a new MSH-7 time."""
    return raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").partition(b"\r")[2].strip()


def build_handler(store: Store, settings: Settings) -> Hl7Handler:
    return Hl7Handler(
        build_service(store, settings),
        Inbox(settings.data_dir / "hl7" / "inbox.sqlite3"),
        unit_table(),
        site_context(settings),
        settings.ae_title,
        Limits(settings.hl7_max_bytes, settings.hl7_max_segments),
    )


def _message_type(raw: bytes) -> str:
    """MSH-9's type and event (ADT^A08), or "unknown": a metric label, read without parsing."""
    fields = raw.lstrip(b"\x0b").split(b"\r", 1)[0].split(raw[3:4] or b"|")
    kind = fields[8].split(b"^")[:2] if len(fields) > 8 and raw.startswith(b"MSH") else []
    text = "^".join(part.decode("ascii", "replace") for part in kind)
    return text if re.fullmatch(r"[A-Z0-9]{3}(\^[A-Z0-9]{3})?", text) else "unknown"


def _ack_code(answer: bytes) -> str:
    start = answer.find(b"\rMSA") + 5
    return answer[start : start + 2].decode("ascii", "replace") if start > 4 else "unknown"
