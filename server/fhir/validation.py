"""Check an incoming resource: structure with fhir.resources (R4B, the closest to R4) and the
required code bindings it does not enforce, then the checks of the site's own resources that
the layers above give (`Check`: dose levels, classification rules, Subscriptions). Problems
come back with the path of the element.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from server.fhir.errors import Issue
from server.mappings import read_yaml

# the problems of a resource the check knows (empty for others and for valid ones)
Check = Callable[[dict[str, Any]], list[Issue]]

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@functools.cache
def _bindings() -> dict[str, dict[str, dict[str, Any]]]:
    return read_yaml("fhir/required_bindings.yaml")  # type: ignore[no-any-return]


def validate(resource: dict[str, Any], checks: Sequence[Check] = ()) -> list[Issue]:
    """Problems of `resource` (empty when valid), each with a FHIRPath-like expression."""
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        return [Issue("required", "resourceType is missing", expression="resourceType")]
    issues: list[Issue] = []
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not _ID.match(rid)):
        issues.append(Issue("value", f"invalid id {rid!r}", expression=f"{rtype}.id"))
    issues.extend(_structure(rtype, resource))
    issues.extend(_required_bindings(rtype, resource))
    for check in checks if not issues else ():
        issues.extend(check(resource))
    return issues


def _structure(rtype: str, resource: dict[str, Any]) -> list[Issue]:
    try:
        model = get_fhir_model_class(rtype)
    except (KeyError, ValueError):
        return [Issue("not-supported", f"unknown resource type {rtype}", expression="resourceType")]
    try:
        model.model_validate(resource)
    except ValidationError as e:
        return [
            Issue(
                "required"
                if err["type"] == "missing"
                else "structure"
                if err["type"] == "extra_forbidden"
                else "value",
                f"{err['msg']}",
                expression=_expression(rtype, err["loc"]),
            )
            for err in e.errors()
        ]
    except (TypeError, ValueError) as e:
        return [Issue("structure", str(e), expression=rtype)]
    return []


def _expression(rtype: str, loc: tuple[int | str, ...]) -> str:
    """('component', 0, 'valueQuantity') -> 'Observation.component[0].valueQuantity'."""
    out = rtype
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else f".{step}"
    return out


def _required_bindings(rtype: str, resource: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for element, rule in _bindings().get(rtype, {}).items():
        value = resource.get(element)
        if value is None:
            if rule.get("min", 0) >= 1:
                issues.append(
                    Issue("required", f"{element} is required", expression=f"{rtype}.{element}")
                )
            continue
        if value not in rule["values"]:
            allowed = ", ".join(rule["values"])
            issues.append(
                Issue(
                    "code-invalid",
                    f"{value!r} is not one of: {allowed}",
                    expression=f"{rtype}.{element}",
                )
            )
    return issues
