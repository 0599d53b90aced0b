"""Delivering queued Communications (status preparation or in-progress): notifications, each
through its Subscription's channel, and outbound messages (server/outbound/: dose results to
the RIS, RDSR forwarding, FHIR push). Success makes one `completed` with `sent`, a failure
`in-progress` with the reason and the time of the next attempt (back-off doubling from
KERMA_NOTIFY_RETRY_SECONDS), and after KERMA_NOTIFY_ATTEMPTS failures, or a refusal for good,
`stopped`. A completed one is never sent again. Delivery is at least once: a crash between
sending and recording it may repeat that one message (outbound messages carry the same
identity each time, so the receiver sees a repeat, not a new one).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from server.config import Settings
from server.fhir.errors import FhirError
from server.fhir.mapping import device_label
from server.fhir.service import FhirService, body_of
from server.fhir.values import instant
from server.logs import log_event
from server.metrics import DELIVERIES
from server.notify import channels, messages
from server.notify.routing import NOTIFICATION_SYSTEM
from server.periodic import Periodic
from server.site.subscriptions import is_digest, recipient_role

log = logging.getLogger("kerma.notify")
ATTEMPTS_URL = "https://kerma.example.org/fhir/StructureDefinition/delivery-attempts"
NEXT_URL = "https://kerma.example.org/fhir/StructureDefinition/next-attempt"
POLL_S = 0.5  # how often `kerma serve` looks for new notifications


@dataclass(frozen=True)
class Policy:
    retry_s: float = 30.0
    attempts: int = 8

    def next_delay_s(self, failures: int) -> float:
        return float(self.retry_s * 2 ** (failures - 1))


class Sender(Protocol):
    """Sends the Communications of one identifier system (notifications, outbound messages)."""

    def channel(self, communication: dict[str, Any]) -> str:
        """What it goes through (email, rest-hook, hl7-oru...): a metric label."""
        ...

    def send(self, communication: dict[str, Any]) -> str:
        """Send it; to whom, in words. Raises SendFailed (or FhirError) when it did not go."""
        ...


class Dispatcher(Periodic):
    """Sends what is due, every POLL_S seconds in `kerma serve` (or once: run_once): the
    Communications of each sender's identifier system, one queue with one retry policy."""

    def __init__(self, service: FhirService, policy: Policy, senders: Mapping[str, Sender]) -> None:
        super().__init__("notify")
        self._service = service
        self._policy = policy
        self._senders = senders

    @classmethod
    def from_settings(
        cls, service: FhirService, settings: Settings, more: Mapping[str, Sender] | None = None
    ) -> Dispatcher:
        """Notifications, and the `more` senders (outbound messages) the caller adds."""
        policy = Policy(float(settings.notify_retry_seconds), settings.notify_attempts)
        return cls(service, policy, {NOTIFICATION_SYSTEM: Notifier.from_settings(service, settings),
                                     **(more or {})})  # fmt: skip

    def wait_s(self) -> float:
        return POLL_S

    def tick(self) -> None:
        self.run_once()

    def run_once(self, now: float | None = None) -> int:
        """Attempt every Communication that is due; how many were attempted."""
        now = time.time() if now is None else now
        attempted = 0
        for system, sender in self._senders.items():
            pairs = [("identifier", f"{system}|"), ("status", "preparation,in-progress")]
            due = [
                body_of(s)
                for s in self._service.all_in(self._service.store, "Communication", pairs)
                if _next_attempt(body_of(s)) <= now
            ]
            for communication in due:
                self._attempt(sender, communication, now)
            attempted += len(due)
        return attempted

    def _attempt(self, sender: Sender, communication: dict[str, Any], now: float) -> None:
        failures = _attempts(communication)
        try:
            recipients = sender.send(communication)
        except (channels.SendFailed, FhirError) as e:
            failures += 1
            permanent = isinstance(e, channels.SendFailed) and e.permanent
            gave_up = permanent or failures >= self._policy.attempts
            update = {
                "status": "stopped" if gave_up else "in-progress",
                "statusReason": {"text": str(e)},
                "extension": _delivery(
                    failures, None if gave_up else now + self._policy.next_delay_s(failures)
                ),
            }
            DELIVERIES.labels(
                sender.channel(communication), "stopped" if gave_up else "failed"
            ).inc()
            log_event(
                log,
                "delivery-gave-up" if gave_up else "delivery-retry",
                communication=communication["id"],
                attempts=failures,
                reason=str(e),
            )
        else:
            update = {
                "status": "completed",
                "sent": instant(time.time()),
                "payload": [{"contentString": f"sent to {recipients}"}],
                "extension": _delivery(failures + 1, None),
            }
            DELIVERIES.labels(sender.channel(communication), "sent").inc()
            log_event(log, "delivered", communication=communication["id"], attempts=failures + 1)
        kept = [e for e in communication.get("extension") or [] if e.get("url") not in _DELIVERY]
        body = {k: v for k, v in communication.items() if k not in ("statusReason",)}
        update["extension"] = [*kept, *update["extension"]]
        self._service.update("Communication", communication["id"], {**body, **update})


