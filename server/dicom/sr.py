"""SR content trees as typed, indexed items, matched by concept code, never by meaning.

`Item.of(dataset)` reads a content item and its children once; `item.child(codes.DCM.X)`
finds a child by (scheme, value) through an index built on first use. NUM items keep the
unit they state (resolved to UCUM through the alias table); `num_in(unit)` converts, and a
missing or unknown unit becomes a finding, not a silent number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sr._snomed_dict import mapping as _snomed_mapping  # PS3.16 SNOMED RT <-> CT table
from pydicom.sr.coding import Code

from server.dicom.text import parse_datetime, repair_text
from server.dose.model import Coded, Equipment, Finding, Participant
from server.dose.pulses import PulseValues, summary
from server.dose.units import IncompatibleUnits, UnitTable, UnknownUnit
from server.mappings import Concept as Named
from server.mappings import code_aliases

Concept = tuple[str, str]  # (scheme designator, code value)
_SNOMED_RT_TO_CT: dict[str, str] = _snomed_mapping["SRT"]
_ALIASES = code_aliases()


def concept(scheme: str, value: str) -> Concept:
    """The canonical key of a code: legacy SNOMED-RT (SRT) codes become their SNOMED CT code,
    using the table from the DICOM standard that pydicom ships; codes vendors write for a
    neighbouring concept, or a private copy of it, become it (mappings/dicom/code_aliases.csv).

    >>> concept("SRT", "P5-08000"), concept("DCM", "113830"), concept("DCM", "113632")
    (('SCT', '77477000'), ('DCM', '113830'), ('DCM', '111632'))
    >>> concept("99PHI-IXR-XPER", "021")
    ('DCM', '113753')
    """
    if scheme in ("SRT", "SNM3"):
        mapped = _SNOMED_RT_TO_CT.get(value)
        if mapped:
            return ("SCT", mapped)
    return _ALIASES.get((scheme, value), (scheme, value))


def key(code: Code | Concept) -> Concept:
    if isinstance(code, Code):
        return concept(code.scheme_designator, code.value)
    return concept(*code)


def coded(seq_item: Dataset) -> Coded:
    scheme, value = concept(
        str(seq_item.get("CodingSchemeDesignator", "")), str(seq_item.get("CodeValue", ""))
    )
    return Coded(scheme, value, repair_text(str(seq_item.get("CodeMeaning", ""))))


@dataclass(frozen=True)
class Item:
    path: str
    concept: Concept | None
    value_type: str
    relationship: str
    text: str | None = None
    code: Coded | None = None
    number: float | None = None
    numbers: tuple[float, ...] = ()  # every value of a multi-valued NUM (one per pulse)
    unit: str | None = None  # as written in MeasurementUnitsCodeSequence
    uid: str | None = None
    datetime: dt.datetime | None = None
    children: tuple[Item, ...] = ()
    _index: dict[Concept, list[Item]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, ds: Dataset, path: str = "") -> Item:
        name = ds.get("ConceptNameCodeSequence")
        concept_key = None
        if name:
            concept_key = concept(
                str(name[0].get("CodingSchemeDesignator", "")), str(name[0].get("CodeValue", ""))
            )
        value_type = str(ds.get("ValueType", ""))
        here = f"{path}/{concept_key[0]}:{concept_key[1]}" if concept_key else path or "/"
        values = _values(ds, value_type)
        children = tuple(
            cls.of(child, f"{here}[{i}]") for i, child in enumerate(ds.get("ContentSequence") or [])
        )
        return cls(
            here,
            concept_key,
            value_type,
            str(ds.get("RelationshipType", "")),
            children=children,
            **values,
        )

    def _lookup(self) -> dict[Concept, list[Item]]:
        if not self._index and self.children:
            for child in self.children:
                if child.concept is not None:
                    self._index.setdefault(child.concept, []).append(child)
        return self._index

    def child(self, code: Code | Concept) -> Item | None:
        found = self._lookup().get(key(code))
        return found[0] if found else None

    def children_of(self, code: Code | Concept) -> list[Item]:
        return self._lookup().get(key(code), [])

    def walk(self) -> Iterator[Item]:
        yield self
        for child in self.children:
            yield from child.walk()

    def num_in(
        self, code: Code | Concept, unit: str, units: UnitTable, findings: list[Finding]
    ) -> float | None:
        """The value of a NUM child converted to `unit`; problems go to `findings`."""
        item = self.child(code)
        if item is None or item.number is None:
            return None
        converted = _converted(item, (item.number,), unit, units, findings)
        return converted[0] if converted else None

    def nums_in(
        self, code: Code | Concept, unit: str, units: UnitTable, findings: list[Finding]
    ) -> tuple[float, ...]:
        """Every value of every NUM child of this concept (repeated items, multi-valued ones:
        one per pulse), in order, converted to `unit`."""
        values: list[float] = []
        for item in self.children_of(code):
            given = item.numbers or ((item.number,) if item.number is not None else ())
            values += _converted(item, given, unit, units, findings) if given else ()
        return tuple(values)

    def text_of(self, code: Code | Concept) -> str | None:
        item = self.child(code)
        return item.text if item is not None else None

    def code_of(self, code: Code | Concept) -> Coded | None:
        item = self.child(code)
        return item.code if item is not None else None

    def uid_of(self, code: Code | Concept) -> str | None:
        """A UIDREF item's UID; some devices (GE) send the UID as TEXT, which is accepted."""
        item = self.child(code)
        if item is None:
            return None
        return item.uid or (item.text.strip() if item.text else None)

    def datetime_of(self, code: Code | Concept) -> dt.datetime | None:
        item = self.child(code)
        return item.datetime if item is not None else None


