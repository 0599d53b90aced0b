"""The mappings' YAML read through libyaml (server.mappings.parse_yaml) as PyYAML's own
safe_load reads it, and no more: Python objects in a rules library stay refused."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from server.mappings import parse_yaml, read_text

TABLES = resources.files("kerma_mappings")
YAML_FILES = sorted(
    str(path.relative_to(TABLES))  # type: ignore[attr-defined]
    for path in TABLES.rglob("*.yaml")  # type: ignore[attr-defined]
)


def test_every_mapping_table_is_found() -> None:
    assert "fhir/search_parameters.yaml" in YAML_FILES and len(YAML_FILES) >= 20


@pytest.mark.parametrize("name", YAML_FILES)
def test_a_table_reads_as_safe_load_reads_it(name: str) -> None:
    text = read_text(name)
    assert parse_yaml(text) == yaml.safe_load(text)


def test_python_objects_are_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        parse_yaml("rules: !!python/object/apply:os.system ['true']")
