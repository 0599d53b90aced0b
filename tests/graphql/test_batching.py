"""No N+1: a GraphQL query for 1,000 studies with their events and patients costs a bounded
number of store queries, however many studies there are (the DataLoaders in loaders.py).
On mongomock, whose writes take 80 s for these 5,000 resources, 100 studies show the same."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from server.fhir import FhirService
from server.store.port import Store
from tests.conftest import MONGO_URL, Api
from tests.graphql.test_fhir_graphql import data

EVENTS_PER_STUDY = 3
QUERY = """{ ImagingStudyList(_count: 1000) {
  id subject { resource { ... on Patient { id birthDate } } }
  ObservationList(_reference: part_of, _sort: "date") { id valueQuantity { value } } } }"""


@pytest.fixture
def store(any_store: Store) -> Store:
    """Both store adapters: the batching is the GraphQL layer's, the queries each store's."""
    return any_store


@pytest.fixture
def studies(service: FhirService, request: pytest.FixtureRequest) -> int:
    mongomock = "mongodb" in request.node.name and not MONGO_URL
    count = 100 if mongomock else 1000
    with service.store.transaction() as tx:
        for n in range(count):
            patient = {
                "resourceType": "Patient",
                "id": f"p{n}",
                "birthDate": f"19{n % 100:02d}-01-01",
            }
            service.update_in(tx, "Patient", f"p{n}", patient, trusted=True)
            study = {"resourceType": "ImagingStudy", "id": f"s{n}", "status": "available",
                     "subject": {"reference": f"Patient/p{n}"}}  # fmt: skip
            service.update_in(tx, "ImagingStudy", f"s{n}", study, trusted=True)
            for e in range(EVENTS_PER_STUDY):
                event = {"resourceType": "Observation", "id": f"s{n}-e{e}", "status": "final",
                         "code": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "113852"}]},
                         "subject": {"reference": f"Patient/p{n}"}, "partOf": [{"reference": f"ImagingStudy/s{n}"}],
                         "effectiveDateTime": f"2026-01-01T10:0{e}:00Z",
                         "valueQuantity": {"value": n * 10 + e}}  # fmt: skip
                service.update_in(tx, "Observation", f"s{n}-e{e}", event, trusted=True)
    return count


def test_a_thousand_studies_cost_a_few_store_queries(
    studies: int, api: Api, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    for method in ("search", "read", "included", "revincluded"):
        original = getattr(store, method)

        def counted(*args: Any, _original: Any = original, _name: str = method) -> Any:
            calls[_name] += 1
            return _original(*args)

        monkeypatch.setattr(store, method, counted)

    found = data(api, QUERY)["ImagingStudyList"]
    assert len(found) == studies
    for study in found:
        n = int(study["id"][1:])
        assert study["subject"]["resource"] == {
            "id": f"p{n}",
            "birthDate": f"19{n % 100:02d}-01-01",
        }
        assert [e["valueQuantity"]["value"] for e in study["ObservationList"]] == [
            n * 10 + e for e in range(EVENTS_PER_STUDY)
        ]
    # one search for the studies, one `_id` search for their patients, one search for their
    # events (the user's token is looked up outside these methods)
    assert calls == Counter({"search": 3}), calls
