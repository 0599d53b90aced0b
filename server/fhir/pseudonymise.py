"""Pseudonymised copies of resources for outputs that leave the site (the authority's Bulk
Data $export): identifiers and DICOM UIDs as keyed pseudonyms, dates cut to the site's
precision, ages in whole years (the age in the calendar year of the examination: see
server/dose/ages.py), names and free text removed. The rules, with what each type
loses besides, are in mappings/fhir/pseudonymise.yaml; docs/pseudonymisation.md says what each
output keeps.

>>> key = b"k"
>>> out = pseudonymised({"resourceType": "Observation", "status": "final",
...     "partOf": [{"reference": "ImagingStudy/1", "display": "CT",
...                 "identifier": {"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}}],
...     "effectiveDateTime": "2026-03-04T10:11:12+01:00", "issued": "2026-03-04T10:20:00Z",
...     "component": [{"code": {"text": "Age"},
...                    "valueQuantity": {"value": 63.8, "system": "http://unitsofmeasure.org",
...                                      "code": "a"}}]}, key, "day")
>>> out["partOf"]
[{'reference': 'ImagingStudy/1', 'identifier': {'system': 'urn:kerma:pseudonym', 'value': 'a258fec9c5f5747e47b6'}}]
>>> out["effectiveDateTime"], out["issued"], out["component"][0]["valueQuantity"]["value"]
('2026-03-04', '2026-03-04T00:00:00Z', 64)
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from server.dose.ages import calendar_age
from server.mappings import read_yaml

Precision = Literal["day", "month", "year"]
PSEUDONYM_SYSTEM = "urn:kerma:pseudonym"
UCUM = "http://unitsofmeasure.org"
_UID = re.compile(r"(urn:oid:|urn:dicom:uid:)?[0-2](\.(0|[1-9][0-9]*)){3,}")
_DATE = re.compile(r"(\d{4})(-\d{2})?(-\d{2})?(T[0-9:.]+)?(Z|[+-]\d{2}:\d{2})?")
# elements of type instant (full precision required): kept at midnight of their day
_INSTANTS = frozenset({"issued", "recorded", "lastUpdated", "timestamp"})
# strings that name code systems, profiles and extensions, not data
_NAMES = frozenset({"system", "url", "profile", "code", "version", "resourceType"})
_STANDARD_UIDS = ("1.2.840.10008.", "urn:oid:1.2.840.10008.")  # DICOM's own: public


def pseudonym(key: bytes, identifier: str) -> str:
    """20 hex digits (80 bits) of HMAC-SHA-256: no collision in any registry's lifetime."""
    return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()[:20]


def pseudonymised(
    resource: dict[str, Any], key: bytes, precision: Precision, descriptions: bool = False
) -> dict[str, Any]:
    """`descriptions`: keep the examination's and the devices' own words (else removed)."""
    rules = _rules().get(resource["resourceType"], {})
    out = {k: v for k, v in resource.items() if k not in rules.get("drop", [])}
    if not descriptions:
        out = _without_descriptors(out)
    dropped = set(rules.get("drop_extensions", []))
    if dropped and "extension" in out:
        out["extension"] = [e for e in out["extension"] if e.get("url") not in dropped]
        if not out["extension"]:
            del out["extension"]
    if "meta" in out:
        meta = {k: v for k, v in out["meta"].items() if k == "profile"}
        out = {k: v for k, v in out.items() if k != "meta"} | ({"meta": meta} if meta else {})
    return _Walk(key, precision, _effective(resource)).node(out)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Walk:
    key: bytes
    precision: Precision
    on: date | None  # the day of the examination, for ages

    def node(self, node: Any, name: str = "") -> Any:
        if isinstance(node, list):
            return [self.node(item, name) for item in node]
        if isinstance(node, dict):
            if name == "identifier":
                return _identifier(node, self.key)
            if name == "valueQuantity" and node.get("system") == UCUM and node.get("code") == "a":
                return {**node, "value": self._age(node["value"])} if "value" in node else node
            return {k: self.node(v, k) for k, v in node.items() if not _removed(k, v, node)}
        if isinstance(node, str) and name not in _NAMES:
            return _string(node, name, self.key, self.precision)
        return node

    def _age(self, years: float) -> int:
        return calendar_age(years, self.on) if self.on else math.floor(years)


