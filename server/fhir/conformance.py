"""Does a resource conform? To the FHIR R4 invariants of its type (FHIRPath constraints of the
4.0.1 definitions, mappings/fhir/r4_invariants.csv, evaluated with fhirpathpy), and to a
profile, by walking the profile's snapshot (mappings/fhir/profiles/): cardinalities, fixed and
pattern values, choice types, slicing (by pattern, value and referenced type), reference
targets, and required bindings to value sets Kerma holds.

Written here because no maintained validator on PyPI or npm reads StructureDefinitions offline
and classifies references into slices by their type (Medplum's, tried, counts the IG's own
examples as failing their `partOf` and `performer` slices). `$validate`, the claims Kerma makes
in `meta.profile` and the conformance tests all use this one module.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fhirpathpy import compile as compile_fhirpath

from server.fhir.errors import Issue
from server.mappings import read_csv_rows

_PRIMITIVE_KEYS = ("id", "extension")


# -- FHIR R4 invariants ------------------------------------------------------------------------


def invariant_problems(resource: dict[str, Any]) -> list[Issue]:
    """The R4 invariants of the resource's type (and its elements) it breaks."""
    issues = []
    for row in _invariants().get(resource.get("resourceType", ""), []):
        for where, node in _nodes_at(resource, row["path"]):
            if not _holds(node, resource, row["expression"]):
                text = f"{row['key']}: {row['human']}"
                error = row["severity"] == "error"
                issues.append(Issue("invariant", text, "error" if error else "warning", where))
    return issues


def _holds(node: Any, resource: dict[str, Any], expression: str) -> bool:
    try:
        result = _compiled(expression)(node, {"resource": resource})
    except Exception:  # a FHIRPath function fhirpathpy lacks: not checked, not failed
        return True
    return result == [True] or result == []


@functools.cache
def _compiled(expression: str) -> Callable[[Any, dict[str, Any]], list[Any]]:
    """Parsed once, not for each element checked (parsing was 85 % of a check)."""
    return compile_fhirpath(expression, None, {"userInvocationTable": _FUNCTIONS})


def _has_value(data: list[Any]) -> list[bool]:
    """FHIRPath hasValue(), which fhirpathpy lacks: a primitive with a value."""
    return [len(data) == 1 and data[0] not in (None, "") and not isinstance(data[0], dict | list)]


def _quiet_trace(data: list[Any], *_: Any) -> list[Any]:
    """trace(), without fhirpathpy's printing to standard output."""
    return data


_FUNCTIONS = {
    "hasValue": {"fn": _has_value, "arity": {0: []}},
    "trace": {"fn": _quiet_trace, "arity": {1: ["String"], 2: ["String", "AnyAtRoot"]}},
}


def _nodes_at(resource: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """Each value at an element path ("Observation.referenceRange") with its location."""
    parts = path.split(".")
    nodes: list[tuple[str, Any]] = [(parts[0], resource)]
    for name in parts[1:]:
        nodes = [(f"{where}.{key}" + (f"[{i}]" if many else ""), value)
                 for where, node in nodes if isinstance(node, dict)
                 for key, values, many in _child(node, name)
                 for i, value in enumerate(values)]  # fmt: skip
    yield from nodes


def _child(node: dict[str, Any], name: str) -> Iterator[tuple[str, list[Any], bool]]:
    """The values of a child element; a choice (value[x]) under whichever type it has."""
    keys = [name] if not name.endswith("[x]") else [
        k for k in node if k.startswith(name[:-3]) and k[len(name) - 3 : len(name) - 2].isupper()
    ]  # fmt: skip
    for key in keys:
        if key in node:
            value = node[key]
            yield key, value if isinstance(value, list) else [value], isinstance(value, list)


@functools.cache
def _invariants() -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for row in read_csv_rows("fhir/r4_invariants.csv"):
        found.setdefault(row["type"], []).append(row)
    return found


# -- profiles ----------------------------------------------------------------------------------


@dataclass
class _Element:
    """One element of a snapshot, with its children and slices."""

    definition: dict[str, Any]
    children: dict[str, _Element] = field(default_factory=dict)
    slices: dict[str, _Element] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.definition["path"]).rsplit(".", 1)[-1]

    @property
    def min(self) -> int:
        return int(self.definition.get("min", 0))

    @property
    def max(self) -> float:
        text = str(self.definition.get("max", "*"))
        return float("inf") if text == "*" else float(text)


def known_profiles() -> dict[str, str]:
    """The profiles Kerma can check: canonical URL -> the resource type they constrain."""
    return {url: sd["type"] for url, sd in _structure_definitions().items()}


def profile_problems(resource: dict[str, Any], url: str) -> list[Issue]:
    """What keeps `resource` from conforming to the profile at `url`."""
    sd = _structure_definitions().get(url.split("|")[0])
    if sd is None:
        return [Issue("not-supported", f"Kerma does not know the profile {url}", "error")]
    if resource.get("resourceType") != sd["type"]:
        return [Issue("invalid", f"{url} profiles {sd['type']}, not {resource.get('resourceType')}",
                      "error", "resourceType")]  # fmt: skip
    issues: list[Issue] = []
    _check(_tree(url), [(sd["type"], resource)], issues)
    return issues


