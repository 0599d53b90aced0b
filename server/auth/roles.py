"""Role permissions, read from `mappings/roles.yaml`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from server.mappings import read_yaml

Action = Literal["read", "write", "delete"]
# Types that need to be named explicitly: "*" does not reach them.
_EXPLICIT_ONLY = frozenset({"AuditEvent"})
# The site's configuration (classification rules, notification routing): "*" reads it but
# does not write or delete it; roles that may change it name it.
_CONFIGURATION = frozenset({"Library", "Subscription"})


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    read: frozenset[str]
    write: frozenset[str]
    delete: frozenset[str]
    operations: frozenset[str] = frozenset()
    manage_users: bool = False
    own_devices_only: bool = False
    bulk_export: str = "none"  # FHIR $export: "identified", "pseudonymised" or "none"

    def can(self, action: Action, rtype: str) -> bool:
        allowed: frozenset[str] = getattr(self, action)
        hidden = _EXPLICIT_ONLY | (_CONFIGURATION if action != "read" else frozenset())
        return rtype in allowed or ("*" in allowed and rtype not in hidden)


@functools.cache
def roles() -> dict[str, Role]:
    table = read_yaml("roles.yaml")
    return {
        name: Role(
            name=name,
            description=spec["description"],
            read=frozenset(spec.get("read", [])),
            write=frozenset(spec.get("write", [])),
            delete=frozenset(spec.get("delete", [])),
            operations=frozenset(spec.get("operations", [])),
            manage_users=bool(spec.get("manage_users", False)),
            own_devices_only=bool(spec.get("own_devices_only", False)),
            bulk_export=str(spec.get("bulk_export", "none")),
        )
        for name, spec in table.items()
    }


def role(name: str) -> Role:
    try:
        return roles()[name]
    except KeyError:
        raise ValueError(f"unknown role {name!r}; roles: {', '.join(roles())}") from None
