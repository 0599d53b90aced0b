"""Sending one notification: an e-mail over SMTP or a JSON POST to a rest-hook.

The standard library's smtplib and urllib do this well; a failure is a `SendFailed` with a
reason a person can act on, and the caller decides about retrying.
"""

from __future__ import annotations

import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage

import orjson

TIMEOUT_S = 10.0


class SendFailed(Exception):
    """The message did not go out; the text says why. `permanent`: the receiver refused it
    for good (an HL7 AR), so it is not tried again."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 25
    sender: str = "kerma@localhost"
    starttls: bool = False
    user: str = ""
    password: str = ""


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    text: str
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (file name, content type, bytes)


def send_mail(smtp: Smtp, mail: Mail) -> None:
    if not smtp.host:
        raise SendFailed("no SMTP server is configured (KERMA_SMTP_HOST)")
    if not mail.to:
        raise SendFailed("no recipients")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        smtp.sender,
        ", ".join(mail.to),
        mail.subject,
    )
    message.set_content(mail.text)
    for name, content_type, data in mail.attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_S) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.user:
                client.login(smtp.user, smtp.password)
            refused = client.send_message(message)
    except (OSError, smtplib.SMTPException) as e:
        raise SendFailed(f"SMTP {smtp.host}:{smtp.port}: {e}") from None
    if refused:
        raise SendFailed(f"SMTP refused {', '.join(sorted(refused))}")


def post_json(url: str, body: object | None, headers: dict[str, str]) -> int:
    """POST `body` as FHIR JSON (None: an empty notification); the HTTP status (2xx)."""
    data = orjson.dumps(body) if body is not None else b""
    request = urllib.request.Request(url, data=data, method="POST")
    if body is not None:
        request.add_header("Content-Type", "application/fhir+json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        raise SendFailed(f"{url} answered HTTP {e.code}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise SendFailed(f"{url}: {reason}") from None
