"""An Observation's components read by their code, for the survey formats that write single
acquisition parameters (NHSBSP mammography, UK radiography)."""

from __future__ import annotations

from typing import Any

from server.fhir.service import body_of
from server.store.port import Store


class Components:
    """The components of one Observation by code: a per-pulse item repeats its code (its
    mean as a quantity, then its range and samples), so the first one that has the kind of
    value asked for answers."""

    def __init__(self, observation: dict[str, Any]) -> None:
        self._parts: dict[str, list[dict[str, Any]]] = {}
        for part in observation.get("component", []):
            self._parts.setdefault(part["code"]["coding"][0]["code"], []).append(part)

    @classmethod
    def read(cls, store: Store, reference: str) -> Components:
        """The components of a stored Observation ("Observation/<id>"); none when it is gone."""
        stored = store.read(*reference.split("/", 1))
        return cls(body_of(stored) if stored is not None and not stored.deleted else {})

    def text(self, code: str) -> str:
        """A coded value's meaning, or a text value; "" when there is none."""
        for part in self._parts.get(code, []):
            coded = part.get("valueCodeableConcept", {})
            found = part.get("valueString") or (_meanings(part) or [coded.get("text")])[0]
            if found:
                return str(found)
        return ""

    def texts(self, code: str) -> list[str]:
        """Every coded meaning or text of a code (two filters: two materials)."""
        found = []
        for part in self._parts.get(code, []):
            found += _meanings(part) + ([part["valueString"]] if part.get("valueString") else [])
        return found

    def number(self, code: str, factors: dict[str, float] | None = None) -> float | None:
        """A quantity (a per-pulse item's mean), times the factor of its unit in `factors`."""
        for part in self._parts.get(code, []):
            if "valueQuantity" in part:
                value = part["valueQuantity"]
                factor = (factors or {}).get(value.get("code"), 1.0)
                return round(float(value["value"]) * factor, 6)
        return None


def _meanings(part: dict[str, Any]) -> list[str]:
    """The displays of a component's coded value."""
    codings = part.get("valueCodeableConcept", {}).get("coding", [])
    return [c["display"] for c in codings if c.get("display")]
