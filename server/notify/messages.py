"""The words of a notification. No patient names: the mail names the issue, the device and
the study's date, and links to the issue, where people with access read the rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.notify.channels import Mail

_SEVERITY = {"high": "HIGH", "moderate": "moderate", "low": "low"}


def issue_mail(issue: dict[str, Any], device: str, base_url: str, to: tuple[str, ...]) -> Mail:
    code = issue["code"]["coding"][0]
    tags = {t["system"].rsplit("/", 1)[-1]: t["code"] for t in issue.get("meta", {}).get("tag", [])}
    where = " ".join(p for p in (tags.get("modality"), device) if p) or "a device"
    subject = f"[Kerma] {_SEVERITY.get(issue.get('severity', ''), '')} {code['display']}: {where}"
    link = f"{base_url.rstrip('/')}/DetectedIssue/{issue['id']}"
    page = f"{console_url(base_url)}/alerts/{issue['id']}"
    lines = [
        f"{code['display']} ({issue.get('severity', '')}), found {issue.get('identifiedDateTime', '')}",
        "",
        issue.get("detail", ""),
        "",
        f"Device: {device or 'unknown'}"
        + (f", {tags['department']}" if "department" in tags else ""),
        f"Rule: {', '.join(c['text'] for e in issue.get('evidence', []) for c in e.get('code', []))}",
        "",
        f"Review and acknowledge: {page}",
        f"(over the API: POST {link}/$acknowledge with a comment)",
    ]
    return Mail(to, " ".join(subject.split()), "\n".join(lines) + "\n")


def console_url(base_url: str) -> str:
    """The web console's address: the FHIR base without its /fhir."""
    return base_url.rstrip("/").removesuffix("/fhir")


def digest_mail(
    found: list[dict[str, Any]],
    device_of: Callable[[dict[str, Any]], str],
    base_url: str,
    to: tuple[str, ...],
) -> Mail:
    """The daily review list: every issue still to review, most severe first."""
    order = {"high": 0, "moderate": 1, "low": 2}
    ranked = sorted(
        found, key=lambda i: (order.get(i.get("severity", ""), 3), i.get("identifiedDateTime", ""))
    )
    lines = [
        f"{len(ranked)} dose alerts to review: {console_url(base_url)}/alerts",
        "",
    ]
    for n, issue in enumerate(ranked, 1):
        code = issue["code"]["coding"][0]
        lines += [
            f"{n}. {code['display']} ({issue.get('severity', '')}), {issue.get('identifiedDateTime', '')}, {device_of(issue) or 'unknown device'}",
            f"   {issue.get('detail', '')}",
            f"   {console_url(base_url)}/alerts/{issue['id']}",
            "",
        ]
    return Mail(to, f"[Kerma] {len(ranked)} dose alerts to review", "\n".join(lines))


def report_mail(document: dict[str, Any], pdf: bytes, base_url: str, to: tuple[str, ...]) -> Mail:
    """A report Kerma made, attached."""
    attachment = document["content"][0]["attachment"]
    title = document.get("description", "Dose report")
    link = f"{base_url.rstrip('/')}/DocumentReference/{document['id']}"
    text = f"{title}\n\nThe report is attached ({attachment.get('title', 'report.pdf')}).\nIn Kerma: {link}\n"
    name = attachment.get("title", "report.pdf")
    return Mail(to, f"[Kerma] {title}", text, ((name, attachment["contentType"], pdf),))