class Notifier:
    """Notifications: each Communication through its Subscription's channel, a mail or a
    webhook."""

    def __init__(self, service: FhirService, smtp: channels.Smtp, base_url: str = "") -> None:
        self._service = service
        self._smtp = smtp
        self._base_url = base_url

    @classmethod
    def from_settings(cls, service: FhirService, settings: Settings) -> Notifier:
        smtp = channels.Smtp(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_starttls == "yes",
            settings.smtp_user,
            settings.smtp_password,
        )
        return cls(service, smtp, settings.fhir_base)

    def channel(self, communication: dict[str, Any]) -> str:
        try:
            subscription = self._read(communication["basedOn"][0]["reference"])
        except FhirError:
            return "unknown"
        return str((subscription.get("channel") or {}).get("type", "unknown"))

    def send(self, communication: dict[str, Any]) -> str:
        subscription = self._read(communication["basedOn"][0]["reference"])
        found = [self._read(about["reference"]) for about in communication["about"]]
        return self._send(subscription, found)

    def _send(self, subscription: dict[str, Any], found: list[dict[str, Any]]) -> str:
        """Send issues (one, or a day's for a digest) through a subscription's channel; to
        whom, in words."""
        channel = subscription.get("channel") or {}
        if channel.get("type") == "rest-hook":
            headers = dict(
                (name.strip(), value.strip())
                for name, _, value in (h.partition(":") for h in channel.get("header") or [])
            )
            payload = found[0] if channel.get("payload") else None
            status = channels.post_json(channel["endpoint"], payload, headers)
            return f"{channel['endpoint']} (HTTP {status})"
        to = self._mail_recipients(subscription)
        if found[0]["resourceType"] == "DocumentReference":
            pdf = base64.b64decode(found[0]["content"][0]["attachment"]["data"])
            channels.send_mail(self._smtp, messages.report_mail(found[0], pdf, self._base_url, to))
            return ", ".join(to)
        if is_digest(subscription):
            mail = messages.digest_mail(found, self._device_name, self._base_url, to)
        else:
            mail = messages.issue_mail(found[0], self._device_name(found[0]), self._base_url, to)
        channels.send_mail(self._smtp, mail)
        return ", ".join(to)

    def _mail_recipients(self, subscription: dict[str, Any]) -> tuple[str, ...]:
        endpoint = str((subscription.get("channel") or {}).get("endpoint", ""))
        found = [a.strip() for a in endpoint.removeprefix("mailto:").split(",") if a.strip()]
        role = recipient_role(subscription)
        if role:
            people = self._service.all_in(
                self._service.store, "PractitionerRole", [("role", role), ("active", "true")]
            )
            found += [
                str(t["value"])
                for p in people
                for t in body_of(p).get("telecom") or []
                if t.get("system") == "email" and t.get("value")
            ]
        return tuple(dict.fromkeys(found))

    def _device_name(self, issue: dict[str, Any]) -> str:
        ref = next(
            (
                i["reference"]
                for i in issue.get("implicated", [])
                if i["reference"].startswith("Device/")
            ),
            None,
        )
        if ref is None:
            return ""
        return device_label(self._read(ref))

    def _read(self, ref: str) -> dict[str, Any]:
        rtype, rid = ref.split("/", 1)
        return body_of(self._service.read(rtype, rid))


