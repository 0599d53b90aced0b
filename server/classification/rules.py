"""The classification rules as a FHIR Library, so that medical physicists edit them over the
API and FHIR's history keeps every version.

The Library (identifier urn:kerma:classification|rules, status active) carries the two tables
of mappings/classification/ as attachments: the rules (`application/yaml`, as rules.yaml) and
the procedures (`text/csv`, as procedures.csv). Its `version` is the rules' `version:`, which
each decision records. Without such a Library the shipped tables apply.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import yaml

from server.dose.classify import Rules
from server.fhir.errors import FhirError, Issue
from server.fhir.libraries import asset_library, attachment_texts
from server.mappings import parse_yaml

RULES_SYSTEM = "urn:kerma:classification"
RULES_IDENTIFIER = f"{RULES_SYSTEM}|rules"
_TABLES = {"application/yaml": "rules.yaml", "text/csv": "procedures.csv"}


def is_rules_library(resource: dict[str, Any]) -> bool:
    return any(
        i.get("system") == RULES_SYSTEM and i.get("value") == "rules"
        for i in resource.get("identifier") or []
    )


def library(rules_yaml: str, procedures_csv: str) -> dict[str, Any]:
    """The Library of two tables (what `kerma classification export` writes)."""
    version = (parse_yaml(rules_yaml) or {}).get("version")
    texts = {"application/yaml": rules_yaml, "text/csv": procedures_csv}
    return asset_library((RULES_SYSTEM, "rules"), "KermaClassificationRules",
                         "Classification of examinations to standard procedures",
                         {kind: (_TABLES[kind], text) for kind, text in texts.items()},
                         str(version))  # fmt: skip


def tables_of(resource: dict[str, Any]) -> tuple[str, str]:
    """The rules (YAML) and procedures (CSV) a Library holds; 422 when it lacks one."""
    where = "Library.content"
    tables = attachment_texts(resource, _TABLES)
    missing = [name for kind, name in _TABLES.items() if kind not in tables]
    if missing:
        raise _invalid(f"the Library needs {', '.join(missing)} as attachments "
                       f"({', '.join(_TABLES)})", where)  # fmt: skip
    return tables["application/yaml"], tables["text/csv"]


def rules_of(resource: dict[str, Any]) -> Rules:
    """The rules a Library holds; 422 saying what is wrong with them."""
    where = "Library.content"
    rules_yaml, procedures_csv = tables_of(resource)
    try:
        table = parse_yaml(rules_yaml)
        procedures = list(csv.DictReader(io.StringIO(procedures_csv)))
        rules = Rules(table, procedures)
    except (yaml.YAMLError, re.error, KeyError, TypeError, ValueError) as e:
        detail = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise _invalid(f"the rules cannot be used: {detail}", where) from None
    if str(resource.get("version")) != str(rules.version):
        raise _invalid(
            f"Library.version must be the rules' version ({rules.version})", "Library.version"
        )
    return rules


def problems(resource: dict[str, Any]) -> list[Issue]:
    """What keeps a rules Library from being used (checked when it is written)."""
    if resource.get("resourceType") != "Library" or not is_rules_library(resource):
        return []
    try:
        rules_of(resource)
    except FhirError as e:
        return e.issues
    return []


def _invalid(text: str, expression: str) -> FhirError:
    return FhirError(422, Issue("invalid", text, expression=expression))