def problems(resource: dict[str, Any], profiles: list[str]) -> list[Issue]:
    """The invariants of the type, and every profile asked for."""
    issues = invariant_problems(resource)
    for url in profiles:
        issues += profile_problems(resource, url)
    return issues


def claimed(resource: dict[str, Any], profile: str) -> dict[str, Any]:
    """The resource claiming the profile in `meta.profile` when it conforms to it (and to
    R4's invariants), else without the claim: Kerma claims only what it meets."""
    meta = dict(resource.get("meta") or {})
    others = [p for p in meta.get("profile", []) if p != profile]
    candidate = {**resource, "meta": {**meta, "profile": [*others, profile]}}
    if not any(i.severity == "error" for i in problems(candidate, [profile])):
        return candidate
    meta.pop("profile", None)
    if others:
        meta["profile"] = others
    return (
        {**resource, "meta": meta} if meta else {k: v for k, v in resource.items() if k != "meta"}
    )


def _check(element: _Element, parents: list[tuple[str, Any]], issues: list[Issue]) -> None:
    for child in element.children.values():
        for where, parent in parents:
            if isinstance(parent, dict):
                _check_child(child, where, parent, issues)


def _check_child(child: _Element, where: str, parent: dict[str, Any], issues: list[Issue]) -> None:
    values = _values(child, parent, where, issues)
    here = f"{where}.{child.name}"
    _cardinality(child, len(values), here, issues)
    if child.slices:
        unmatched = _slice(child, values, here, issues)
        if child.definition["slicing"].get("rules") == "closed" and unmatched:
            issues.append(Issue("structure", f"{here}: {len(unmatched)} value(s) in no slice of "
                                "a closed slicing", "error", here))  # fmt: skip
    for location, value in values:
        _value_rules(child.definition, value, location, issues)
    _check(child, values, issues)


def _values(
    child: _Element, parent: dict[str, Any], where: str, issues: list[Issue]
) -> list[tuple[str, Any]]:
    """The child's values with their locations; a choice of a type the profile does not allow
    is a problem."""
    types = [t["code"] for t in child.definition.get("type", [])]
    found = []
    for key, values, many in _child(parent, child.name):
        if child.name.endswith("[x]") and key[len(child.name) - 3 :].lower() not in {
            t.lower() for t in types
        }:
            issues.append(Issue("structure", f"{where}.{key}: {child.name} may be "
                                f"{' or '.join(types)} only", "error", f"{where}.{key}"))  # fmt: skip
            continue
        found += [(f"{where}.{key}" + (f"[{i}]" if many else ""), v) for i, v in enumerate(values)]
    return found


def _cardinality(element: _Element, n: int, here: str, issues: list[Issue]) -> None:
    if n < element.min:
        issues.append(Issue("required", f"{here}: at least {element.min} required, {n} found",
                            "error", here))  # fmt: skip
    if n > element.max:
        issues.append(Issue("structure", f"{here}: at most {element.max:g} allowed, {n} found",
                            "error", here))  # fmt: skip


def _slice(
    element: _Element, values: list[tuple[str, Any]], here: str, issues: list[Issue]
) -> list[tuple[str, Any]]:
    """Put each value in the slice its discriminators match; check each slice; the values in
    none."""
    discriminators = element.definition["slicing"].get("discriminator", [])
    taken: dict[str, list[tuple[str, Any]]] = {name: [] for name in element.slices}
    unmatched: list[tuple[str, Any]] = []
    for located in values:
        slice_name = next((name for name, s in element.slices.items()
                           if all(_matches(s, d, located[1]) for d in discriminators)), None)  # fmt: skip
        (taken[slice_name] if slice_name else unmatched).append(located)
    for name, s in element.slices.items():
        _cardinality(s, len(taken[name]), f"{here}:{name}", issues)
        for location, value in taken[name]:
            _value_rules(s.definition, value, location, issues)
        _check(s, taken[name], issues)
    return unmatched


def _matches(s: _Element, discriminator: dict[str, str], value: Any) -> bool:
    kind, path = discriminator["type"], discriminator["path"]
    if kind == "type":
        wanted = {
            _target_type(p)
            for t in s.definition.get("type", [])
            for p in t.get("targetProfile", [])
        }
        return _referenced_type(value) in wanted if wanted - {None} else True
    target = s if path == "$this" else _descendant(s, path)
    if target is None:
        return False
    expected = _pattern(target.definition)
    if expected is None:
        return True
    actual = value if path == "$this" else _get(value, path)
    candidates = actual if isinstance(actual, list) else [actual]
    compare = _equals if kind == "value" and expected[1] == "fixed" else _contains
    return any(compare(a, expected[0]) for a in candidates if a is not None)


