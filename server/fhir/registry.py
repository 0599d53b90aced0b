"""The search parameters Kerma answers, read from `mappings/fhir/search_parameters.yaml`.

One table feeds the indexer, the search parser, the CapabilityStatement and the OpenAPI file,
so what is advertised is what is implemented.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from server.mappings import read_yaml

ParamType = Literal["token", "string", "date", "quantity", "reference", "uri", "composite"]


@dataclass(frozen=True)
class Component:
    type: ParamType
    path: str


@dataclass(frozen=True)
class SearchParam:
    rtype: str
    name: str
    type: ParamType
    path: str = ""
    targets: tuple[str, ...] = ()
    single: bool = False
    primary: bool = False  # the type's main date, kept beside tokens by the SQLite store
    components: tuple[Component, ...] = ()
    special: str | None = None  # "id" / "lastUpdated": answered from the resource row
    via: str | None = None  # a composite param whose index answers this one
    kerma: bool = False  # defined by Kerma, not in the R4 registry

    @property
    def definition(self) -> str:
        if self.kerma:
            return f"https://kerma.example.org/fhir/SearchParameter/{self.rtype}-{self.name}"
        base = "Resource" if self.name.startswith("_") else self.rtype
        return f"http://hl7.org/fhir/SearchParameter/{base}-{self.name.lstrip('_')}"

    def allows_target(self, rtype: str) -> bool:
        return not self.targets or "Resource" in self.targets or rtype in self.targets


@functools.cache
def _table() -> dict[str, dict[str, SearchParam]]:
    raw = read_yaml("fhir/search_parameters.yaml")
    common = raw.pop("common")
    table: dict[str, dict[str, SearchParam]] = {}
    for rtype, params in raw.items():
        merged = {**common, **params}
        table[rtype] = {name: _param(rtype, name, spec) for name, spec in merged.items()}
    return table


def _param(rtype: str, name: str, spec: dict[str, object]) -> SearchParam:
    components = tuple(Component(c["type"], c["path"]) for c in spec.get("components", []))  # type: ignore[attr-defined]
    return SearchParam(
        rtype=rtype,
        name=name,
        type=spec["type"],  # type: ignore[arg-type]
        path=str(spec.get("path", "")),
        targets=tuple(spec.get("target", ())),  # type: ignore[arg-type]
        single=bool(spec.get("single", False)),
        primary=bool(spec.get("primary", False)),
        components=components,
        special=spec.get("special"),  # type: ignore[arg-type]
        kerma=bool(spec.get("kerma", False)),
        via=spec.get("via"),  # type: ignore[arg-type]
    )


def resource_types() -> tuple[str, ...]:
    """The resource types Kerma stores, in the order of the table."""
    return tuple(_table())


def params(rtype: str) -> dict[str, SearchParam]:
    return _table()[rtype]


def primary_date(rtype: str) -> SearchParam | None:
    return next((p for p in params(rtype).values() if p.primary), None)


def param(rtype: str, name: str) -> SearchParam | None:
    return _table().get(rtype, {}).get(name)