def _effective(resource: dict[str, Any]) -> date | None:
    """The day the resource is about (an Observation's effective time), for ages."""
    text = resource.get("effectiveDateTime") or (resource.get("effectivePeriod") or {}).get("start")
    try:
        return date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


def _without_descriptors(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without the free-text descriptions pseudonymise.yaml names."""
    out = dict(resource)
    for path in _rules()["descriptors"].get(resource["resourceType"], []):
        _drop(out, path.split("."))
    codes = set(_rules()["descriptor_components"])
    if "component" in out:
        out["component"] = [c for c in out["component"]
                            if not {x.get("code") for x in c["code"].get("coding", [])} & codes]  # fmt: skip
    return out


def _drop(node: dict[str, Any], path: list[str]) -> None:
    """Remove the element at a dotted path (through lists), copying what it changes; an
    element left empty goes too."""
    first, rest = path[0], path[1:]
    if first not in node:
        return
    if not rest:
        del node[first]
        return
    value = node[first]
    items = [dict(v) for v in value] if isinstance(value, list) else [dict(value)]
    for item in items:
        _drop(item, rest)
    kept = [item for item in items if item]
    if not kept:
        del node[first]
    else:
        node[first] = kept if isinstance(value, list) else kept[0]


def _removed(name: str, value: Any, parent: dict[str, Any]) -> bool:
    """A reference's display, a narrative, an annotation: free text that may name people."""
    if name == "display" and "reference" in parent:
        return True
    return name == "note" or (name == "text" and isinstance(value, dict) and "div" in value)


def _identifier(identifier: dict[str, Any], key: bytes) -> dict[str, Any]:
    value = f"{identifier.get('system', '')}|{identifier.get('value', '')}"
    hashed = {"system": PSEUDONYM_SYSTEM, "value": pseudonym(key, value)}
    return {"type": identifier["type"], **hashed} if "type" in identifier else hashed


def _string(text: str, name: str, key: bytes, precision: Precision) -> str:
    if _UID.fullmatch(text) and not text.startswith(_STANDARD_UIDS):
        return pseudonym(key, text.removeprefix("urn:oid:").removeprefix("urn:dicom:uid:"))
    date = _DATE.fullmatch(text)
    if date and (date.group(2) or date.group(4)):
        return _cut(date, name in _INSTANTS, precision)
    return text


def _cut(date: re.Match[str], instant: bool, precision: Precision) -> str:
    """A date or date-time at the precision; an instant keeps its form at midnight."""
    year, month, day = date.group(1), date.group(2) or "-01", date.group(3) or "-01"
    if instant:
        kept = {"day": f"{year}{month}{day}", "month": f"{year}{month}-01",
                "year": f"{year}-01-01"}[precision]  # fmt: skip
        return f"{kept}T00:00:00{date.group(5) or 'Z'}"
    return {"day": year + (date.group(2) or "") + (date.group(3) or ""),
            "month": year + (date.group(2) or ""), "year": year}[precision]  # fmt: skip


def precision(text: str) -> Precision:
    """KERMA_PSEUDONYM_DATE_PRECISION as a Precision; ValueError for anything else."""
    if text not in ("day", "month", "year"):
        raise ValueError(f"KERMA_PSEUDONYM_DATE_PRECISION is day, month or year, not {text!r}")
    return text  # type: ignore[return-value]


@functools.cache
def _rules() -> dict[str, Any]:
    return read_yaml("fhir/pseudonymise.yaml")  # type: ignore[no-any-return]
