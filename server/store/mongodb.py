"""The MongoDB store (mongoengine), for hospitals and national registries.

Documents: `resource` (current version of each resource, with its search values in arrays
under `ix`, one multikey index per value kind), `resource_version` (every version), `app_user`.
mongoengine declares the collections and their indexes; queries go to the pymongo collection
underneath, because search filters are built as raw `$elemMatch` documents.

Transactions: on a replica set (or sharded cluster) a transaction Bundle runs in a MongoDB
multi-document transaction. A standalone server has none, so there every write is applied at
once and undone in reverse order if the transaction fails; readers may briefly see a
half-applied Bundle, and a crash in the middle leaves it half-applied. Run a replica set
(one member is enough) in production.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from mongoengine import (
    BooleanField,
    DictField,
    Document,
    FloatField,
    IntField,
    ListField,
    StringField,
    connect,
    disconnect,
)
from pymongo.errors import DuplicateKeyError

from server.dose.facts import FACT_FIELDS, DoseFact, checked_fields
from server.store.port import Duplicate, Index, Stored, User, VersionConflict, Write
from server.store.query import (
    Bound,
    ChainClause,
    Clause,
    CompositeClause,
    DateClause,
    IdClause,
    LastUpdatedClause,
    MissingClause,
    QuantityClause,
    QuantityValue,
    Query,
    Range,
    ReferenceClause,
    SortKey,
    StringClause,
    TokenClause,
    TokenValue,
    fold,
    range_conditions,
)

_ALIAS = "kerma"
_OPS = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
_KIND = {
    "token": "tok",
    "string": "str",
    "date": "dt",
    "quantity": "q",
    "reference": "ref",
    "composite": "cq",
}
SCHEMA_VERSION = 2
_CHANGE_COUNTER = "counter"  # the fact_change document holding the latest write's number


class ResourceDoc(Document):  # type: ignore[misc]  # mongoengine has no type hints
    meta = {  # noqa: RUF012 - mongoengine's declaration style
        "collection": "resource",
        "db_alias": _ALIAS,
        "indexes": [
            {"fields": ["t", "deleted"]},
            {"fields": ["t", "lu"]},
            {"fields": ["t", "rid"]},
            {"fields": ["ix.tok.p", "ix.tok.c", "ix.tok.s"]},
            {"fields": ["ix.str.p", "ix.str.n"]},
            {"fields": ["ix.dt.p", "ix.dt.lo", "ix.dt.hi"]},
            {"fields": ["ix.q.p", "ix.q.cc", "ix.q.cv"]},
            {"fields": ["ix.ref.p", "ix.ref.t"]},
            {"fields": ["ix.cq.p", "ix.cq.c", "ix.cq.cv"]},
        ],
    }
    id = StringField(primary_key=True)  # "Type/id"
    t = StringField(required=True)
    rid = StringField(required=True)
    v = IntField(required=True)
    lu = FloatField(required=True)
    deleted = BooleanField(default=False)
    body = StringField()
    ix = DictField()
    sa = DictField()  # ascending sort value per param
    sd = DictField()  # descending sort value per param


class VersionDoc(Document):  # type: ignore[misc]  # mongoengine has no type hints
    meta = {  # noqa: RUF012
        "collection": "resource_version",
        "db_alias": _ALIAS,
        "indexes": [{"fields": ["key", "-v"]}, {"fields": ["t", "-lu"]}, {"fields": ["-lu"]}],
    }
    id = StringField(primary_key=True)  # "Type/id/version"
    key = StringField(required=True)
    t = StringField(required=True)
    rid = StringField(required=True)
    v = IntField(required=True)
    lu = FloatField(required=True)
    method = StringField(required=True)
    body = StringField()


class UserDoc(Document):  # type: ignore[misc]  # mongoengine has no type hints
    meta = {  # noqa: RUF012
        "collection": "app_user",
        "db_alias": _ALIAS,
        "indexes": [{"fields": ["token_hash"], "unique": True}],
    }
    id = StringField(primary_key=True)  # user name
    role = StringField(required=True)
    token_hash = StringField(required=True)
    created = FloatField(required=True)
    devices = ListField(StringField())
    active = BooleanField(default=True)
    jwks = StringField(default="")
    password_hash = StringField(default="")


class FactDoc(Document):  # type: ignore[misc]  # mongoengine has no type hints
    """A dose fact; fields as in server.dose.facts.DoseFact (written as raw documents)."""

    meta = {  # noqa: RUF012
        "collection": "dose_fact",
        "db_alias": _ALIAS,
        "strict": False,
        "indexes": [
            {"fields": ["study_uid"]},
            {"fields": ["level", "modality", "date"]},
            {"fields": ["level", "device", "date"]},
        ],
    }
    id = StringField(primary_key=True)  # the fact's key
    study_uid = StringField(required=True)
    level = StringField(required=True)
    modality = StringField()
    device = StringField()
    date = FloatField()


class SchemaDoc(Document):  # type: ignore[misc]  # mongoengine has no type hints
    meta = {"collection": "schema_version", "db_alias": _ALIAS}  # noqa: RUF012
    id = StringField(primary_key=True)
    version = IntField(required=True)


class MongoStore:
    name = "mongodb"

    def __init__(
        self,
        url: str,
        database: str | None = None,
        client_class: Any = None,
        drop_on_close: bool = False,
    ) -> None:
        disconnect(_ALIAS)
        kwargs: dict[str, Any] = {"alias": _ALIAS, "host": url, "uuidRepresentation": "standard"}
        if database:
            kwargs["db"] = database
        if client_class is not None:
            kwargs["mongo_client_class"] = client_class
        self._client = connect(**kwargs)
        self._drop_on_close = drop_on_close
        self._res = ResourceDoc._get_collection()
        self._ver = VersionDoc._get_collection()
        self._users = UserDoc._get_collection()
        self._facts = FactDoc._get_collection()
        self._changes = self._facts.database["fact_change"]
        self._transactions = _supports_transactions(self._client)
        self._migrate()

    def _migrate(self) -> None:
        """Index creation is idempotent; the version records which declaration ran last."""
        for doc in (ResourceDoc, VersionDoc, UserDoc, FactDoc):
            doc.ensure_indexes()
        self._changes.create_index("seq")
        SchemaDoc.objects(id="schema").update_one(set__version=SCHEMA_VERSION, upsert=True)

    def schema_version(self) -> int:
        return int(SchemaDoc.objects.get(id="schema").version)

    def ping(self) -> None:
        self._client.admin.command("ping")

    def close(self) -> None:
        if self._drop_on_close:
            self._client.drop_database(self._res.database.name)
        disconnect(_ALIAS)

    # -- reads ----------------------------------------------------------------------------------

    def read(self, rtype: str, rid: str) -> Stored | None:
        return _read(self._res, rtype, rid, None)

    def vread(self, rtype: str, rid: str, version: int) -> Stored | None:
        doc = self._ver.find_one({"_id": f"{rtype}/{rid}/{version}"})
        return _version(doc) if doc else None

    def history(
        self, rtype: str | None, rid: str | None, since: float | None, count: int, offset: int
    ) -> tuple[list[Stored], int]:
        flt: dict[str, Any] = {}
        if rtype is not None:
            flt["t"] = rtype
        if rid is not None:
            flt["key"] = f"{rtype}/{rid}"
        if since is not None:
            flt["lu"] = {"$gte": since}
        total = self._ver.count_documents(flt)
        docs = self._ver.find(flt).sort([("lu", -1), ("v", -1)]).skip(offset).limit(count)
        return [_version(d) for d in docs], total

    def search(self, query: Query) -> tuple[list[Stored], int | None]:
        return _search(self._res, query, None)

    def included(self, sources: list[Stored], param: str, target_type: str | None) -> list[Stored]:
        keys = [f"{s.rtype}/{s.rid}" for s in sources]
        targets: set[str] = set()
        for doc in self._res.find({"_id": {"$in": keys}}, {"ix.ref": 1}):
            targets.update(r["t"] for r in doc.get("ix", {}).get("ref", []) if r["p"] == param)
        if target_type is not None:
            targets = {t for t in targets if t.startswith(target_type + "/")}
        docs = self._res.find({"_id": {"$in": sorted(targets)}, "deleted": False}).sort("_id", 1)
        return [_stored(d) for d in docs]

    def revincluded(self, targets: list[Stored], rtype: str, param: str) -> list[Stored]:
        keys = [f"{t.rtype}/{t.rid}" for t in targets]
        flt = {
            "t": rtype,
            "deleted": False,
            "ix.ref": {"$elemMatch": {"p": param, "t": {"$in": keys}}},
        }
        return [_stored(d) for d in self._res.find(flt).sort("_id", 1)]

    # -- writes ---------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[MongoTransaction]:
        if self._transactions:
            with self._client.start_session() as session, session.start_transaction():
                yield MongoTransaction(self._res, self._ver, self._facts, self._changes, session)
            return
        tx = MongoTransaction(self._res, self._ver, self._facts, self._changes, None)
        try:
            yield tx
        except BaseException:
            tx.undo()
            raise

    # -- users ------------------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        doc = {
            "_id": user.name,
            "role": user.role,
            "token_hash": user.token_hash,
            "created": user.created,
            "devices": list(user.devices),
            "active": user.active,
            "jwks": user.jwks,
            "password_hash": user.password_hash,
        }
        try:
            self._users.insert_one(doc)
        except DuplicateKeyError:
            raise Duplicate(f"user {user.name!r} exists") from None

    def user_by_token(self, token_hash: str) -> User | None:
        doc = self._users.find_one({"token_hash": token_hash})
        return _user(doc) if doc else None

    def users(self) -> Iterator[User]:
        return iter([_user(d) for d in self._users.find().sort("_id", 1)])

    def facts(self, study_uid: str | None = None) -> list[DoseFact]:
        docs = self._facts.find({"study_uid": study_uid} if study_uid else {}).sort("_id", 1)
        return [_fact(doc) for doc in docs]

    def recent_studies(
        self, device: str, procedure: str, until: float, limit: int
    ) -> list[DoseFact]:
        query = {
            "level": "study",
            "device": device,
            "procedure": procedure,
            "date": {"$lte": until},
        }
        return [_fact(doc) for doc in self._facts.find(query).sort("date", -1).limit(limit)]

    def fact_columns(
        self,
        level: str,
        columns: Sequence[str],
        since: float,
        until: float,
        studies: Sequence[str] | None = None,
    ) -> dict[str, list[Any]]:
        wanted = checked_fields(columns)
        query: dict[str, Any] = {"level": level}
        if not (since == -math.inf and until == math.inf):  # else undated rows too
            query["date"] = {"$gte": since, "$lt": until}
        if studies is not None:
            query["study_uid"] = {"$in": list(studies)}
        docs = list(self._facts.find(query, dict.fromkeys(wanted, 1)))
        return {c: [doc.get(c) for doc in docs] for c in wanted}

    def fact_column_batches(
        self, level: str, columns: Sequence[str], size: int
    ) -> Iterator[dict[str, list[Any]]]:
        wanted = checked_fields(columns)
        docs = self._facts.find({"level": level}, dict.fromkeys(wanted, 1), batch_size=size)
        while batch := list(itertools.islice(docs, size)):
            yield {c: [doc.get(c) for doc in batch] for c in wanted}

    def fact_rows(
        self, level: str, columns: Sequence[str], since: float, until: float
    ) -> Iterator[tuple[Any, ...]]:
        wanted = checked_fields(columns)
        query = {"level": level, "date": {"$gte": since, "$lt": until}}
        for doc in self._facts.find(query, dict.fromkeys(wanted, 1)).sort(
            [("date", 1), ("_id", 1)]
        ):
            yield tuple(doc.get(c) for c in wanted)

    def fact_version(self) -> int:
        counter = self._changes.find_one({"_id": _CHANGE_COUNTER})
        return int(counter["n"]) if counter else 0

    def fact_changes(self, after: int) -> tuple[int, list[str]]:
        docs = list(self._changes.find({"seq": {"$gt": after}}).sort("seq", 1))
        latest = docs[-1]["seq"] if docs else max(after, self.fact_version())
        return int(latest), list(dict.fromkeys(d["study_uid"] for d in docs))

    def set_user_active(self, name: str, active: bool) -> bool:
        result = self._users.update_one({"_id": name}, {"$set": {"active": active}})
        return bool(result.matched_count == 1)

    def user_by_name(self, name: str) -> User | None:
        doc = self._users.find_one({"_id": name})
        return _user(doc) if doc else None

    def set_password(self, name: str, password_hash: str) -> bool:
        result = self._users.update_one({"_id": name}, {"$set": {"password_hash": password_hash}})
        return bool(result.matched_count == 1)

    def set_token_hash(self, name: str, token_hash: str) -> bool:
        result = self._users.update_one({"_id": name}, {"$set": {"token_hash": token_hash}})
        return bool(result.matched_count == 1)

    def failed_sign_ins(self, key: str, since: float) -> int:
        failed = self._users.database["failed_sign_in"]
        return int(failed.count_documents({"key": key, "at": {"$gte": since}}))

    def record_failed_sign_in(self, key: str, at: float) -> None:
        failed = self._users.database["failed_sign_in"]
        failed.delete_many({"at": {"$lt": at - 86400.0}})
        failed.insert_one({"key": key, "at": at})

    def clear_failed_sign_ins(self, key: str) -> None:
        self._users.database["failed_sign_in"].delete_many({"key": key})

    def first_use(self, key: str, expires: float) -> bool:
        used = self._users.database["used_assertion"]
        used.delete_many({"expires": {"$lt": time.time()}})
        try:
            used.insert_one({"_id": key, "expires": expires})
        except DuplicateKeyError:
            return False
        return True


def _fact(doc: Any) -> DoseFact:
    return DoseFact(
        **{name: doc.get(name) for name in FACT_FIELDS if name != "key"}, key=doc["_id"]
    )


class MongoTransaction:
    """Writes applied as they come; on a standalone server each is logged so it can be undone."""

    def __init__(self, res: Any, ver: Any, facts: Any, changes: Any, session: Any) -> None:
        self._res = res
        self._ver = ver
        self._facts = facts
        self._changes = changes
        self._session = session
        self._undo: list[tuple[str, str, dict[str, Any] | None]] = []

    def read(self, rtype: str, rid: str) -> Stored | None:
        return _read(self._res, rtype, rid, self._session)

    def search(self, query: Query) -> tuple[list[Stored], int | None]:
        return _search(self._res, query, self._session)

    def write(self, write: Write) -> None:
        key = f"{write.rtype}/{write.rid}"
        current = self._res.find_one({"_id": key}, session=self._session)
        doc = _resource_doc(key, write)
        if current is None:
            if write.version != 1:
                raise VersionConflict(f"{key} does not exist")
            try:
                self._res.insert_one(doc, session=self._session)
            except DuplicateKeyError:
                raise VersionConflict(f"{key} was created concurrently") from None
        else:
            if current["v"] != write.version - 1:
                raise VersionConflict(f"{key} is at version {current['v']}")
            result = self._res.replace_one(
                {"_id": key, "v": current["v"]}, doc, session=self._session
            )
            if result.matched_count != 1:
                raise VersionConflict(f"{key} was updated concurrently")
        self._undo.append(("resource", key, current))
        version_id = f"{key}/{write.version}"
        try:
            self._ver.insert_one(
                {
                    "_id": version_id,
                    "key": key,
                    "t": write.rtype,
                    "rid": write.rid,
                    "v": write.version,
                    "lu": write.last_updated,
                    "method": write.method,
                    "body": write.body.decode() if write.body is not None else None,
                },
                session=self._session,
            )
        except DuplicateKeyError:
            raise VersionConflict(f"{version_id} exists") from None
        self._undo.append(("version", version_id, None))

    def replace_facts(self, study_uid: str, facts: Sequence[DoseFact]) -> None:
        before = list(self._facts.find({"study_uid": study_uid}, session=self._session))
        self._facts.delete_many({"study_uid": study_uid}, session=self._session)
        if facts:
            docs = [
                {"_id": f.key, **{n: getattr(f, n) for n in FACT_FIELDS if n != "key"}}
                for f in facts
            ]
            self._facts.insert_many(docs, session=self._session)
        self._undo.append(("facts", study_uid, {"docs": before}))
        # the change log: an entry left by an undone write only makes a cache read a study
        # again (the counter is a document of the same collection)
        counter = self._changes.find_one_and_update(
            {"_id": _CHANGE_COUNTER}, {"$inc": {"n": 1}}, upsert=True, return_document=True,
            session=self._session,
        )  # fmt: skip
        self._changes.insert_one(
            {"seq": counter["n"], "study_uid": study_uid}, session=self._session
        )

    def undo(self) -> None:
        for collection, key, previous in reversed(self._undo):
            if collection == "facts":
                self._facts.delete_many({"study_uid": key})
                if previous and previous["docs"]:
                    self._facts.insert_many(previous["docs"])
                continue
            if collection == "version":
                self._ver.delete_one({"_id": key})
            elif previous is None:
                self._res.delete_one({"_id": key})
            else:
                self._res.replace_one({"_id": key}, previous)
        self._undo.clear()


# -- documents ------------------------------------------------------------------------------------


def _resource_doc(key: str, write: Write) -> dict[str, Any]:
    index = write.index or Index()
    ix = {
        "tok": [{"p": p, "s": s, "c": c} for p, s, c in index.tokens],
        "str": [{"p": p, "n": n, "e": e} for p, n, e in index.strings],
        "dt": [{"p": p, "lo": lo, "hi": hi} for p, lo, hi in index.dates],
        "q": [
            {"p": p, "v": v, "s": s, "c": c, "cv": cv, "cc": cc}
            for p, v, s, c, cv, cc in index.quantities
        ],
        "ref": [{"p": p, "t": t} for p, t in index.references],
        "cq": [
            {"p": p, "s": s, "c": c, "v": v, "us": us, "uc": uc, "cv": cv, "cc": cc}
            for p, s, c, v, us, uc, cv, cc in index.composites
        ],
    }
    ascending, descending = _sort_values(index)
    return {
        "_id": key,
        "t": write.rtype,
        "rid": write.rid,
        "v": write.version,
        "lu": write.last_updated,
        "deleted": write.body is None,
        "body": write.body.decode() if write.body is not None else None,
        "ix": ix,
        "sa": ascending,
        "sd": descending,
    }


def _sort_values(index: Index) -> tuple[dict[str, Any], dict[str, Any]]:
    values: dict[str, list[Any]] = {}
    for p, _, c in index.tokens:
        values.setdefault(p, []).append(c)
    for p, n, _ in index.strings:
        values.setdefault(p, []).append(n)
    for p, lo, hi in index.dates:
        values.setdefault(p, []).extend((lo, hi))
    for p, v, *_ in index.quantities:
        values.setdefault(p, []).append(v)
    for p, t in index.references:
        values.setdefault(p, []).append(t)
    return {p: min(vs) for p, vs in values.items()}, {p: max(vs) for p, vs in values.items()}


def _stored(doc: dict[str, Any]) -> Stored:
    body = doc.get("body")
    return Stored(
        doc["t"], doc["rid"], doc["v"], doc["lu"], body.encode() if body is not None else None
    )


def _version(doc: dict[str, Any]) -> Stored:
    body = doc.get("body")
    return Stored(
        doc["t"],
        doc["rid"],
        doc["v"],
        doc["lu"],
        body.encode() if body is not None else None,
        doc["method"],
    )


def _read(res: Any, rtype: str, rid: str, session: Any) -> Stored | None:
    doc = res.find_one({"_id": f"{rtype}/{rid}"}, session=session)
    return _stored(doc) if doc else None


def _user(doc: dict[str, Any]) -> User:
    return User(
        doc["_id"],
        doc["role"],
        doc["token_hash"],
        doc["created"],
        tuple(doc.get("devices", [])),
        doc["active"],
        doc.get("jwks", ""),
        password_hash=doc.get("password_hash", ""),
    )


def _supports_transactions(client: Any) -> bool:
    """Multi-document transactions need a replica set or a sharded cluster."""
    try:
        hello = client.admin.command("hello")
    except Exception:  # mongomock and old servers: treat as standalone
        return False
    return bool(hello.get("setName") or hello.get("msg") == "isdbgrid")


# -- search ---------------------------------------------------------------------------------------


def _search(res: Any, query: Query, session: Any) -> tuple[list[Stored], int | None]:
    flt = _filter(res, query.rtype, query.clauses, session)
    total = res.count_documents(flt, session=session) if query.with_total else None
    if query.count == 0:
        return [], total
    cursor = (
        res.find(flt, session=session).sort(_sort(query.sort)).skip(query.offset).limit(query.count)
    )
    return [_stored(d) for d in cursor], total


def _filter(res: Any, rtype: str, clauses: tuple[Clause, ...], session: Any) -> dict[str, Any]:
    parts = [_clause(res, rtype, c, session) for c in clauses]
    flt: dict[str, Any] = {"t": rtype, "deleted": False}
    if parts:
        flt["$and"] = parts
    return flt


def _sort(keys: tuple[SortKey, ...]) -> list[tuple[str, int]]:
    spec: list[tuple[str, int]] = []
    for key in keys:
        direction = -1 if key.descending else 1
        if key.kind == "_id":
            spec.append(("rid", direction))
        elif key.kind == "_lastUpdated":
            spec.append(("lu", direction))
        else:
            spec.append((f"{'sd' if key.descending else 'sa'}.{key.param}", direction))
    spec.append(("_id", 1))
    return spec


def _clause(res: Any, rtype: str, c: Clause, session: Any) -> dict[str, Any]:
    if isinstance(c, TokenClause):
        match = _elem("tok", c.param, [_token(v, "c", "s") for v in c.values])
        return {"$nor": [match]} if c.negate else match
    if isinstance(c, StringClause):
        return _elem("str", c.param, [_string(v, c.mode) for v in c.values])
    if isinstance(c, DateClause):
        return _elem("dt", c.param, [_range(v, "lo", "hi") for v in c.values])
    if isinstance(c, QuantityClause):
        return _elem("q", c.param, [_quantity(v, "c", "s") for v in c.values])
    if isinstance(c, ReferenceClause):
        return _elem("ref", c.param, [{"t": {"$in": list(c.targets)}}])
    if isinstance(c, CompositeClause):
        return _elem(
            "cq",
            c.param,
            [{**_token(t, "c", "s"), **_quantity(q, "uc", "us")} for t, q in c.values],
        )
    if isinstance(c, MissingClause):
        field = f"ix.{_KIND[c.kind]}.p"
        return {field: {"$ne": c.param}} if c.missing else {field: c.param}
    if isinstance(c, ChainClause):
        inner = _filter(res, c.target_type, (c.inner,), session)
        targets = [
            f"{c.target_type}/{d['rid']}" for d in res.find(inner, {"rid": 1}, session=session)
        ]
        return _clause(res, rtype, ReferenceClause(c.param, tuple(targets)), session)
    if isinstance(c, IdClause):
        return {"rid": {"$in": list(c.ids)}}
    if isinstance(c, LastUpdatedClause):
        return {"$or": [_range(v, "lu", "lu") for v in c.values]}
    raise TypeError(f"unknown clause {c!r}")


def _elem(kind: str, param: str, alternatives: list[dict[str, Any]]) -> dict[str, Any]:
    cond: dict[str, Any] = {"p": param}
    if len(alternatives) == 1:
        cond.update(alternatives[0])
    else:
        cond["$or"] = alternatives
    return {f"ix.{kind}": {"$elemMatch": cond}}


def _token(v: TokenValue, code: str, system: str) -> dict[str, Any]:
    cond: dict[str, Any] = {}
    if v.code is not None:
        cond[code] = v.code
    if v.system is not None:
        cond[system] = v.system
    return cond


def _string(value: str, mode: str) -> dict[str, Any]:
    folded = fold(value)
    if mode == "exact":
        return {"n": folded, "e": value}
    if mode == "contains":
        return {"n": {"$regex": re.escape(folded)}}
    return {"n": {"$regex": "^" + re.escape(folded)}}


def _range(value: Range, low: str, high: str) -> dict[str, Any]:
    conds, negate = range_conditions(value)
    cond = _bounds(conds, {"low": low, "high": high})
    return {"$nor": [cond]} if negate else cond


def _bounds(conds: tuple[Bound, ...], fields: dict[str, str]) -> dict[str, Any]:
    out: dict[str, dict[str, float]] = {}
    for side, op, x in conds:
        out.setdefault(fields[side], {})[_OPS[op]] = x
    return out


def _quantity(q: QuantityValue, code: str, system: str) -> dict[str, Any]:
    if q.canonical_code is not None:
        return {"cc": q.canonical_code, **_range(q.range, "cv", "cv")}
    cond: dict[str, Any] = {}
    if q.code is not None:
        cond[code] = q.code
    if q.system is not None:
        cond[system] = q.system
    return {**cond, **_range(q.range, "v", "v")}
