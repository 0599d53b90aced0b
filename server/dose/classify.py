"""Classification of an examination to a standard procedure (RadLex Playbook RPID, or a local
code where the Playbook has none) by rules kept as data (mappings/classification/rules.yaml).

Pure: the rules and the procedure list come in as tables, the examination as its words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# the rule of a study classified by its acquisitions (Rules.classify_study)
ROLLED_UP = "acquisitions"
# how sure a decision is: a rule matched the words as written; only once abbreviations and
# other languages' words were read as the rules' (rules.yaml `synonyms`); or no rule knew the
# examination's words and its acquisitions gave the procedure
HIGH, MEDIUM, LOW = "high", "medium", "low"
_TOKENS = re.compile(r"[\W_]+")
# the modality groups whose acquisitions are classified one by one
PER_ACQUISITION = frozenset({"CT", "DX", "MG"})
_MODALITY_GROUPS = {
    "CR": "DX",
    "DX": "DX",
    "PX": "DX",
    "IO": "DX",
    "CT": "CT",
    "MG": "MG",
    "RF": "RF",
    "XA": "XA",
}


@dataclass(frozen=True)
class Exam:
    """What is known of an examination to classify it by."""

    modality: str
    requested_procedure: str = ""
    description: str = ""
    protocols: tuple[str, ...] = ()
    events: int = 0

    @property
    def text(self) -> str:
        parts = (self.requested_procedure, self.description, *self.protocols)
        return " ".join(p for p in parts if p).lower().replace("^", " ")


@dataclass(frozen=True)
class Acquisition:
    """What is known of one CT acquisition or one radiograph to classify it by."""

    modality: str
    protocol: str = ""
    region: str = ""  # target region as the device names it
    acquisition_type: str = ""  # CT: spiral, sequenced, constant angle (localizer)...
    view: str = ""  # DX/MG: image view (PA, AP, cranio-caudal...)
    laterality: str = ""
    orientation: str = ""  # DX/MG: patient orientation (erect, recumbent)
    phantom: str = ""  # CT: the CTDI phantom (head, body)
    scan_length_mm: float | None = None

    @property
    def text(self) -> str:
        parts = (
            self.protocol,
            self.region,
            self.acquisition_type,
            self.view,
            self.laterality,
            self.orientation,
        )
        return " ".join(p for p in parts if p).lower().replace("^", " ")


@dataclass(frozen=True)
class Procedure:
    system: str
    code: str
    name: str
    region: str = ""  # RadLex body region: HEAD, CHEST...


@dataclass(frozen=True)
class Classified:
    rule: str  # the id of the rule that matched
    procedure: Procedure | None  # None: not a patient examination (QA, physics tests)
    version: int
    confidence: str = HIGH  # HIGH, MEDIUM, LOW


@dataclass(frozen=True)
class _Rule:
    id: str
    modalities: frozenset[str]
    all: tuple[re.Pattern[str], ...]
    none: tuple[re.Pattern[str], ...]
    min_events: int
    procedure: Procedure | None
    phantom: str = ""  # acquisitions: the phantom's name contains this (head, body)
    scan_length_mm: tuple[float, float] | None = None  # acquisitions: within [min, max]

    def fits(self, acquisition: Acquisition) -> bool:
        """The acquisition's phantom and scanning length are as the rule asks."""
        length = acquisition.scan_length_mm
        return self.phantom in acquisition.phantom.lower() and (
            self.scan_length_mm is None
            or (length is not None and self.scan_length_mm[0] <= length <= self.scan_length_mm[1])
        )

    def matches(self, group: str, text: str) -> bool:
        return (
            group in self.modalities
            and all(p.search(text) for p in self.all)
            and not any(p.search(text) for p in self.none)
        )


