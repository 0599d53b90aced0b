"""The persistence port: what the FHIR service needs from any store, and nothing more.

Adapters (`sqlite.py`, `mongodb.py`) implement `Store`; `tests/store/test_contract.py` runs the
same contract on each. The store does not know FHIR rules: it keeps versions of JSON bodies,
the index values the FHIR layer extracted from them, and executes `query.Query` clauses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from server.dose.facts import DoseFact
from server.store.query import Query

TokenRow = tuple[str, str, str]  # (param, system or "", code)
StringRow = tuple[str, str, str]  # (param, folded text, exact text)
DateRow = tuple[str, float, float]  # (param, low, high) epoch seconds, closed
# (param, value, unit system, unit code, canonical value, canonical unit code)
QuantityRow = tuple[str, float, str, str, float, str]
ReferenceRow = tuple[str, str]  # (param, "Type/id")
# (param, token system, token code, value, unit system, unit code, canonical value, canonical code)
CompositeRow = tuple[str, str, str, float, str, str, float, str]


@dataclass(frozen=True)
class Index:
    """Search values of one resource version, ready to store."""

    tokens: tuple[TokenRow, ...] = ()
    strings: tuple[StringRow, ...] = ()
    dates: tuple[DateRow, ...] = ()
    quantities: tuple[QuantityRow, ...] = ()
    references: tuple[ReferenceRow, ...] = ()
    composites: tuple[CompositeRow, ...] = ()
    # [low, high] of the type's primary date param (registry `primary`), when it has one value
    primary_date: tuple[float, float] | None = None


@dataclass(frozen=True)
class Stored:
    """One version of one resource as kept; `body` is JSON bytes, None when deleted."""

    rtype: str
    rid: str
    version: int
    last_updated: float  # epoch seconds
    body: bytes | None
    method: str = "PUT"

    @property
    def deleted(self) -> bool:
        return self.body is None


@dataclass(frozen=True)
class Write:
    """A new version to commit. `body` None (and `index` None) deletes the resource."""

    rtype: str
    rid: str
    version: int
    last_updated: float
    method: Literal["POST", "PUT", "DELETE"]
    body: bytes | None
    index: Index | None


@dataclass(frozen=True)
class User:
    name: str
    role: str
    token_hash: str
    created: float
    devices: tuple[str, ...] = field(default_factory=tuple)  # "Device/id" a radiographer works on
    active: bool = True
    # a SMART backend services client: its public keys (a JWKS, as JSON); "" for a token user
    jwks: str = ""
    # what an access token was granted (SMART scopes); None: a static token, the whole role
    scopes: frozenset[str] | None = None
    # the web console's sign-in: an argon2 hash of the password; "" for no password
    password_hash: str = ""


class StoreError(Exception):
    """Base class of what a store tells its caller."""


class VersionConflict(StoreError):
    """Another writer committed a version of this resource first."""


class Duplicate(StoreError):
    """The key (resource id or user name) exists already."""


class Reader(Protocol):
    def read(self, rtype: str, rid: str) -> Stored | None:
        """The current version (body None if deleted), or None if the id was never used."""

    def search(self, query: Query) -> tuple[list[Stored], int | None]:
        """One page of current, non-deleted resources and the total (None if not asked)."""


class Transaction(Reader, Protocol):
    def write(self, write: Write) -> None:
        """Stage a version; it becomes visible to others when the transaction commits."""

    def replace_facts(self, study_uid: str, facts: Sequence[DoseFact]) -> None:
        """The study's dose facts, replacing the ones stored for it."""


class Store(Reader, Protocol):
    name: str

    def vread(self, rtype: str, rid: str, version: int) -> Stored | None: ...

    def history(
        self, rtype: str | None, rid: str | None, since: float | None, count: int, offset: int
    ) -> tuple[list[Stored], int]:
        """Versions, newest first, of one resource, one type (rid None) or everything."""

    def included(self, sources: list[Stored], param: str, target_type: str | None) -> list[Stored]:
        """Current resources that `param` references of `sources` point at (_include)."""

    def revincluded(self, targets: list[Stored], rtype: str, param: str) -> list[Stored]:
        """Current `rtype` resources whose `param` reference points at `targets` (_revinclude)."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """All writes staged inside commit together, or none do (on any exception)."""

    def add_user(self, user: User) -> None: ...

    def user_by_token(self, token_hash: str) -> User | None: ...

    def users(self) -> Iterator[User]: ...

    def set_user_active(self, name: str, active: bool) -> bool: ...

    def user_by_name(self, name: str) -> User | None: ...

    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace the user's password hash; False when there is no such user."""
        ...

    def set_token_hash(self, name: str, token_hash: str) -> bool:
        """Replace the user's token (its hash): the old one stops working at once; False when
        there is no such user."""
        ...

    def failed_sign_ins(self, key: str, since: float) -> int:
        """How many sign-ins failed for `key` (a user name, a client address) since then."""
        ...

    def record_failed_sign_in(self, key: str, at: float) -> None:
        """Remember a failed sign-in (forgotten after a day)."""
        ...

    def clear_failed_sign_ins(self, key: str) -> None: ...

    def first_use(self, key: str, expires: float) -> bool:
        """Whether `key` (a client assertion's issuer and jti) is new; remembered until
        `expires` (epoch seconds), so a replayed assertion is refused in every process."""
        ...

    def facts(self, study_uid: str | None = None) -> list[DoseFact]:
        """Dose facts, of one study or all (statistics read these)."""

    def recent_studies(
        self, device: str, procedure: str, until: float, limit: int
    ) -> list[DoseFact]:
        """The study rows of one device and procedure up to a time, newest first (group
        criteria: "the last 20 examinations of a type on a device")."""

    def fact_columns(
        self,
        level: str,
        columns: Sequence[str],
        since: float,
        until: float,
        studies: Sequence[str] | None = None,
    ) -> dict[str, list[Any]]:
        """Columns (DoseFact field names) of the rows of one level ("event", "study") dated
        in [since, until), of some studies only when named: what statistics read, without
        building a row object each. Over (-inf, inf) the rows without a date come too."""

    def fact_column_batches(
        self, level: str, columns: Sequence[str], size: int
    ) -> Iterator[dict[str, list[Any]]]:
        """Every row of a level (undated ones too) as fact_columns gives them, `size` rows at
        a time: the statistics copy is built in bounded memory."""

    def fact_rows(
        self, level: str, columns: Sequence[str], since: float, until: float
    ) -> Iterator[tuple[Any, ...]]:
        """The same rows as fact_columns, one tuple at a time, in date order: exports stream
        them in bounded memory."""

    def fact_version(self) -> int:
        """The number of the latest write of dose facts (0: none yet)."""

    def fact_changes(self, after: int) -> tuple[int, list[str]]:
        """The studies whose dose facts were written after write `after`, and the latest
        write's number: what a copy of the facts reads again to be current."""

    def ping(self) -> None:
        """Raise if the store cannot answer."""

    def close(self) -> None: ...
