"""The TypedDicts of server/fhir/datatypes.py make mypy catch a misspelt element or a wrong
kind of value where Kerma builds a resource (mypy runs on a snippet here, as CI runs it on
server/)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mypy import api

# what scripts/test's mypy run over server/ left: a copy of it spares this test analysing the
# standard library and server.fhir again (7 -> 0.3 s); without one, mypy starts from nothing
WARM_CACHE = Path(__file__).parents[2] / ".mypy_cache"

SNIPPET = """
from server.fhir.datatypes import (CodeableConcept, Identifier, ImagingStudySeries,
                                   ObservationComponent)

CODE: CodeableConcept = {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                     "code": "113830"}]}


def misspelt() -> ObservationComponent:
    return {"code": CODE, "valueQuanity": {"value": 1.2, "unit": "mGy"}}


def wrong_kind() -> Identifier:
    return {"system": "urn:dicom:uid", "value": 1.2}


def right() -> ObservationComponent:
    return {"code": CODE, "valueQuantity": {"value": 1.2, "unit": "mGy", "code": "mGy"}}


def series_without_its_uid() -> ImagingStudySeries:
    return {"modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}}
"""


def test_mypy_catches_a_misspelt_element_and_a_wrong_value(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    cache = tmp_path / "cache"
    if WARM_CACHE.is_dir():
        shutil.copytree(WARM_CACHE, cache)
    out, _, status = api.run([str(snippet), "--cache-dir", str(cache),
                              "--no-error-summary"])  # fmt: skip
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1 and len(errors) == 3, out
    assert 'Extra key "valueQuanity" for TypedDict "ObservationComponent"' in errors[0]
    assert (
        ':14: error: Incompatible types (expression has type "float", TypedDict item "value"'
        in errors[1]
    )
    assert 'Missing key "uid" for TypedDict "ImagingStudySeries"' in errors[2]
