"""How much one GraphQL query may ask for, checked before anything runs: a depth limit
(strawberry's QueryDepthLimiter) and a cost limit (here; strawberry has none).

The cost counts every selected field once per object it is selected on: a `<Type>List` or
`<Type>Connection` multiplies what is under it by its `_count`; without one (or with a
variable) by the most a search gives at the root, and by a typical number (the default page)
for the reverse references under a resource, whose batched search has its own hard limit.
`ImagingStudyList(_count: 1000) { id ObservationList(_reference: part_of, _count: 20) { id } }`
costs 1000 x (1 + 1 + 20 x 1).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from strawberry.extensions import (
    AddValidationRules,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from server.fhir.errors import FhirError, outcome
from server.graphql.errors import WithOutcomes, lacks_outcome

_AT_ROOT = 1000  # the REST page maximum
_NESTED = 50  # the REST default page
# validated documents kept: a site's dashboards and scripts send the same queries again and
# again; a thousand parsed documents with their answers take a few MB
_VALIDATED = 1000


def limits(max_depth: int, max_cost: int) -> list[Callable[[], SchemaExtension]]:
    """Extension factories: strawberry makes new ones for each request. The rules are made
    once (QueryDepthLimiter makes a new rule class each time), so a query validated before is
    not validated again: the cache knows a document by its rules too."""
    rules = [*QueryDepthLimiter(max_depth=max_depth).validation_rules, cost_rule(max_cost)]
    return [
        functools.partial(AddValidationRules, rules),
        functools.partial(ValidationCache, maxsize=_VALIDATED),
        functools.partial(WithOutcomes, should_mask_error=lacks_outcome),
    ]


def cost_rule(max_cost: int) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            cost = self._cost(node.selection_set, set(), root=True)
            if cost > max_cost:
                error = FhirError.of(
                    400,
                    "too-costly",
                    f"the query would cost {cost} (fields x list sizes), more than the "
                    f"{max_cost} allowed; ask for fewer fields or smaller _count",
                )
                self.report_error(
                    GraphQLError(str(error), node, extensions={"resource": outcome(error.issues)})
                )

        def _cost(
            self, selections: SelectionSetNode | None, seen: set[str], root: bool = False
        ) -> int:
            total = 0
            for selection in selections.selections if selections else ():
                if isinstance(selection, FieldNode):
                    below = self._cost(selection.selection_set, seen)
                    total += 1 + _multiplier(selection, root) * below
                elif isinstance(selection, InlineFragmentNode):
                    total += self._cost(selection.selection_set, seen, root)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.context.get_fragment(name)
                    if fragment is not None and name not in seen:  # cycles are another rule's
                        total += self._cost(fragment.selection_set, seen | {name}, root)
            return total

    return CostLimit


def _multiplier(field: FieldNode, root: bool) -> int:
    name = field.name.value
    if not (name.endswith("List") or name.endswith("Connection")):
        return 1
    for argument in field.arguments or ():
        if argument.name.value == "_count" and isinstance(argument.value, IntValueNode):
            return max(1, int(argument.value.value))
    return _AT_ROOT if root else _NESTED