def _extension(resource: dict[str, Any], url: str) -> dict[str, Any]:
    return next((e for e in resource.get("extension") or [] if e.get("url") == url), {})


def _attempts(communication: dict[str, Any]) -> int:
    return int(_extension(communication, ATTEMPTS_URL).get("valueInteger", 0))


def _next_attempt(communication: dict[str, Any]) -> float:
    text = _extension(communication, NEXT_URL).get("valueInstant")
    return datetime.fromisoformat(text).timestamp() if text else float("-inf")


_DELIVERY = (ATTEMPTS_URL, NEXT_URL)


def _delivery(attempts: int, next_at: float | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [{"url": ATTEMPTS_URL, "valueInteger": attempts}]
    if next_at is not None:
        found.append({"url": NEXT_URL, "valueInstant": instant(next_at)})
    return found


@dataclass(frozen=True)
class Delivery:
    """One queued message as a person reads it (the console's list of messages out)."""

    rid: str
    kind: str  # "notification", or the outbound kind's words
    status: str
    attempts: int
    updated: str  # instant of the last change
    destination: str
    about: str  # the first resource it is about: "ImagingStudy/<id>", "DetectedIssue/<id>"
    outcome: str  # to whom it went, or why not


def deliveries(service: FhirService, systems: tuple[str, ...], status: str = "") -> list[Delivery]:
    """The queued messages of these identifier systems, the most recently changed first."""
    found: list[Delivery] = []
    for system in systems:
        pairs = [("identifier", f"{system}|"), ("_count", "1000")]
        if status:
            pairs.append(("status", status))
        for stored in service.search("Communication", pairs).matches:
            found.append(_delivery_of(body_of(stored), system))
    return sorted(found, key=lambda d: d.updated, reverse=True)


def send_again(service: FhirService, rid: str) -> None:
    """Queue a stopped message again, its attempts counted from zero."""
    body = body_of(service.read("Communication", rid))
    if body.get("status") != "stopped":
        raise FhirError.of(409, "conflict", f"Communication/{rid} is {body.get('status')}; only "
                                            "a stopped one is sent again")  # fmt: skip
    kept = [e for e in body.get("extension") or [] if e.get("url") not in _DELIVERY]
    again = {k: v for k, v in body.items() if k not in ("statusReason", "extension")}
    service.update("Communication", rid, {**again, "status": "preparation", "extension": kept})


def _delivery_of(body: dict[str, Any], system: str) -> Delivery:
    category = (body.get("category") or [{}])[0]
    destination = next((str(e.get("valueString", "")) for e in body.get("extension") or []
                        if e.get("url", "").endswith("outbound-destination")), "")  # fmt: skip
    reason = (body.get("statusReason") or {}).get("text", "")
    payload = ((body.get("payload") or [{}])[0]).get("contentString", "")
    return Delivery(
        body["id"],
        category.get("text") or ("notification" if system == NOTIFICATION_SYSTEM else system),
        str(body.get("status", "")),
        _attempts(body),
        str((body.get("meta") or {}).get("lastUpdated", "")),
        destination or ((body.get("basedOn") or [{}])[0]).get("reference", ""),
        ((body.get("about") or [{}])[0]).get("reference", ""),
        reason or payload,
    )
