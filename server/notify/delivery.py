"""Delivering queued notifications (Communications in status preparation or in-progress).

Each is sent through its Subscription's channel; success makes it `completed` with `sent`,
a failure `in-progress` with the reason and the time of the next attempt (back-off doubling
from KERMA_NOTIFY_RETRY_SECONDS), and after KERMA_NOTIFY_ATTEMPTS failures `stopped`. A
completed notification is never sent again. Delivery is at least once: a crash between
sending and recording it may repeat that one message.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.config import Settings
from server.fhir.errors import FhirError
from server.fhir.mapping import device_label
from server.fhir.service import FhirService, body_of
from server.fhir.values import instant
from server.logs import log_event
from server.metrics import NOTIFICATIONS
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


class Dispatcher(Periodic):
    """Sends what is due, every POLL_S seconds in `kerma serve` (or once: run_once)."""

    def __init__(
        self, service: FhirService, smtp: channels.Smtp, policy: Policy, base_url: str = ""
    ) -> None:
        super().__init__("notify")
        self._service = service
        self._smtp = smtp
        self._policy = policy
        self._base_url = base_url

    @classmethod
    def from_settings(cls, service: FhirService, settings: Settings) -> Dispatcher:
        smtp = channels.Smtp(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_starttls == "yes",
            settings.smtp_user,
            settings.smtp_password,
        )
        policy = Policy(float(settings.notify_retry_seconds), settings.notify_attempts)
        base = settings.base_url or f"http://{settings.http_host}:{settings.http_port}/fhir"
        return cls(service, smtp, policy, base)

    def wait_s(self) -> float:
        return POLL_S

    def tick(self) -> None:
        self.run_once()

    def run_once(self, now: float | None = None) -> int:
        """Attempt every notification that is due; how many were attempted."""
        now = time.time() if now is None else now
        pairs = [
            ("identifier", f"{NOTIFICATION_SYSTEM}|"),
            ("status", "preparation,in-progress"),
        ]
        due = [
            body_of(s)
            for s in self._service.all_in(self._service.store, "Communication", pairs)
            if _next_attempt(body_of(s)) <= now
        ]
        for communication in due:
            self._attempt(communication, now)
        return len(due)

    def _attempt(self, communication: dict[str, Any], now: float) -> None:
        failures = _attempts(communication)
        channel = "unknown"  # the Subscription's channel type, once it is read
        try:
            subscription = self._read(communication["basedOn"][0]["reference"])
            channel = str((subscription.get("channel") or {}).get("type", "unknown"))
            found = [self._read(about["reference"]) for about in communication["about"]]
            recipients = self._send(subscription, found)
        except (channels.SendFailed, FhirError) as e:
            failures += 1
            gave_up = failures >= self._policy.attempts
            update = {
                "status": "stopped" if gave_up else "in-progress",
                "statusReason": {"text": str(e)},
                "extension": _delivery(
                    failures, None if gave_up else now + self._policy.next_delay_s(failures)
                ),
            }
            NOTIFICATIONS.labels(channel, "stopped" if gave_up else "failed").inc()
            log_event(
                log,
                "notify-gave-up" if gave_up else "notify-retry",
                notification=communication["id"],
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
            NOTIFICATIONS.labels(channel, "sent").inc()
            log_event(log, "notified", notification=communication["id"], attempts=failures + 1)
        body = {k: v for k, v in communication.items() if k not in ("statusReason",)}
        self._service.update("Communication", communication["id"], {**body, **update})

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


def _delivery(attempts: int, next_at: float | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [{"url": ATTEMPTS_URL, "valueInteger": attempts}]
    if next_at is not None:
        found.append({"url": NEXT_URL, "valueInstant": instant(next_at)})
    return found
