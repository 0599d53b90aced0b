"""The site's choices of what applies, made in the console (or over the API): the national DRL
sets in force and the alert rule sets of mappings/alerts/. Kept as one FHIR Library
(identifier urn:kerma:site|choices, a YAML attachment) so every process reads the same and
FHIR's history keeps each change. Without it, KERMA_DRL_SETS and KERMA_ALERT_RULES apply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from server.config import Settings
from server.fhir.errors import FhirError, Issue
from server.fhir.libraries import asset_library, attachment_texts
from server.fhir.service import FhirService, body_of
from server.mappings import alert_rule_sets, national_levels, parse_yaml

CHOICES_SYSTEM = "urn:kerma:site"
CHOICES_IDENTIFIER = f"{CHOICES_SYSTEM}|choices"
_YAML = "application/yaml"


@dataclass(frozen=True)
class Choices:
    drl_sets: frozenset[str]
    alert_sets: tuple[str, ...]
    library_id: str | None = None


def configured(settings: Settings) -> Choices:
    """The choices the settings make (KERMA_DRL_SETS, KERMA_ALERT_RULES: comma-separated)."""

    def names(text: str) -> tuple[str, ...]:
        return tuple(n.strip() for n in text.split(",") if n.strip())

    return Choices(frozenset(names(settings.drl_sets)), names(settings.alert_rules))


def stored(service: FhirService) -> Choices | None:
    """The choices the site made, if it made any (a broken Library is never written)."""
    found = service.all_in(service.store, "Library", [("identifier", CHOICES_IDENTIFIER)])
    return _of(body_of(found[0]), found[0].rid) if found else None


def library(choices: Choices) -> dict[str, Any]:
    text = yaml.safe_dump({"drl_sets": sorted(choices.drl_sets),
                           "alert_rules": list(choices.alert_sets)}, allow_unicode=True)  # fmt: skip
    body = asset_library((CHOICES_SYSTEM, "choices"), "KermaSiteChoices",
                         "The national DRL sets and alert rule sets in force at the site",
                         {_YAML: ("choices.yaml", text)})  # fmt: skip
    return {**body, "id": choices.library_id} if choices.library_id else body


def problems(resource: dict[str, Any]) -> list[Issue]:
    """What keeps a choices Library from being used (checked when it is written)."""
    if resource.get("resourceType") != "Library" or not _is_choices(resource):
        return []
    try:
        _of(resource, None)
    except FhirError as e:
        return e.issues
    return []


def _of(resource: dict[str, Any], rid: str | None) -> Choices:
    texts = attachment_texts(resource, [_YAML])
    attached = [c for c in resource.get("content", []) if c.get("contentType") == _YAML]
    try:
        if len(attached) != 1:
            raise ValueError("not one YAML attachment")
        table = parse_yaml(texts[_YAML]) or {}
        drl_sets, alert_sets = list(table.get("drl_sets", [])), list(table.get("alert_rules", []))
    except (ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        raise _invalid(
            "the choices are one YAML attachment: drl_sets and alert_rules lists"
        ) from None
    unknown = sorted(set(drl_sets) - {lv.set for lv in national_levels()})
    unknown += sorted(set(alert_sets) - set(alert_rule_sets()))
    if unknown:
        raise _invalid(f"no national DRL set or alert rule set {', '.join(map(str, unknown))}")
    return Choices(frozenset(map(str, drl_sets)), tuple(map(str, alert_sets)), rid)


def _is_choices(resource: dict[str, Any]) -> bool:
    return any(i.get("system") == CHOICES_SYSTEM and i.get("value") == "choices"
               for i in resource.get("identifier") or [])  # fmt: skip


def _invalid(text: str) -> FhirError:
    return FhirError(422, Issue("invalid", text, expression="Library.content"))
