"""Evaluate the simplified FHIRPath of `search_parameters.yaml` on a resource (a dict).

fhirpathpy would evaluate the registry's full expressions, but at about 50-100 µs per
expression it would dominate indexing (30+ params per Observation); these paths only walk
elements, which is all the registry's expressions for our resources need.
"""

from __future__ import annotations

from typing import Any


def values_at(resource: dict[str, Any], path: str) -> list[Any]:
    """All values at `path`, lists flattened; `a|b` unions alternatives.

    >>> obs = {"component": [{"code": {"text": "a"}}, {"code": {"text": "b"}}],
    ...        "effectivePeriod": {"start": "2020"}}
    >>> values_at(obs, "component.code")
    [{'text': 'a'}, {'text': 'b'}]
    >>> values_at(obs, "effective[x]")
    [{'start': '2020'}]
    >>> values_at(obs, "")
    [{'component': [{'code': {'text': 'a'}}, {'code': {'text': 'b'}}], 'effectivePeriod': {'start': '2020'}}]
    """
    if not path:
        return [resource]
    found: list[Any] = []
    for alternative in path.split("|"):
        current: list[Any] = [resource]
        for step in alternative.split("."):
            current = [v for item in current if isinstance(item, dict) for v in _step(item, step)]
        found.extend(current)
    return found


def _step(item: dict[str, Any], step: str) -> list[Any]:
    if step.endswith("[x]"):
        stem = step[:-3]
        values = [
            v
            for k, v in item.items()
            if k.startswith(stem) and k[len(stem) : len(stem) + 1].isupper()
        ]
    else:
        values = [item[step]] if step in item else []
    flat: list[Any] = []
    for v in values:
        if isinstance(v, list):
            flat.extend(v)
        else:
            flat.append(v)
    return flat