class Rules:
    def __init__(self, table: dict[str, Any], procedures: list[dict[str, str]]) -> None:
        known = {
            p["code"]: Procedure(p["system"], p["code"], p["name"], p.get("body_region", ""))
            for p in procedures
        }
        self._procedures = known
        words = {k: f"(?:{v})" for k, v in (table.get("words") or {}).items()}
        self.version = int(table["version"])
        self._rules = [self._rule(spec, known, words) for spec in table["rules"]]
        self._acquisitions = [
            self._rule(spec, known, words) for spec in table.get("acquisitions") or []
        ]
        self._synonyms = {
            str(k).lower(): str(v).lower() for k, v in (table.get("synonyms") or {}).items()
        }

    def _readings(self, text: str) -> list[tuple[str, str]]:
        """The text as written (HIGH), then with each word the synonyms know followed by what it
        means (MEDIUM; only when there is such a word): "ct thx abd" -> "... thorax abdomen".
        Each rule, in order, is tried on both, so a more specific rule read through synonyms
        wins over a later, more general one matching the words as written.

        >>> Rules({"version": 1, "rules": [], "synonyms": {"THX": "thorax"}}, [])._readings("ct thx")
        [('ct thx', 'high'), ('ct thx thorax', 'medium')]
        """
        meant = [self._synonyms[t] for t in _TOKENS.split(text) if t in self._synonyms]
        return [(text, HIGH)] + ([(f"{text} {' '.join(meant)}", MEDIUM)] if meant else [])

    def procedure(self, code: str) -> Procedure | None:
        return self._procedures.get(code)

    def named(self, name: str) -> Procedure | None:
        """The procedure of that name (the dose facts keep names, levels name codes)."""
        return next((p for p in self._procedures.values() if p.name == name), None)

    def classify(self, exam: Exam) -> Classified | None:
        """The first rule that matches, or None (the examination goes to the review list)."""
        group = modality_group(exam.modality)
        readings = self._readings(exam.text)
        for rule in self._rules:
            for text, confidence in readings:
                if rule.matches(group, text) and exam.events >= rule.min_events:
                    return Classified(rule.id, rule.procedure, self.version, confidence)
        return None

    def classify_acquisition(self, acquisition: Acquisition) -> Classified | None:
        """The first acquisition rule that matches, or None (the examination's procedure
        applies to it)."""
        group = modality_group(acquisition.modality)
        readings = self._readings(acquisition.text)
        for rule in self._acquisitions:
            for text, confidence in readings:
                if rule.matches(group, text) and rule.fits(acquisition):
                    return Classified(rule.id, rule.procedure, self.version, confidence)
        return None

    def classify_study(
        self, exam: Exam, acquisitions: Sequence[Acquisition] = ()
    ) -> Classified | None:
        """The first examination rule that matches; else, when every acquisition is decided
        and those that are procedures name one and the same (a head CT whose protocol names
        were never seen, whose acquisitions are all of the head), that procedure, decided by
        the rule ROLLED_UP; else None. Acquisitions of several regions, or any undecided, give
        None: nothing is forced.

        >>> rules = Rules({"version": 1, "rules": [], "acquisitions": [
        ...     {"id": "loc", "modality": ["CT"], "all": ["scout"], "procedure": None},
        ...     {"id": "head", "modality": ["CT"], "all": ["head"], "procedure": "h"}]},
        ...     [{"system": "s", "code": "h", "name": "CT acquisition: head"}])
        >>> found = rules.classify_study(Exam("CT"), [Acquisition("CT", "Scout"), Acquisition("CT", "Head 5mm")])
        >>> (found.rule, found.procedure.code)
        ('acquisitions', 'h')
        >>> rules.classify_study(Exam("CT"), [Acquisition("CT", "Head"), Acquisition("CT", "Routine")]) is None
        True
        """
        found = self.classify(exam)
        if found is not None or not acquisitions:
            return found
        decided = [self.classify_acquisition(a) for a in acquisitions]
        if any(d is None for d in decided):
            return None
        procedures = {d.procedure for d in decided if d is not None and d.procedure is not None}
        if len(procedures) != 1:
            return None
        return Classified(ROLLED_UP, procedures.pop(), self.version, LOW)

    @staticmethod
    def _rule(spec: dict[str, Any], known: dict[str, Procedure], words: dict[str, str]) -> _Rule:
        code = spec["procedure"]
        if code is not None and code not in known:
            raise ValueError(f"rule {spec['id']}: procedure {code!r} is not in procedures.csv")

        def compiled(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
            named = (
                re.sub(r"\{(\w+)\}", lambda m: words.get(m.group(1), m.group(0)), p)
                for p in patterns
            )
            return tuple(re.compile(p) for p in named)

        return _Rule(
            id=spec["id"],
            modalities=frozenset(spec["modality"]),
            all=compiled(spec.get("all", [])),
            none=compiled(spec.get("none", [])),
            min_events=int(spec.get("min_events", 0)),
            procedure=known[code] if code is not None else None,
            phantom=str(spec.get("phantom", "")).lower(),
            scan_length_mm=tuple(spec["scan_length_mm"]) if "scan_length_mm" in spec else None,
        )


def modality_group(modality: str) -> str:
    """The modality as rules and levels name it: CR and other radiography are DX."""
    return _MODALITY_GROUPS.get(modality.upper(), modality.upper())
