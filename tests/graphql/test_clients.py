"""GraphQL as the clients BI tools and integrators use meet it: graphql-core's introspection
query with `build_client_schema`, and gql fetching the schema from the server first
(`fetch_schema_from_transport=True`, as GraphiQL, Postman, Insomnia and Apollo tools do)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport
from graphql import build_client_schema, get_introspection_query
from werkzeug.serving import make_server

from tests.conftest import Api
from tests.graphql.test_fhir_graphql import data, flash  # noqa: F401


def test_the_introspection_query_answers_a_schema_clients_can_build(api: Api) -> None:
    answer = data(api, get_introspection_query())
    schema = build_client_schema(answer)
    observation_list = schema.type_map["Observation"].fields["ObservationList"]  # type: ignore[union-attr]
    assert "_reference" in observation_list.args  # the argument that once broke introspection
    assert {"doseStatistics", "ImagingStudyList"} <= set(schema.query_type.fields)  # type: ignore[union-attr]


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    """The app on a real HTTP server in a thread: its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_gql_fetches_the_schema_and_runs_a_query(
    flash: None,  # noqa: F811
    served: str,
    tokens: dict[str, str],
) -> None:
    transport = RequestsHTTPTransport(
        url=f"{served}/fhir/$graphql", headers={"Authorization": f"Bearer {tokens['mpe']}"}
    )
    with Client(transport=transport, fetch_schema_from_transport=True) as session:
        assert session.client.schema is not None  # fetched, and the query checked against it
        result = session.execute(
            gql(
                '{ ImagingStudyList { id ObservationList(_reference: part_of, code: "113852") { id } } }'
            )
        )
    [study] = result["ImagingStudyList"]
    assert len(study["ObservationList"]) == 4  # the Flash's four CT acquisitions
