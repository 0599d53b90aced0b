"""The classification workbench's service: the examinations no rule maps (grouped by their
words, with how many), what a changed set of rules would change on the stored studies, and
the rules as rows to add and remove. A change is a new version of the rules Library (the
same Library the API edits), written through the user's gate; the stored studies follow
when they are classified again ($reclassify)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from server.classification.reclassify import exam_of
from server.classification.rules import RULES_IDENTIFIER, library, rules_of, tables_of
from server.dose.classify import Exam, Rules, modality_group
from server.fhir.acquisitions import acquisitions_of_events
from server.fhir.errors import FhirError
from server.fhir.gate import Gate
from server.fhir.mapping import CLASSIFICATION_URL, DCM, extension
from server.fhir.mapping.study import classifying_rule
from server.fhir.service import FhirService, body_of
from server.mappings import parse_yaml, read_text

_PAGE = 500
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# what re.escape would escape that has a meaning in a pattern: the rest stays readable
_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")


@dataclass
class Unmapped:
    """Examinations of one modality with the same words that no rule maps."""

    modality: str
    words: str  # requested procedure, else study description, as the modality sent it
    protocols: set[str] = field(default_factory=set)
    studies: list[str] = field(default_factory=list)  # "ImagingStudy/<id>"


@dataclass(frozen=True)
class RuleRow:
    id: str
    modalities: tuple[str, ...]
    all: tuple[str, ...]  # every pattern must be found
    none: tuple[str, ...]  # no pattern may be found
    min_events: int
    procedure: str  # its code; "" for no patient examination (QA)


@dataclass(frozen=True)
class Tables:
    """The rules (parsed rules.yaml) and procedures (procedures.csv text) in force."""

    rules: dict[str, Any]
    procedures_csv: str
    library_id: str | None  # the stored Library, None while the shipped tables apply

    @property
    def version(self) -> int:
        return int(self.rules["version"])

    def compiled(self) -> Rules:
        return rules_of(library(yaml.safe_dump(self.rules, sort_keys=False), self.procedures_csv))

    def rows(self) -> list[RuleRow]:
        return [_row(spec) for spec in self.rules["rules"]]

    def procedures(self) -> list[dict[str, str]]:
        """The standard procedures rules may name (code, name, modality...)."""
        return list(csv.DictReader(io.StringIO(self.procedures_csv)))


@dataclass(frozen=True)
class Change:
    study: str  # "ImagingStudy/<id>"
    words: str
    before: str  # the procedure's name, or "unmatched"
    after: str


def current(service: FhirService) -> Tables:
    """The tables in force: the active rules Library, else the shipped ones."""
    pairs = [("identifier", RULES_IDENTIFIER), ("status", "active")]
    found = service.all_in(service.store, "Library", pairs)
    if found:
        rules_yaml, procedures_csv = tables_of(body_of(found[0]))
        return Tables(parse_yaml(rules_yaml), procedures_csv, found[0].rid)
    return Tables(parse_yaml(read_text("classification/rules.yaml")),
                  read_text("classification/procedures.csv"), None)  # fmt: skip


def unmapped(service: FhirService) -> list[Unmapped]:
    """What no rule maps, most examinations first, by the words rules read: the requested
    procedure, else the study description, else the protocols of its irradiation events."""
    groups: dict[tuple[str, str], Unmapped] = {}
    for study in _studies(service):
        if extension(study, CLASSIFICATION_URL) is None or classifying_rule(study) != "unmatched":
            continue  # not classified at all (stored before classification), or classified
        exam = exam_of(study, _events(service, study))
        words = _words(exam)
        group = groups.setdefault((exam.modality, words), Unmapped(exam.modality, words))
        group.studies.append(f"ImagingStudy/{study['id']}")
        group.protocols.update(exam.protocols)
    return sorted(groups.values(), key=lambda u: (-len(u.studies), u.modality, u.words))


def mapping_rule(tables: Tables, modality: str, words: str, procedure: str) -> dict[str, Any]:
    """A rule mapping exactly these words of this modality to a procedure."""
    if tables.compiled().procedure(procedure) is None:
        raise _invalid(f"no standard procedure {procedure!r} in the procedure list")
    text = " ".join(words.lower().replace("^", " ").split())
    if not text:
        raise _invalid("the examination has no words to map")
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:40] or "words"
    return {"id": _free_id(tables, f"local-{slug}"), "modality": [modality_group(modality)],
            "all": [_SPECIAL.sub(r"\\\1", text)], "procedure": procedure}  # fmt: skip


def with_rule(tables: Tables, rule: dict[str, Any]) -> Tables:
    """The tables with a rule added where it wins over the shipped ones but not over the rules
    that set examinations aside (QA, physics tests: procedure null)."""
    if not _RULE_ID.match(str(rule.get("id", ""))):
        raise _invalid("a rule's id is lower-case letters, digits and dashes")
    if any(r["id"] == rule["id"] for r in tables.rules["rules"]):
        raise _invalid(f"there is a rule {rule['id']} already")
    specs = list(tables.rules["rules"])
    first = next((n for n, r in enumerate(specs) if r.get("procedure")), len(specs))
    specs.insert(first, rule)
    return _versioned(tables, specs)


def without_rule(tables: Tables, rule_id: str) -> Tables:
    specs = [r for r in tables.rules["rules"] if r["id"] != rule_id]
    if len(specs) == len(tables.rules["rules"]):
        raise FhirError.of(404, "not-found", f"no rule {rule_id}")
    return _versioned(tables, specs)


def preview(service: FhirService, rules: Rules, limit: int = 200) -> tuple[list[Change], int]:
    """The stored studies whose standard procedure these rules would change (the first
    `limit`), and how many in all; decided as re-classification decides."""
    changes: list[Change] = []
    count = 0
    for study in _studies(service):
        events = _events(service, study)
        exam = exam_of(study, events)
        found = rules.classify_study(exam, acquisitions_of_events(events, exam.modality))
        after = found.procedure.name if found and found.procedure else "unmatched"
        if found and found.procedure is None:
            after = "not a patient examination"
        before = _procedure_name(study)
        if after != before:
            count += 1
            if len(changes) < limit:
                changes.append(Change(f"ImagingStudy/{study['id']}", _words(exam), before, after))
    return changes, count


def save(service: FhirService, tables: Tables, gate: Gate) -> str:
    """Write the tables as the next version of the rules Library; its reference."""
    body = library(yaml.safe_dump(tables.rules, sort_keys=False, allow_unicode=True),
                   tables.procedures_csv)  # fmt: skip
    if tables.library_id is None:
        saved = service.create("Library", body, gate=gate)
    else:
        saved = service.update("Library", tables.library_id, {**body, "id": tables.library_id},
                               gate=gate)  # fmt: skip
    return f"Library/{saved.stored.rid}"


def studies_count(service: FhirService) -> int:
    return service.search("ImagingStudy", [("_summary", "count")]).total or 0


def _studies(service: FhirService) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        page = service.search("ImagingStudy", [("_count", str(_PAGE)), ("_offset", str(offset))])
        yield from (body_of(s) for s in page.matches)
        offset += len(page.matches)
        if len(page.matches) < _PAGE:
            return


def _words(exam: Exam) -> str:
    return exam.requested_procedure or exam.description or " ".join(exam.protocols)


def _events(service: FhirService, study: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's irradiation events (their protocols are words rules read)."""
    pairs = [("part-of", f"ImagingStudy/{study['id']}"), ("code", f"{DCM}|113852")]
    return [body_of(s) for s in service.all_in(service.store, "Observation", pairs)]


