"""The CapabilityStatement, generated from what is implemented: the search parameter table,
the interactions the REST door routes, and the security it enforces."""

from __future__ import annotations

from typing import Any

from server import __version__
from server.fhir import registry

INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
_INCLUDE_TYPES = ("reference",)
# FHIR GraphQL, at [base]/$graphql and [base]/[Type]/[id]/$graphql
_GRAPHQL = {
    "name": "graphql",
    "definition": "http://hl7.org/fhir/OperationDefinition/Resource-graphql",
}


def capability_statement(base: str, date: str) -> dict[str, Any]:
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
        resources.append(
            {
                "type": rtype,
                "operation": [_GRAPHQL],
                "interaction": [{"code": code} for code in INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalUpdate": False,
                "conditionalDelete": "not-supported",
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
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Kerma",
        "kind": "instance",
        "software": {"name": "Kerma", "version": __version__},
        "implementation": {"description": "Kerma radiation dose management server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "implementationGuide": [
            "http://hl7.org/fhir/uv/radiation-dose-summary/ImplementationGuide/hl7.fhir.uv.radiation-dose-summary"
        ],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "description": "Bearer tokens (Authorization: Bearer <token>) created with `kerma users add`; "
                    "every call except this statement needs one.",
                },
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
                "operation": [_GRAPHQL],
            }
        ],
    }
