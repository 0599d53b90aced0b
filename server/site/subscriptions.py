"""Subscriptions as Kerma serves them: a search of DetectedIssues (alerts) or of
DocumentReferences (reports Kerma made) as criteria, an e-mail or rest-hook channel,
optionally a Kerma role whose people get the mails."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from server.fhir.errors import FhirError, Issue
from server.fhir.search import SearchError, parse

ROLE_URL = "https://kerma.example.org/fhir/StructureDefinition/recipient-role"
DIGEST_URL = "https://kerma.example.org/fhir/StructureDefinition/daily-digest"
CHANNELS = ("email", "rest-hook")


TOPICS = ("DetectedIssue", "DocumentReference")


def criteria(subscription: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The resource type and search of a Subscription's criteria; 422 when Kerma does not
    notify about that type."""
    rtype, _, query = str(subscription.get("criteria", "")).partition("?")
    if rtype not in TOPICS:
        raise FhirError(422, Issue("not-supported", "Kerma notifies about DetectedIssues (alerts) and "
                                   "DocumentReferences (reports): criteria is <type>?<search>",
                                   expression="Subscription.criteria"))  # fmt: skip
    return rtype, parse_qsl(query, keep_blank_values=True)


def problems(subscription: dict[str, Any]) -> list[Issue]:
    """What keeps a Subscription from being served (checked when it is written)."""
    if subscription.get("resourceType") != "Subscription":
        return []
    try:
        parse(*criteria(subscription), strict=True)
    except FhirError as e:
        return e.issues
    except SearchError as e:
        return [Issue("invalid", str(e), expression="Subscription.criteria")]
    channel = subscription.get("channel") or {}
    where = "Subscription.channel"
    if channel.get("type") not in CHANNELS:
        return [Issue("not-supported", f"channel.type is one of {', '.join(CHANNELS)}",
                      expression=f"{where}.type")]  # fmt: skip
    endpoint = str(channel.get("endpoint", ""))
    if channel["type"] == "rest-hook" and not endpoint.startswith(("http://", "https://")):
        return [Issue("required", "a rest-hook needs an http(s) endpoint",
                      expression=f"{where}.endpoint")]  # fmt: skip
    if channel["type"] == "email" and not (
        endpoint.startswith("mailto:") or recipient_role(subscription)
    ):
        return [Issue("required", "an email channel needs a mailto: endpoint or a recipient-role extension",
                      expression=f"{where}.endpoint")]  # fmt: skip
    if is_digest(subscription) and channel["type"] != "email":
        return [Issue("not-supported", "a daily digest is sent by e-mail",
                      expression=f"{where}.type")]  # fmt: skip
    return []


def is_digest(subscription: dict[str, Any]) -> bool:
    """A daily review list: one mail a day with the issues still to review, not one per issue."""
    return any(
        e.get("url") == DIGEST_URL and e.get("valueBoolean") is True
        for e in subscription.get("extension") or []
    )


def recipient_role(subscription: dict[str, Any]) -> str:
    """The Kerma role whose people (PractitionerRole with that code) get the mails, if any."""
    return next(
        (
            str(e.get("valueCode", ""))
            for e in subscription.get("extension") or []
            if e.get("url") == ROLE_URL
        ),
        "",
    )


# what a route sends, as people choose it: (words, criteria); {modality} is filled in
ROUTES = {
    "alerts": ("every alert", "DetectedIssue?"),
    "high": ("high-severity alerts", "DetectedIssue?severity=high"),
    "modality": ("alerts of one modality", "DetectedIssue?_tag={tag}|{modality}"),
    "reports": ("reports Kerma made", "DocumentReference?"),
}


def route(
    what: str, modality: str, channel: str, target: str, digest: bool, reason: str, tag: str
) -> dict[str, Any]:
    """A Subscription routing alerts or reports: by e-mail to an address (`target` holds @) or
    to everyone of a Kerma role, or to a rest-hook URL; `digest`: one mail a day. `tag`: the
    code system of the modality tags alerts carry. 400 for what is no route."""
    if what not in ROUTES or (what == "modality" and not modality.isalpha()):
        raise FhirError.of(400, "invalid", f"a route sends one of {', '.join(ROUTES)}")
    criteria = ROUTES[what][1].format(tag=tag, modality=modality.upper())
    body: dict[str, Any] = {"resourceType": "Subscription", "status": "active", "reason": reason,
                            "criteria": criteria}  # fmt: skip
    extensions: list[dict[str, Any]] = []
    if channel == "email" and "@" in target:
        body["channel"] = {"type": "email", "endpoint": f"mailto:{target}"}
    elif channel == "email":
        body["channel"] = {"type": "email"}
        extensions.append({"url": ROLE_URL, "valueCode": target})
    else:
        body["channel"] = {
            "type": "rest-hook",
            "endpoint": target,
            "payload": "application/fhir+json",
        }
    if digest:
        extensions.append({"url": DIGEST_URL, "valueBoolean": True})
    if extensions:
        body["extension"] = extensions
    return body
