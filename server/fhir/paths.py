"""Evaluate the simplified FHIRPath of `search_parameters.yaml` on a resource (a dict).

fhirpathpy would evaluate the registry's full expressions, but at about 50-100 µs per
expression it would dominate indexing (30+ params per Observation); these paths only walk
elements, which is all the registry's expressions for our resources need.
"""

from __future__ import annotations

import functools
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
    for steps in _compile(path):
        current: list[Any] = [resource]
        for step, is_choice in steps:
            current = [
                v
                for item in current
                if isinstance(item, dict)
                for v in _step(item, step, is_choice)
            ]
            if not current:
                break
        found.extend(current)
    return found


@functools.cache
def _compile(path: str) -> tuple[tuple[tuple[str, bool], ...], ...]:
    """'a.b[x]|c' -> ((('a', False), ('b', True)), (('c', False),)), parsed once per path."""
    return tuple(
        tuple((step.removesuffix("[x]"), step.endswith("[x]")) for step in alternative.split("."))
        for alternative in path.split("|")
    )


def _step(item: dict[str, Any], step: str, is_choice: bool) -> list[Any]:
    if is_choice:
        n = len(step)
        values = [v for k, v in item.items() if k.startswith(step) and k[n : n + 1].isupper()]
    elif step in item:
        values = [item[step]]
    else:
        return []
    flat: list[Any] = []
    for v in values:
        if isinstance(v, list):
            flat.extend(v)
        else:
            flat.append(v)
    return flat