def _converted(
    item: Item, values: tuple[float, ...], unit: str, units: UnitTable, findings: list[Finding]
) -> tuple[float, ...]:
    """The item's values in `unit`: as given, with a warning, when it states no unit; none, with
    an error, when its unit is unknown or of another dimension."""
    if not item.unit:
        findings.append(Finding(item.path, "warning", "unit-missing", f"no unit; {unit} assumed"))
        return values
    try:
        return tuple(units.convert(v, item.unit, unit) for v in values)
    except (UnknownUnit, IncompatibleUnits) as e:
        findings.append(
            Finding(item.path, "error", "unit-invalid", f"{e}; value {item.number} not used")
        )
        return ()


def item_values(
    path: str,
    concept_key: Concept | None,
    value_type: str,
    relationship: str,
    raw: dict[str, Any],
    children: tuple[Item, ...],
) -> Item:
    """An Item from the raw strings the fast reader extracts (numbers, codes, texts, times)."""
    values: dict[str, Any] = {}
    if "number" in raw:
        values = {**_numeric(raw["number"]), "unit": raw.get("unit")}
    elif raw.get("code") is not None:
        code = raw["code"]
        scheme, value = concept(code.scheme, code.value)
        values = {"code": Coded(scheme, value, repair_text(code.meaning))}
    elif raw.get("text"):
        values = {"text": repair_text(raw["text"])}
    elif raw.get("uid"):
        values = {"uid": raw["uid"]}
    elif raw.get("datetime"):
        values = {"datetime": parse_datetime(raw["datetime"])}
    return Item(path, concept_key, value_type, relationship, children=children, **values)


def _values(ds: Dataset, value_type: str) -> dict[str, Any]:
    if value_type == "NUM":
        measured = ds.get("MeasuredValueSequence")
        if not measured:
            return {}
        mv = measured[0]
        units = mv.get("MeasurementUnitsCodeSequence")
        unit = str(units[0].get("CodeValue", "")) if units else None
        return {**_numeric(mv.get("NumericValue")), "unit": unit}
    if value_type == "CODE":
        seq = ds.get("ConceptCodeSequence")
        return {"code": coded(seq[0])} if seq else {}
    if value_type in ("TEXT", "PNAME"):
        raw = ds.get("TextValue") if value_type == "TEXT" else ds.get("PersonName")
        return {"text": repair_text(str(raw))} if raw not in (None, "") else {}
    if value_type == "UIDREF":
        return {"uid": str(ds.get("UID", "")) or None}
    if value_type in ("DATETIME", "DATE", "TIME"):
        raw = ds.get("DateTime") or ds.get("Date") or ""
        return {"datetime": parse_datetime(str(raw))}
    return {}


