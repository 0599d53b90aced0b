"""What one authenticated user may see: the role's resource types, and for roles bound to
their own devices only the Observations of those devices. REST and GraphQL both ask here."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from server.auth.roles import Role, role
from server.fhir.errors import FhirError
from server.store.port import Stored, User
from server.store.query import ReferenceClause


@dataclass(frozen=True)
class Access:
    user: User
    role: Role

    @classmethod
    def of(cls, user: User) -> Access:
        return cls(user, role(user.role))

    def require(self, rtype: str) -> None:
        if not self.role.can("read", rtype):
            raise FhirError.of(403, "forbidden", f"role {self.role.name} may not read {rtype}")

    def require_every_observation(self) -> None:
        """For what sums over a patient's examinations on every device (cumulative dose)."""
        if not self.role.can("read", "Observation") or self.role.own_devices_only:
            raise FhirError.of(403, "forbidden", f"role {self.role.name} may not read the dose "
                               "data of every device")  # fmt: skip

    def restriction(self, rtype: str) -> tuple[ReferenceClause, ...]:
        """Search clauses the user may not lift: a radiographer's own devices."""
        if self.role.own_devices_only and rtype == "Observation":
            return (ReferenceClause("device", self.user.devices or ("Device/-none-",)),)
        return ()

    def visible(self, stored: Stored) -> bool:
        if not self.role.can("read", stored.rtype):
            return False
        if not (self.role.own_devices_only and stored.rtype == "Observation" and stored.body):
            return True
        device = orjson.loads(stored.body).get("device", {}).get("reference")
        return device in self.user.devices
