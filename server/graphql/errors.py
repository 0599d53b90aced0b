"""FhirErrors leave GraphQL as GraphQL errors carrying the OperationOutcome in
`extensions.resource` (FHIR GraphQL, "Errors"), never as a stack trace. Other exceptions
are defects: the client gets an OperationOutcome saying so, the log the stack trace; the
client's own mistakes are not logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from server.fhir.errors import FhirError, outcome

log = logging.getLogger(__name__)


def as_graphql(error: FhirError) -> GraphQLError:
    return GraphQLError(str(error), extensions={"resource": outcome(error.issues)})


def invalid(message: str) -> GraphQLError:
    return as_graphql(FhirError.of(400, "invalid", message))


@contextmanager
def fhir_errors() -> Iterator[None]:
    try:
        yield
    except FhirError as e:
        raise as_graphql(e) from None


def is_defect(error: GraphQLError) -> bool:
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


def lacks_outcome(error: GraphQLError) -> bool:
    return is_defect(error) or "resource" not in (error.extensions or {})


class WithOutcomes(MaskErrors):
    """Gives every error an OperationOutcome: a defect's says only that it happened; a
    query the schema rejects (syntax, unknown field) gets its message as an `invalid` issue."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if is_defect(error):
            issue = FhirError.of(500, "exception", "an internal error; the server's log has it")
        else:
            issue = FhirError.of(400, "invalid", error.message)
        return GraphQLError(error.message if not is_defect(error) else str(issue), error.nodes,
                            error.source, error.positions, error.path,
                            extensions={"resource": outcome(issue.issues)})  # fmt: skip


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if is_defect(error):
                log.error(
                    "GraphQL resolver failed at %s", error.path, exc_info=error.original_error
                )