def _numeric(raw: Any) -> dict[str, Any]:
    """NumericValue may be empty, not a number, multi-valued, or two values in one string (a
    vendor bug: Toshiba writes 1.5/2.0, the first counts). Multi-valued is one value per pulse
    (kVp, tube current of a fluoroscopy event): all are kept, and the number is their mean over
    the pulses that fired (server/dose/pulses.py).

    >>> _numeric("12.5"), _numeric("1.5/2.0"), _numeric(""), _numeric("n/a")
    ({'number': 12.5}, {'number': 1.5}, {'number': None}, {'number': None})
    >>> _numeric("0\\\\70\\\\72\\\\71")
    {'number': 71.0, 'numbers': (0.0, 70.0, 72.0, 71.0)}
    """
    if raw in (None, ""):
        return {"number": None}
    if isinstance(raw, str):
        raw = raw.split("/")[0].split("\\")
    elif not (isinstance(raw, list | tuple) or hasattr(raw, "__getitem__")):
        raw = [raw]
    try:
        values = tuple(float(v) for v in raw if str(v).strip() != "")
    except (TypeError, ValueError):
        return {"number": None}
    if len(values) <= 1:
        return {"number": values[0] if values else None}
    return {"number": summary(values, "mean"), "numbers": values}


def irradiating_device(item: Item) -> Equipment | None:
    """TID 1021 Device Participant with role 113859 Irradiating Device, if the item names one."""
    for role in item.children_of(("DCM", "113876")):  # Device Role in Procedure
        if role.code is not None and role.code.value == "113859":
            return Equipment(
                manufacturer=role.text_of(("DCM", "113878")),
                model=role.text_of(("DCM", "113879")),
                serial_number=role.text_of(("DCM", "113880")),
                station_name=role.text_of(("DCM", "113877")),
                device_uid=role.uid_of(("DCM", "121012")),
            )
    return None


def read_fields(
    named: tuple[Named, ...],
    containers: dict[str, Item | None],
    units: UnitTable,
    findings: list[Finding],
) -> dict[str, Any]:
    """The model fields of the concepts (mappings/dicom/concepts.csv) whose containers are
    given, each from the first container that has a value; concepts read elsewhere (`where`
    names no given container) are left out. Concepts that may come once per pulse (`several`)
    give their summary, and all their values under `per_pulse` (a field of the model)."""
    values: dict[str, Any] = {}
    several: list[PulseValues] = []
    for c in named:
        if not any(w in containers for w in c.where):
            continue
        items = [item for w in c.where if (item := containers.get(w))]
        if c.several:
            given = next((v for i in items if (v := i.nums_in(c.key, c.unit, units, findings))), ())
            values[c.field] = given[0] if len(given) == 1 else None
            several += [PulseValues(c.field, given, c.several)] if len(given) > 1 else []
            continue
        found = (_value(item, c, units, findings) for item in items)
        values[c.field] = next((v for v in found if v is not None), None)
    if any(c.several for c in named):
        values["per_pulse"] = tuple(several)
    for pulses in several:
        _, _, weighted_by = pulses.how.partition("/")
        weights = next((p.values for p in several if p.field == weighted_by), ())
        values[pulses.field] = summary(pulses.values, pulses.how, weights)
    return values


def _value(item: Item, c: Named, units: UnitTable, findings: list[Finding]) -> Any:
    if c.type in ("NUM", "COUNT"):
        number = item.num_in(c.key, c.unit, units, findings)
        return int(number) if c.type == "COUNT" and number is not None else number
    if c.type == "CODE":
        return item.code_of(c.key)
    if c.type == "CODE_OR_TEXT":
        return code_or_text(item, c.key)
    if c.type == "DATETIME":
        return item.datetime_of(c.key)
    return item.text_of(c.key)


def code_or_text(item: Item, code: Code | Concept) -> Coded | None:
    """A CODE item, or a TEXT one where the template allows either (Reference Point Definition)."""
    found = item.child(code)
    if found is None:
        return None
    if found.code is not None:
        return found.code
    return Coded("", "", found.text) if found.text else None


_PARTICIPANT = ("DCM", "113870")
_ROLES = {"113850": "authorizing", "113851": "administering"}


def participants(root: Item) -> tuple[Participant, ...]:
    """Every Person Participant (TID 1020) of the report, wherever it stands (the report, an
    acquisition, an event), each person and role once."""
    found: dict[Participant, None] = {}
    for item in root.walk():
        if item.concept != _PARTICIPANT or not (item.text or "").strip():
            continue
        role = item.code_of(("DCM", "113875"))
        found[Participant(
            name=item.text.strip() if item.text else None,
            role=_ROLES.get(role.value) if role else None,  # type: ignore[arg-type]
            person_id=item.text_of(("DCM", "113871")),
            issuer=item.text_of(("DCM", "113872")),
            organization=item.text_of(("DCM", "113873")),
        )] = None  # fmt: skip
    return tuple(found)
