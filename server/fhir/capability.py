"""The CapabilityStatement, generated from what is implemented: the search parameter table,
the interactions the REST door routes, the operations of mappings/fhir/operations.yaml (with
Kerma's own OperationDefinitions), the profiles Kerma's resources conform to, and the IG
capability statements it meets."""

from __future__ import annotations

import functools
from typing import Any

from server import __version__
from server.fhir import registry
from server.mappings import read_yaml

INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance",
                "history-type", "create", "search-type")  # fmt: skip
IG = "http://hl7.org/fhir/uv/radiation-dose-summary"
# the IG's server capability statements whose requirements Kerma meets (a test checks each
# interaction and search parameter they name against this statement)
INSTANTIATES = (f"{IG}/CapabilityStatement/FHIRServer", f"{IG}/CapabilityStatement/FHIRServer-RDSP",
                f"{IG}/CapabilityStatement/FHIRServer-RDSC")  # fmt: skip
_INCLUDE_TYPES = ("reference",)


@functools.cache
def operations() -> dict[str, dict[str, Any]]:
    return read_yaml("fhir/operations.yaml")  # type: ignore[no-any-return]


def definition(name: str, base: str, rtype: str | None = None) -> str:
    """The canonical of an operation's OperationDefinition (for a type, where it differs)."""
    op = operations()[name]
    found = str((op.get("definitions") or {}).get(rtype, op["definition"]))
    return (
        f"{base}/OperationDefinition/{found.removeprefix('kerma:')}"
        if found.startswith("kerma:")
        else found
    )


def operation_definition(name: str, base: str) -> dict[str, Any] | None:
    """Kerma's own OperationDefinition of an operation; None for the standard's."""
    op = operations().get(name)
    if op is None or not str(op["definition"]).startswith("kerma:"):
        return None
    on = op["at"]
    types = sorted({t for level in ("type", "instance") for t in on.get(level, [])})
    return {
        "resourceType": "OperationDefinition",
        "id": name,
        "url": definition(name, base),
        "name": "".join(part.capitalize() for part in name.split("-")),
        "title": f"${name}",
        "status": "active",
        "kind": "operation",
        "publisher": "Kerma",
        "description": op["description"],
        "code": name,
        "resource": types,
        "system": bool(on.get("system")),
        "type": bool(on.get("type")),
        "instance": bool(on.get("instance")),
        "parameter": [{**p, "max": str(p["max"])} for p in op.get("parameters", [])],
    }


def _operations_of(rtype: str, base: str, every: bool = True) -> list[dict[str, str]]:
    """The operations on a type; `every`: with those on every stored type ($validate...)."""
    found = []
    for name, op in operations().items():
        on = op["at"]
        levels = [*on.get("type", []), *on.get("instance", [])]
        if ("*" in levels and every) or rtype in levels:
            found.append({"name": name, "definition": definition(name, base, rtype)})
    return found


def capability_statement(
    base: str, date: str, profiles: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """`profiles`: the profiles each type's resources conform to (supportedProfile)."""
    resources = []
    for rtype in registry.resource_types():
        params = registry.params(rtype)
        refs = [p for p in params.values() if p.type in _INCLUDE_TYPES]
        revincludes = [
            f"{other}:{p.name}"
            for other in registry.resource_types()
            for p in registry.params(other).values()
            if p.type == "reference" and p.allows_target(rtype)
        ]
        entry: dict[str, Any] = {"type": rtype}
        if (profiles or {}).get(rtype):
            entry["supportedProfile"] = profiles[rtype]  # type: ignore[index]
        entry |= {
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchInclude": [f"{rtype}:{p.name}" for p in refs],
            "searchRevInclude": revincludes,
            "searchParam": [
                {
                    "name": p.name,
                    "definition": p.definition,
                    "type": "token" if p.special == "id" else p.type,
                }
                for p in params.values()
            ],
            "operation": _operations_of(rtype, base),
        }
        resources.append(entry)
    # types Kerma keeps none of but answers operations on (a List computed when asked)
    stored = set(registry.resource_types())
    computed = sorted({t for op in operations().values()
                       for level in ("type", "instance") for t in op["at"].get(level, [])
                       if t != "*" and t not in stored})  # fmt: skip
    resources += [{"type": t, "operation": _operations_of(t, base, every=False)} for t in computed]
    system_ops = [{"name": n, "definition": definition(n, base)}
                  for n, op in operations().items() if op["at"].get("system")]  # fmt: skip
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Kerma",
        "kind": "instance",
        "instantiates": list(INSTANTIATES),
        "software": {"name": "Kerma", "version": __version__},
        "implementation": {"description": "Kerma radiation dose management server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json", "application/fhir+xml", "xml"],
        "patchFormat": ["application/json-patch+json"],
        "implementationGuide": [f"{IG}/ImplementationGuide/hl7.fhir.uv.radiation-dose-summary"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "description": "Bearer tokens (Authorization: Bearer <token>) created with `kerma users add`; "
                    "every call except this statement and the OperationDefinitions needs one.",
                },
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
                "operation": system_ops,
            }
        ],
    }