def _value_rules(definition: dict[str, Any], value: Any, here: str, issues: list[Issue]) -> None:
    expected = _pattern(definition)
    if expected is not None:
        wanted, kind = expected
        ok = _equals(value, wanted) if kind == "fixed" else _contains(value, wanted)
        if not ok:
            issues.append(Issue("value", f"{here}: does not match the profile's {kind} value "
                                f"{json.dumps(wanted)}", "error", here))  # fmt: skip
    found = [_target_type(p) for t in definition.get("type", []) if t.get("code") == "Reference"
             for p in t.get("targetProfile", [])]  # fmt: skip
    targets = {t for t in found if t} - {"Resource"}
    referenced = _referenced_type(value) if isinstance(value, dict) else None
    if targets and None not in found and referenced and referenced not in targets:
        issues.append(Issue("structure", f"{here}: refers to a {referenced}; the profile allows "
                            f"{', '.join(sorted(targets))}", "error", here))  # fmt: skip
    binding = definition.get("binding") or {}
    if binding.get("strength") == "required" and binding.get("valueSet"):
        codes = _value_set(str(binding["valueSet"]))
        if codes is not None and not any(c in codes for c in _codes(value)):
            issues.append(Issue("code-invalid", f"{here}: not in the required value set "
                                f"{binding['valueSet']}", "error", here))  # fmt: skip


def _pattern(definition: dict[str, Any]) -> tuple[Any, str] | None:
    for key, value in definition.items():
        if key.startswith("pattern"):
            return value, "pattern"
        if key.startswith("fixed"):
            return value, "fixed"
    return None


def _contains(value: Any, pattern: Any) -> bool:
    """FHIR pattern matching: every element of the pattern is in the value; list items of
    the pattern each match some item of the value."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and _contains(value[k], v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(_contains(i, p) for i in items) for p in pattern)
    return bool(value == pattern)


def _equals(value: Any, fixed: Any) -> bool:
    return bool(value == fixed)


def _get(value: Any, path: str) -> Any:
    for name in path.split("."):
        if isinstance(value, list):
            value = [v.get(name) for v in value if isinstance(v, dict)]
        elif isinstance(value, dict):
            value = value.get(name)
        else:
            return None
    return value


def _descendant(element: _Element, path: str) -> _Element | None:
    node: _Element | None = element
    for name in path.split("."):
        node = node.children.get(name) if node is not None else None
    return node


def _referenced_type(value: Any) -> str | None:
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str) or "/" not in reference or reference.startswith("#"):
        return None
    parts = reference.split("/_history")[0].split("/")
    return parts[-2]


_CORE = "http://hl7.org/fhir/StructureDefinition/"


def _target_type(profile: str) -> str | None:
    """The resource type of a target profile: the base type, what a profile Kerma holds
    constrains, None for a profile it does not hold (not checked)."""
    own = _structure_definitions().get(profile)
    if own:
        return str(own["type"])
    return profile.removeprefix(_CORE) if profile.startswith(_CORE) else None


def _codes(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, str):
        yield None, value
    elif isinstance(value, dict) and "code" in value:
        yield value.get("system"), str(value["code"])
    elif isinstance(value, dict):
        for coding in value.get("coding", []):
            yield coding.get("system"), str(coding.get("code"))


@functools.cache
def _value_set(url: str) -> frozenset[tuple[str | None, str]] | None:
    """The codes of a value set Kerma holds (enumerated in its compose); None when it holds
    none of that URL (the binding is then not checked offline)."""
    for resource in _profile_files():
        if resource.get("resourceType") == "ValueSet" and resource.get("url") == url.split("|")[0]:
            return frozenset((inc.get("system"), c["code"]) for inc in resource["compose"]["include"]
                             for c in inc.get("concept", []))  # fmt: skip
    return None


@functools.cache
def _structure_definitions() -> dict[str, dict[str, Any]]:
    return {r["url"]: r for r in _profile_files() if r.get("resourceType") == "StructureDefinition"}


@functools.cache
def _profile_files() -> tuple[dict[str, Any], ...]:
    folder = resources.files("kerma_mappings").joinpath("fhir/profiles")
    return tuple(json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.iterdir(), key=lambda f: f.name)
                 if f.name.endswith(".json"))  # fmt: skip


@functools.cache
def _tree(url: str) -> _Element:
    """The snapshot as a tree: children by name, slices by slice name."""
    elements = _structure_definitions()[url]["snapshot"]["element"]
    nodes: dict[str, _Element] = {}
    root: _Element | None = None
    for definition in elements:
        element = _Element(definition)
        eid = str(definition["id"])
        nodes[eid] = element
        if "." not in eid:
            root = element
            continue
        parent_id, _, last = eid.rpartition(".")
        name, _, slice_name = last.partition(":")
        parent = nodes[parent_id]
        if slice_name:
            parent.children[name].slices[slice_name] = element
        else:
            parent.children[name] = element
    assert root is not None
    return root
