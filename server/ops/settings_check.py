"""Every setting checked before anything starts: all problems at once, one line each, naming
the variable, its value, what is wrong and what would do (`kerma config check`)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.config import Settings
from server.mappings import alert_rule_sets, national_levels, yaml_names
from server.outbound.oru import VERSIONS
from server.outbound.plan import peers_in

# the smallest sensible value of each number (ports: 0 = off; ranges end at 65535)
_MINIMUM = {
    "http_threads": 1, "hl7_max_bytes": 1024, "hl7_max_segments": 10, "hl7_timeout_seconds": 1,
    "pacs_pull_days": 1, "notify_retry_seconds": 1, "notify_attempts": 1, "session_hours": 1,
    "sign_in_attempts": 1, "sign_in_lock_minutes": 1, "max_body_bytes": 1024,
    "page_size_default": 1, "page_size_max": 1, "graphql_max_depth": 1, "graphql_max_cost": 1,
    "pacs_pull_minutes": 0, "http_processes": 0, "dicom_processes": 0,
}  # fmt: skip
_PORTS = ("http_port", "dicom_port", "hl7_port")  # listeners: 0 turns one off
_PEER_PORTS = ("smtp_port", "pacs_port")
_OPTIONAL_PEER_PORTS = ("ris_port",)  # 0: off
_CHOICES = {
    "smtp_starttls": ("yes", "no"),
    "pacs_retrieve": ("get", "move"),
    "pseudonym_date_precision": ("day", "month", "year"),
    "pseudonym_descriptions": ("remove", "keep"),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "log_format": ("text", "json"),
    "ris_hl7_version": VERSIONS,
}
_SECRETS = ("smtp_password", "pseudonym_key", "token_key", "fhir_push_token")
_AE_TITLE = re.compile(r"^[\x21-\x5b\x5d-\x7e](?:[\x20-\x5b\x5d-\x7e]{0,14}[\x21-\x5b\x5d-\x7e])?$")


def problems(settings: Settings) -> list[str]:
    """What is wrong with these settings, one readable line per problem (empty: all good)."""
    return [f"{_variable(name)}={_shown(settings, name)}: {why}" for name, why in _checks(settings)]


def effective(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) of every setting in force, secrets and URL passwords masked."""
    return [(_variable(f.name), _shown(settings, f.name)) for f in dataclasses.fields(settings)]


def _checks(settings: Settings) -> Iterator[tuple[str, str]]:
    for check in _CHECKS:
        yield from check(settings)


def _numbers(settings: Settings) -> Iterator[tuple[str, str]]:
    if not 0 <= settings.dicom_nice <= 19:
        yield "dicom_nice", "a nice value: 0 (as HTTP) to 19 (what HTTP and storing leave)"
    for name in _PORTS:
        if not 0 <= getattr(settings, name) <= 65535:
            yield name, "a port is 1 to 65535 (0 turns the listener off)"
    for name in _PEER_PORTS:
        if not 1 <= getattr(settings, name) <= 65535:
            yield name, "a port is 1 to 65535"
    for name in _OPTIONAL_PEER_PORTS:
        if not 0 <= getattr(settings, name) <= 65535:
            yield name, "a port is 1 to 65535 (0: off)"
    for name, least in _MINIMUM.items():
        if getattr(settings, name) < least:
            yield name, f"must be at least {least}"
    if settings.page_size_default > settings.page_size_max:
        yield "page_size_default", "must not exceed KERMA_PAGE_SIZE_MAX"
    used: dict[tuple[str, int], str] = {}
    for name in _PORTS:
        host, port = getattr(settings, name.replace("_port", "_host")), getattr(settings, name)
        if port and (host, port) in used:
            yield name, f"the same port as {_variable(used[(host, port)])}; give each its own"
        used[(host, port)] = name


def _choices(settings: Settings) -> Iterator[tuple[str, str]]:
    for name, allowed in _CHOICES.items():
        value = getattr(settings, name)
        if (value.upper() if name == "log_level" else value) not in allowed:
            yield name, "must be one of " + ", ".join(allowed)