def _procedure_name(study: dict[str, Any]) -> str:
    if classifying_rule(study) == "unmatched":
        return "unmatched"
    coding = ((study.get("procedureCode") or [{}])[0].get("coding") or [{}])[0]
    return str(coding.get("display") or "not a patient examination")


def _versioned(tables: Tables, specs: list[dict[str, Any]]) -> Tables:
    rules = {**tables.rules, "version": tables.version + 1, "rules": specs}
    changed = Tables(rules, tables.procedures_csv, tables.library_id)
    changed.compiled()  # 422 before anything is written when the rules cannot be used
    return changed


def _row(spec: dict[str, Any]) -> RuleRow:
    modality = spec.get("modality", [])
    return RuleRow(str(spec["id"]), tuple([modality] if isinstance(modality, str) else modality),
                   tuple(spec.get("all", [])), tuple(spec.get("none", [])),
                   int(spec.get("min_events", 0)), str(spec.get("procedure") or ""))  # fmt: skip


def _free_id(tables: Tables, wanted: str) -> str:
    taken = {str(r["id"]) for r in tables.rules["rules"]}
    candidate, n = wanted, 2
    while candidate in taken:
        candidate, n = f"{wanted}-{n}", n + 1
    return candidate


def _invalid(text: str) -> FhirError:
    return FhirError.of(422, "invalid", text)
