"""What one authenticated user may see and change: the gate (`server/fhir/gate.py`) every
resource passes, for REST, batches and transactions, GraphQL and the statistics alike.

A role reads and writes the types `mappings/roles.yaml` gives it. A role bound to its own
devices (`own_devices_only`, radiographers) sees the dose data of those devices only: the
types below, by the search parameter that names their device; searches get that parameter
as a clause the user cannot lift, so totals count only what the user may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from server.auth import smart
from server.auth.roles import Action, Role, role
from server.fhir import registry
from server.fhir.errors import FhirError
from server.fhir.indexing import references_of
from server.fhir.search import SearchRequest
from server.store.port import Stored, User
from server.store.query import ChainClause, Clause, ReferenceClause

# the dose data of a device: type -> the reference search parameter naming the device
DEVICE_PARAMS = {"Observation": "device", "DetectedIssue": "device"}
_NO_DEVICE = ("Device/-none-",)


@dataclass(frozen=True)
class Access:
    user: User
    role: Role

    @classmethod
    def of(cls, user: User) -> Access:
        return cls(user, role(user.role))

    def require(self, rtype: str, action: str = "read") -> None:
        if not self.role.can(_action(action), rtype):
            raise FhirError.of(403, "forbidden", f"role {self.role.name} may not {action} {rtype}")
        scopes = self.user.scopes
        if scopes is not None and not smart.permits(scopes, rtype, _action(action)):
            raise FhirError.of(403, "forbidden", f"the access token's scopes ({' '.join(sorted(scopes))}) "
                               f"do not cover {action} {rtype}")  # fmt: skip

    def require_every_observation(self) -> None:
        """For what sums over a patient's examinations on every device (cumulative dose)."""
        if not self.role.can("read", "Observation") or self.role.own_devices_only:
            raise FhirError.of(403, "forbidden", f"role {self.role.name} may not read the dose "
                               "data of every device")  # fmt: skip

    @property
    def devices(self) -> tuple[str, ...] | None:
        """The devices whose dose data the user may see; None: every device."""
        return (self.user.devices or _NO_DEVICE) if self.role.own_devices_only else None

    def check_search(self, request: SearchRequest) -> None:
        for clause in request.query.clauses:
            while isinstance(clause, ChainClause):
                self._require_passage(clause.target_type)
                clause = clause.inner
        for include in request.revincludes:  # asked for by type: refused, not silently empty
            self.require(include.source_type)

    def _require_passage(self, rtype: str) -> None:
        """A chain through `rtype` tests values of its resources: the user must see them all."""
        self.require(rtype)
        if self.devices is not None and rtype in DEVICE_PARAMS:
            raise FhirError.of(403, "forbidden", f"role {self.role.name} may not search through "
                               f"{rtype} (it holds other devices' dose data)")  # fmt: skip

    def restriction(self, rtype: str) -> tuple[Clause, ...]:
        devices = self.devices
        if devices is None or rtype not in DEVICE_PARAMS:
            return ()
        return (ReferenceClause(DEVICE_PARAMS[rtype], devices),)

    def may_read(self, stored: Stored) -> bool:
        if not self.role.can("read", stored.rtype):
            return False
        if self.user.scopes is not None and not smart.permits(
            self.user.scopes, stored.rtype, "read"
        ):
            return False
        if stored.body is None or self.devices is None or stored.rtype not in DEVICE_PARAMS:
            return True  # without parsing: most readers see every device
        return self._on_own_devices(stored.rtype, orjson.loads(stored.body))

    def check_write(self, rtype: str, new: dict[str, Any] | None, current: Stored | None) -> None:
        self.require(rtype, "delete" if new is None else "write")
        before = orjson.loads(current.body) if current is not None and current.body else None
        for version in (before, new):
            if version is not None and not self._on_own_devices(rtype, version):
                raise FhirError.of(
                    403, "forbidden", f"{rtype}: not the dose data of a device you work on"
                )
        if rtype == "DetectedIssue" and new is not None:
            _check_mitigation(new, before, self.user.name)

    def _on_own_devices(self, rtype: str, body: dict[str, Any]) -> bool:
        devices = self.devices
        if devices is None or rtype not in DEVICE_PARAMS:
            return True
        param = registry.params(rtype)[DEVICE_PARAMS[rtype]]
        return any(ref in devices for ref in references_of(body, param))


def _check_mitigation(new: dict[str, Any], before: dict[str, Any] | None, user: str) -> None:
    """How an alert was handled is a record: earlier entries stay as they were, and what the
    user adds is signed by the user (an entry without author gets theirs)."""
    kept = (before or {}).get("mitigation") or []
    entries = new.get("mitigation")
    entries = entries if isinstance(entries, list) else []
    if entries[: len(kept)] != kept:
        raise FhirError.of(403, "forbidden", "DetectedIssue.mitigation: earlier entries may not "
                           "be changed or removed", "DetectedIssue.mitigation")  # fmt: skip
    for i, entry in enumerate(entries[len(kept) :], start=len(kept)):
        if not isinstance(entry, dict):
            continue
        author = entry.setdefault("author", {"display": user})
        if not isinstance(author, dict) or author != {"display": user}:
            raise FhirError.of(403, "forbidden", f"DetectedIssue.mitigation[{i}].author must be "
                               f"you ({user})", f"DetectedIssue.mitigation[{i}].author")  # fmt: skip


def _action(name: str) -> Action:
    if name not in ("read", "write", "delete"):
        raise ValueError(f"unknown action {name!r}")
    return name  # type: ignore[return-value]
