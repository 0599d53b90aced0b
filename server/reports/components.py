"""An Observation's components read by their code, for the survey formats that write single
acquisition parameters (NHSBSP mammography, UK radiography)."""

from __future__ import annotations

from typing import Any


class Components:
    """The components of one Observation by code: a per-pulse item repeats its code (its
    mean as a quantity, then its range and samples), so the first one that has the kind of
    value asked for answers."""

    def __init__(self, observation: dict[str, Any]) -> None:
        self._parts: dict[str, list[dict[str, Any]]] = {}
        for part in observation.get("component", []):
            self._parts.setdefault(part["code"]["coding"][0]["code"], []).append(part)

    def text(self, code: str) -> str:
        """A coded value's meaning, or a text value; "" when there is none."""
        for part in self._parts.get(code, []):
            coded = part.get("valueCodeableConcept", {})
            meanings = [c["display"] for c in coded.get("coding", []) if c.get("display")]
            found = part.get("valueString") or (meanings or [coded.get("text")])[0]
            if found:
                return str(found)
        return ""

    def texts(self, code: str) -> list[str]:
        """Every coded meaning or text of a code (two filters: two materials)."""
        found = []
        for part in self._parts.get(code, []):
            coded = part.get("valueCodeableConcept", {})
            found += [c["display"] for c in coded.get("coding", []) if c.get("display")]
            found += [part["valueString"]] if part.get("valueString") else []
        return found

    def number(self, code: str, factors: dict[str, float] | None = None) -> float | None:
        """A quantity (a per-pulse item's mean), times the factor of its unit in `factors`."""
        for part in self._parts.get(code, []):
            if "valueQuantity" in part:
                value = part["valueQuantity"]
                factor = (factors or {}).get(value.get("code"), 1.0)
                return round(float(value["value"]) * factor, 6)
        return None