def _site(settings: Settings) -> Iterator[tuple[str, str]]:
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        yield "timezone", "not a time zone; use an IANA name such as Europe/Berlin or UTC"
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", settings.daily_at):
        yield "daily_at", "a local time of day as HH:MM, 00:00 to 23:59"
    known_sets = {level.set for level in national_levels()}
    for name in _listed(settings.drl_sets):
        if name not in known_sets:
            yield "drl_sets", f"no DRL set {name!r}; known: " + ", ".join(sorted(known_sets))
    rule_sets = alert_rule_sets()
    for name in _listed(settings.alert_rules):
        if name not in rule_sets:
            yield "alert_rules", f"no rule set {name!r}; known: " + ", ".join(rule_sets)
    surveys = yaml_names("surveys")
    if settings.survey and settings.survey not in surveys:
        yield "survey", f"no survey {settings.survey!r}; known: " + ", ".join(surveys)


def _network(settings: Settings) -> Iterator[tuple[str, str]]:
    if settings.store not in ("", "sqlite") and urlsplit(settings.store).scheme not in (
        "mongodb", "mongodb+srv"
    ):  # fmt: skip
        yield "store", "empty or sqlite (the embedded store), or a mongodb:// URL"
    if settings.redis_url and urlsplit(settings.redis_url).scheme not in (
        "redis",
        "rediss",
        "unix",
    ):
        yield "redis_url", "a redis://host:port/db URL, or empty to run jobs in kerma serve"
    if settings.base_url and not _is_http_url(settings.base_url):
        yield "base_url", "an http:// or https:// URL, or empty"
    for origin in _listed(settings.cors_origins):
        if not _is_http_url(origin):
            yield "cors_origins", f"{origin!r} is not an origin such as https://app.hospital.local"
    if not _AE_TITLE.match(settings.ae_title):
        yield "ae_title", "an AE title: 1 to 16 characters, no backslash or control characters"
    for title in _listed(settings.dicom_allowed_aes.replace("*", "")):
        if not _AE_TITLE.match(title):
            yield "dicom_allowed_aes", f"{title!r} is not an AE title (1 to 16 characters)"
    if settings.pacs_ae_title and not _AE_TITLE.match(settings.pacs_ae_title):
        yield "pacs_ae_title", "an AE title: 1 to 16 characters, or empty for no PACS"
    for name in ("forward_to", "forward_deidentified_to"):
        try:
            peers_in(getattr(settings, name), deidentify=False)
        except ValueError as e:
            yield name, f"{e}; list destinations as AET@host:port, comma-separated"
    yield from _fhir_push(settings)
    if settings.smtp_host and "@" not in settings.smtp_from:
        yield "smtp_from", "the sender's mail address, e.g. kerma@hospital.local"


def _fhir_push(settings: Settings) -> Iterator[tuple[str, str]]:
    if settings.fhir_push_url and not _is_http_url(settings.fhir_push_url):
        yield "fhir_push_url", "the EHR's FHIR base, an http:// or https:// URL, or empty"
    if settings.fhir_push_client_id and settings.fhir_push_token:
        yield "fhir_push_token", "give a static token or a SMART client ID, not both"
    if settings.fhir_push_client_id and not settings.fhir_push_key.is_file():
        yield "fhir_push_key", "the SMART client's private key (PEM) is not a readable file"
    if settings.fhir_push_url and not (settings.fhir_push_token or settings.fhir_push_client_id):
        yield "fhir_push_url", "set KERMA_FHIR_PUSH_TOKEN or KERMA_FHIR_PUSH_CLIENT_ID too"


def _storage(settings: Settings) -> Iterator[tuple[str, str]]:
    folder = settings.data_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        yield "data_dir", f"cannot be made ({e.strerror}); create it or choose another folder"
        return
    if not os.access(folder, os.W_OK | os.X_OK):
        yield "data_dir", f"not writable by this user (uid {os.getuid()}); fix its owner or mode"


_CHECKS: tuple[Callable[[Settings], Iterator[tuple[str, str]]], ...] = (
    _numbers, _choices, _site, _network, _storage,
)  # fmt: skip


def _listed(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _variable(name: str) -> str:
    return f"KERMA_{name.upper()}"


def _shown(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    if name in _SECRETS:
        return "(set)" if value else ""
    text = str(value)
    parts = urlsplit(text) if "://" in text else None
    if parts is not None and parts.password:
        return text.replace(f":{parts.password}@", ":***@")
    return text
