"""Every way a resource can leave or enter Kerma, for every role, generated from what the
server publishes (the CapabilityStatement's types, interactions, includes and revincludes; the
GraphQL schema; the OpenAPI document and the URL map for the other routes) and checked against
the roles table read by the oracle of ways_out.py (issue 23). A new type, include, route or role
is tested without a change here; a route nobody classified fails the test that lists them.

Each test runs one way for one role over the whole world and lists every disagreement."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from server.auth.passwords import set_password
from server.reports.documents import REPORT_TYPE
from tests.auth.ways_out import SEEDS, TABLE, bound, leaks, may, seeds_of, visible, writable
from tests.conftest import Api
from tests.console.conftest import PASSWORD, csrf, sign_in

ROLES = sorted(TABLE)
Capability = dict[str, dict[str, Any]]


@pytest.fixture
def world(as_role: Any) -> Capability:
    """The seeded store; the CapabilityStatement's resources by type."""
    admin: Api = as_role("admin")
    for resource in SEEDS:
        url = f"/fhir/{resource['resourceType']}/{resource['id']}"
        assert admin.put(url, resource).status_code == 201, url
    statement = admin.get("/fhir/metadata").get_json()
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


def _types(world: Capability, interaction: str) -> list[str]:
    return [t for t, r in world.items() if {"code": interaction} in r.get("interaction", [])]


def _ids(bundle: dict[str, Any], mode: str = "match") -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == mode and "resource" in e
    }


def _refused(response: Any) -> bool:
    """403, with an OperationOutcome saying forbidden where the route speaks FHIR."""
    body = response.get_json(silent=True) or {}
    return response.status_code == 403 and (
        "issue" not in body or body["issue"][0]["code"] == "forbidden"
    )


class Findings(list[str]):
    """Disagreements with the roles table, one line each."""

    def check(self) -> None:
        assert not self, f"{len(self)} disagreements with the roles table:\n" + "\n".join(self)

    def search(
        self, role: str, url: str, response: Any, allowed: bool, ok: tuple[int, ...] = (200,)
    ) -> None:
        """A search the role may run answers `ok` (or refuses, where part of what it asks is
        the role's to see and part not); one it may not run is refused; none shows too much."""
        if allowed and response.status_code not in ok and not _refused(response):
            self.append(f"GET {url}: {response.status_code}")
        elif not allowed and not _refused(response):
            self.append(f"GET {url}: {response.status_code}, expected 403")
        self.leak(role, f"GET {url}", response.get_json())

    def leak(self, role: str, what: str, body: Any) -> None:
        for shown in leaks(role, body):
            self.append(f"{what}: shows {shown}")

    def status(self, what: str, response: Any, allowed: bool, ok: tuple[int, ...] = (200,)) -> bool:
        """Whether the answer is the one the table asks for: `ok` when allowed, else 403."""
        if allowed and response.status_code not in ok:
            self.append(
                f"{what}: {response.status_code}, expected {ok}: {response.get_data(as_text=True)[:200]}"
            )
        elif not allowed and not _refused(response):
            self.append(f"{what}: {response.status_code}, expected 403")
        return allowed and response.status_code in ok


@pytest.mark.parametrize("role", ROLES)
def test_reads(world: Capability, as_role: Any, role: str) -> None:
    api: Api = as_role(role)
    found = Findings()
    for r in SEEDS:
        rtype, rid = r["resourceType"], r["id"]
        for url in (f"/fhir/{rtype}/{rid}", f"/fhir/{rtype}/{rid}/_history/1"):
            response = api.get(url)
            if found.status(f"GET {url}", response, visible(role, rtype, rid)):
                assert response.get_json()["id"] == rid
            found.leak(role, f"GET {url}", response.get_json())
        response = api.get(f"/fhir/{rtype}/{rid}/$graphql?query=%7B%20id%20%7D")
        found.status(f"GET {rtype}/{rid}/$graphql", response, visible(role, rtype, rid))
        for url in (f"/fhir/{rtype}/$validate", f"/fhir/{rtype}/{rid}/$validate"):
            found.status(f"POST {url}", api.post(url, r), may(role, "read", rtype))
        response = api.get(f"/fhir/{rtype}/{rid}/_history")
        found.status(f"GET {rtype}/{rid}/_history", response, visible(role, rtype, rid))
        found.leak(role, f"GET {rtype}/{rid}/_history", response.get_json())
    found.check()


@pytest.mark.parametrize("role", ROLES)
def test_searches(world: Capability, as_role: Any, role: str) -> None:
    api: Api = as_role(role)
    found = Findings()
    for rtype in _types(world, "search-type"):
        expected = {f"{rtype}/{r['id']}" for r in seeds_of(rtype) if visible(role, rtype, r["id"])}
        ids = ",".join(r["id"] for r in seeds_of(rtype)) or "none"
        for how, response in (
            ("GET", api.get(f"/fhir/{rtype}")),
            ("GET _id", api.get(f"/fhir/{rtype}?_id={ids}")),
            ("POST _search", api.client.post(f"/fhir/{rtype}/_search", data={"_id": ids},
                                              headers=api.headers())),
            ("_summary=count", api.get(f"/fhir/{rtype}?_id={ids}&_summary=count")),
        ):  # fmt: skip
            what = f"{how} {rtype}"
            if found.status(what, response, may(role, "read", rtype)):
                bundle = response.get_json()
                if how == "_summary=count":
                    if bundle["total"] != len(expected):
                        found.append(f"{what}: total {bundle['total']}, expected {len(expected)}")
                elif rtype != "AuditEvent" and _ids(bundle) != expected:
                    found.append(f"{what}: {sorted(_ids(bundle))}, expected {sorted(expected)}")
            found.leak(role, what, response.get_json())
    found.check()


@pytest.mark.parametrize("role", ROLES)
def test_histories(world: Capability, as_role: Any, role: str) -> None:
    """Type and system history: refused, or only what the role may see."""
    api: Api = as_role(role)
    found = Findings()
    for url in [
        "/fhir/_history",
        *(f"/fhir/{rtype}/_history" for rtype in _types(world, "history-type")),
    ]:
        rtype = url.split("/")[2]
        allowed = may(role, "read", rtype) or (rtype == "_history" and may(role, "read", "Patient"))
        found.search(role, url, api.get(url), allowed)
    found.check()


def _includes(world: Capability, key: str) -> list[tuple[str, str]]:
    """(the type searched, the include) for every include the CapabilityStatement offers."""
    return [(rtype, include) for rtype, r in world.items() for include in r.get(key) or []]


@pytest.mark.parametrize("role", ROLES)
def test_includes_and_revincludes(world: Capability, as_role: Any, role: str) -> None:
    api: Api = as_role(role)
    found = Findings()
    for key, param in (("searchInclude", "_include"), ("searchRevInclude", "_revinclude")):
        for rtype, include in _includes(world, key):
            for name in (param, f"{param}:iterate"):
                url = f"/fhir/{rtype}?{name}={include}"
                other = include.split(":")[0]
                allowed = may(role, "read", rtype) and (
                    key == "searchInclude" or may(role, "read", other)
                )
                found.search(role, url, api.get(url), allowed)
    found.check()


def _passages(world: Capability) -> list[tuple[str, str, str]]:
    """(source, reference parameter, target) for every reference the server can follow: the
    revincludes of each target type."""
    return [
        (source, param, target)
        for target, include in _includes(world, "searchRevInclude")
        for source, param in [include.split(":")[:2]]
    ]


def _passable(role: str, rtype: str) -> bool:
    """Whether a chain may test values of `rtype`: all of them must be visible to the role."""
    return may(role, "read", rtype) and all(visible(role, rtype, r["id"]) for r in seeds_of(rtype))


@pytest.mark.parametrize("role", ROLES)
def test_chains_and_reverse_chains(world: Capability, as_role: Any, role: str) -> None:
    api: Api = as_role(role)
    found = Findings()
    for source, param, target in _passages(world):
        for searched, through, url in (
            (source, target, f"/fhir/{source}?{param}:{target}._id=x"),
            (target, source, f"/fhir/{target}?_has:{source}:{param}:_id=x"),
        ):
            response = api.get(url)
            if _ignored(response, url.split("?")[1].split("=")[0]):
                continue  # not a search the server runs: it can test nothing
            allowed = may(role, "read", searched) and _passable(role, through)
            found.search(role, url, response, allowed, (200, 400))  # 400: no such target
    found.check()


def _ignored(response: Any, param: str) -> bool:
    """Whether the server answered that it ignored the search parameter (FHIR's lenient
    handling of parameters it does not support)."""
    return response.status_code == 200 and any(
        param in issue.get("diagnostics", "")
        for e in response.get_json().get("entry", [])
        if e.get("search", {}).get("mode") == "outcome"
        for issue in e["resource"]["issue"]
    )


def _batch(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


@pytest.mark.parametrize("role", ROLES)
def test_batch_reads(world: Capability, as_role: Any, role: str) -> None:
    api: Api = as_role(role)
    found = Findings()
    reads = [f"{r['resourceType']}/{r['id']}" for r in SEEDS]
    searches = [
        f"{rtype}?_id={','.join(r['id'] for r in seeds_of(rtype))}"
        for rtype in _types(world, "search-type")
        if seeds_of(rtype)
    ]
    bundle = _batch(
        "batch", [{"request": {"method": "GET", "url": url}} for url in reads + searches]
    )
    response = api.post("/fhir", bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    found.leak(role, "batch", response.get_json())
    for url, entry in zip(reads + searches, response.get_json()["entry"], strict=True):
        rtype, _, rest = url.partition("/") if "?" not in url else url.partition("?")
        allowed = visible(role, rtype, rest) if "?" not in url else may(role, "read", rtype)
        status = entry["response"]["status"].split()[0]
        if allowed != (status == "200"):
            found.append(f"batch GET {url}: {status}, allowed={allowed}")
    found.check()


def _without_id(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "id"}


@pytest.mark.parametrize("role", ROLES)
def test_writes(world: Capability, as_role: Any, role: str) -> None:
    """Update (PUT the stored content again), create, patch and delete, directly and inside a
    batch and a transaction: allowed where the table lets the role write the type (and, for
    a role bound to its devices, the resource is on one of them)."""
    api: Api = as_role(role)
    admin: Api = as_role("admin")
    found = Findings()
    for r in SEEDS:
        rtype, rid = r["resourceType"], r["id"]
        url = f"/fhir/{rtype}/{rid}"
        allowed = writable(role, r)
        found.status(f"PUT {url}", api.put(url, r), allowed)
        patch = [{"op": "test", "path": "/id", "value": rid}]
        found.status(
            f"PATCH {url}",
            api.send("PATCH", url, patch, **{"Content-Type": "application/json-patch+json"}),
            allowed,
        )
        put = {"resource": r, "request": {"method": "PUT", "url": f"{rtype}/{rid}"}}
        found.status(
            f"transaction PUT {url}", api.post("/fhir", _batch("transaction", [put])), allowed
        )
        answer = api.post("/fhir", _batch("batch", [put]))
        status = answer.get_json()["entry"][0]["response"]["status"].split()[0]
        if (status == "200") != allowed:
            found.append(f"batch PUT {url}: {status}, allowed={allowed}")
        copy = {**r, "id": f"copy-{rid}"}
        assert admin.put(f"/fhir/{rtype}/copy-{rid}", copy).status_code == 201
        deletable = allowed and may(role, "delete", rtype)
        found.status(
            f"DELETE {rtype}/copy-{rid}",
            api.delete(f"/fhir/{rtype}/copy-{rid}"),
            deletable,
            (200, 204),
        )
        found.status(f"PUT {rtype}?_id={rid}", api.put(f"/fhir/{rtype}?_id={rid}", r), allowed)
        assert admin.put(f"/fhir/{rtype}/copy-{rid}", copy).status_code in (200, 201)
        api.delete(f"/fhir/{rtype}?_id=copy-{rid}")  # conditional: deletes what the role may
        if (admin.get(f"/fhir/{rtype}/copy-{rid}").status_code == 200) == deletable:
            found.append(
                f"DELETE {rtype}?_id=copy-{rid}: deleted={not deletable}, allowed={deletable}"
            )
        fresh = api.post(f"/fhir/{rtype}", _without_id(r))
        may_create = may(role, "write", rtype) and (
            rtype not in ("Observation", "DetectedIssue") or allowed
        )
        found.status(f"POST {rtype}", fresh, may_create, (201,))
    found.check()


def _graphql(api: Api, query: str) -> dict[str, Any]:
    response = api.send(
        "POST", "/fhir/$graphql", {"query": query}, **{"Content-Type": "application/json"}
    )
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def _shown_in_graphql(node: Any) -> list[tuple[str, str]]:
    """(type, id) of every resource a GraphQL answer carries (selected with __typename)."""
    if isinstance(node, list):
        return [shown for item in node for shown in _shown_in_graphql(item)]
    if not isinstance(node, dict):
        return []
    here = [(node["__typename"], node["id"])] if "__typename" in node and "id" in node else []
    return here + _shown_in_graphql(list(node.values()))


def _forbidden(answer: dict[str, Any]) -> bool:
    return any(
        issue["code"] == "forbidden"
        for error in answer.get("errors", [])
        for issue in error.get("extensions", {}).get("resource", {}).get("issue", [])
    )


def _reference_selection(node: Any, ids: str) -> str:
    """A GraphQL selection following every reference of a resource's JSON to its resource."""
    if isinstance(node, list):
        return " ".join(_reference_selection(item, ids) for item in node)
    if not isinstance(node, dict):
        return ""
    if "reference" in node:
        return f"resource(optional: true) {{ {ids} }}"
    fields = ((key, _reference_selection(value, ids)) for key, value in node.items())
    return " ".join(f"{key} {{ {selection} }}" for key, selection in fields if selection.strip())


class GraphqlFindings(Findings):
    def shown(self, role: str, what: str, answer: dict[str, Any]) -> set[str]:
        shown = {f"{t}/{i}" for t, i in _shown_in_graphql(answer.get("data"))}
        for hidden in sorted(s for s in shown if not visible(role, *s.split("/"))):
            self.append(f"{what}: shows {hidden}")
        return shown

    def refused(self, what: str, answer: dict[str, Any], allowed: bool) -> None:
        if not allowed and not _forbidden(answer):
            self.append(f"{what}: not refused: {str(answer)[:200]}")
        elif allowed and answer.get("errors"):
            self.append(f"{what}: {answer['errors'][0]['message'][:200]}")


@pytest.mark.parametrize("role", ROLES)
def test_graphql(world: Capability, as_role: Any, role: str) -> None:
    """Every type's read and list fields, every reference of every resource the role may
    see (`resource`), and every reverse list (`<Type>List(_reference:)`) on it."""
    api: Api = as_role(role)
    found = GraphqlFindings()
    types = [t for t in _types(world, "read") if t != "OperationDefinition"]
    ids, any_ids = "__typename id", "__typename " + " ".join(f"... on {t} {{ id }}" for t in types)
    for rtype in types:
        answer = _graphql(api, f"{{ {rtype}List {{ {ids} }} }}")
        shown = found.shown(role, f"{rtype}List", answer)
        found.refused(f"{rtype}List", answer, may(role, "read", rtype))
        expected = {f"{rtype}/{r['id']}" for r in seeds_of(rtype) if visible(role, rtype, r["id"])}
        if rtype != "AuditEvent" and may(role, "read", rtype) and shown != expected:
            found.append(f"{rtype}List: {sorted(shown)}, expected {sorted(expected)}")
    for r in SEEDS:
        rtype, rid = r["resourceType"], r["id"]
        what = f"{rtype}(id: {rid})"
        answer = _graphql(api, f'{{ {rtype}(id: "{rid}") {{ {ids} }} }}')
        found.shown(role, what, answer)
        found.refused(what, answer, visible(role, rtype, rid))
        if not visible(role, rtype, rid):
            continue
        follow = _reference_selection(
            {k: v for k, v in r.items() if k not in ("id", "resourceType")}, any_ids
        )
        if follow:
            found.shown(
                role,
                f"{what} references",
                _graphql(api, f'{{ {rtype}(id: "{rid}") {{ {follow} }} }}'),
            )
        for include in world[rtype].get("searchRevInclude") or []:
            source, param = include.split(":")
            field = f"{source}List(_reference: {param.replace('-', '_')}) {{ {ids} }}"
            answer = _graphql(api, f'{{ {rtype}(id: "{rid}") {{ {field} }} }}')
            found.shown(role, f"{what} {source}List({param})", answer)
            found.refused(f"{what} {source}List({param})", answer, may(role, "read", source))
    found.check()


# Routes beyond the FHIR types' own interactions, each with a request and who may use it, in the
# roles table's words. An OpenAPI operation or console route missing here fails
# test_every_route_is_classified: whoever adds one says here who may use it.
Rule = Callable[[str], bool]


def reads(*types: str) -> Rule:
    return lambda role: all(may(role, "read", t) for t in types)


def runs(operation: str) -> Rule:
    return lambda role: operation in TABLE[role].get("operations", [])


def every_device(rule: Rule) -> Rule:
    """For what sums over every device (site-wide reports, a patient's cumulative dose)."""
    return lambda role: rule(role) and not bound(role)


def sees(rtype: str, rid: str) -> Rule:
    return lambda role: visible(role, rtype, rid)


def acknowledges(issue: dict[str, Any]) -> Rule:
    return lambda role: runs("acknowledge")(role) and writable(role, issue)


def both(*rules: Rule) -> Rule:
    return lambda role: all(rule(role) for rule in rules)


ANYONE: Rule = lambda role: True  # noqa: E731 (every authenticated user)
MANAGES_USERS: Rule = lambda role: bool(TABLE[role].get("manage_users"))  # noqa: E731
BULK: Rule = lambda role: TABLE[role].get("bulk_export", "none") != "none"  # noqa: E731
STATS = reads("MeasureReport")  # the statistics are MeasureReports
ISSUES = {r["id"]: r for r in seeds_of("DetectedIssue")}
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}

# (method, OpenAPI path, request URL, rule, statuses when allowed)
ROUTES: list[tuple[str, str, str, Rule, tuple[int, ...]]] = [
    ("GET", "/metrics", "/metrics", ANYONE, (200,)),
    ("GET", "/stats/dose", "/stats/dose?quantity=dlp_mgy_cm", STATS, (200,)),
    ("GET", "/stats/load", "/stats/load?quantity=dlp_mgy_cm&group=weekday", STATS, (200,)),
    ("GET", "/stats/drl-proposal", "/stats/drl-proposal?quantity=dlp_mgy_cm", STATS, (200,)),
    ("GET", "/stats/charts/{kind}.svg", "/stats/charts/timeline.svg?quantity=dlp_mgy_cm", STATS, (200,)),
    ("GET", "/stats/devices", "/stats/devices", STATS, (200,)),
    ("GET", "/stats/above-levels", "/stats/above-levels", both(STATS, reads("DetectedIssue")), (200,)),
    ("GET", "/stats/cumulative", "/stats/cumulative?patient=Patient/pat-1",
     every_device(both(STATS, reads("Observation"))), (200,)),
    ("GET", "/stats/export/{level}.{fmt}", "/stats/export/study.csv", both(STATS, reads("Observation")), (200,)),
    ("POST", "/stats/export/{level}.{fmt}", "/stats/export/study.csv", both(STATS, reads("Observation")), (202,)),
    ("GET", "/stats/survey.{fmt}", "/stats/survey.json", every_device(STATS), (200,)),
    ("GET", "/stats/survey/{name}.csv", "/stats/survey/nhsbsp.csv", every_device(STATS), (200,)),
    ("POST", "/stats/reports/{kind}", "/stats/reports/survey", every_device(STATS), (202,)),
    ("POST", "/stats/reports/{kind}", "/stats/reports/department",
     every_device(both(STATS, reads("DetectedIssue"))), (202,)),
    ("GET", "/stats/reports/{id}.{fmt}", "/stats/reports/report-survey.pdf", every_device(STATS), (200,)),
    ("GET", "/stats/reports/{id}.{fmt}", "/stats/reports/report-department.pdf",
     every_device(both(STATS, reads("DetectedIssue"))), (200,)),
    ("GET", "/fhir/$export", "/fhir/$export", BULK, (202,)),
    ("GET", "/fhir/Patient/$export", "/fhir/Patient/$export", BULK, (202,)),
    ("GET", "/fhir/Group/{id}/$export", "/fhir/Group/grp-1/$export", BULK, (202,)),
    ("GET", "/fhir/Patient/{id}/$everything", "/fhir/Patient/pat-2/$everything", reads("Patient"), (200,)),
    ("POST", "/fhir/Patient/{id}/$unmerge", "/fhir/Patient/pat-1/$unmerge", runs("unmerge"), (409,)),
    *(("GET", "/fhir/Observation/{id}/$skin-dose-map", f"/fhir/Observation/{rid}/$skin-dose-map",
       sees("Observation", rid), (404,)) for rid in ("obs-a", "obs-b")),
    ("POST", "/fhir/ImagingStudy/{id}/$reassign", "/fhir/ImagingStudy/study-1/$reassign", runs("reassign"), (400,)),
    ("POST", "/fhir/ImagingStudy/$reclassify", "/fhir/ImagingStudy/$reclassify", runs("reclassify"), (202,)),
    ("POST", "/fhir/ImagingStudy/{id}/$mark-qa", "/fhir/ImagingStudy/study-1/$mark-qa", runs("mark-qa"), (200,)),
    ("GET", "/fhir/Measure/{id}/$evaluate-measure", "/fhir/Measure/meas-1/$evaluate-measure",
     reads("MeasureReport"), (404,)),
    ("POST", "/fhir/Task/{id}/$retry", "/fhir/Task/task-1/$retry", runs("retry"), (202, 409)),
    *(("POST", "/fhir/DetectedIssue/{id}/$acknowledge", f"/fhir/DetectedIssue/{rid}/$acknowledge",
       acknowledges(issue), (200,)) for rid, issue in ISSUES.items()),
    ("GET", "/fhir/List/$reconcile", "/fhir/List/$reconcile?kind=orders-without-dose",
     reads("ImagingStudy", "ServiceRequest", "Patient"), (200,)),
    ("GET", "/fhir/List/$protocol-review", "/fhir/List/$protocol-review?kind=across-devices", reads("Device"), (200,)),
    ("GET", "/fhir/$graphql", "/fhir/$graphql?query={__typename}", ANYONE, (200,)),
    ("POST", "/fhir/$graphql", "/fhir/$graphql", ANYONE, (200,)),
]  # fmt: skip
# the export of another user: its requester (mpe here) and who manages users only
EXPORT_ROUTES = [("GET", "/fhir/$export-status/{id}"), ("DELETE", "/fhir/$export-status/{id}"),
                 ("GET", "/fhir/$export-file/{id}/{name}")]  # fmt: skip
# the console's pages (a signed-in session): (method, rule of the URL map, request URL, rule)
CONSOLE: list[tuple[str, str, str, Rule]] = [
    ("GET", "/", "/", ANYONE),
    ("GET", "/studies", "/studies", reads("Observation")),
    ("GET", "/studies/export.<fmt>", "/studies/export.csv", reads("Observation")),
    # a study is a bound role's when its dose facts are from their devices; the world's
    # Observations are no dose summaries, so a bound role has none
    ("GET", "/studies/<rid>", "/studies/study-1", every_device(reads("Observation"))),
    ("POST", "/studies/<rid>/mark-qa", "/studies/study-1/mark-qa", runs("mark-qa")),
    ("GET", "/alerts", "/alerts", reads("DetectedIssue")),
    *(("GET", "/alerts/<rid>", f"/alerts/{rid}", sees("DetectedIssue", rid)) for rid in ISSUES),
    *(("POST", "/alerts/<rid>/acknowledge", f"/alerts/{rid}/acknowledge", acknowledges(issue))
      for rid, issue in ISSUES.items()),
    ("GET", "/analysis", "/analysis", STATS),
    ("GET", "/analysis/<kind>.svg", "/analysis/timeline.svg", STATS),
    ("GET", "/classification", "/classification", reads("Library", "ImagingStudy")),
    ("GET", "/classification/preview", "/classification/preview", reads("ImagingStudy")),
    *(("POST", rule, rule.replace("<rule_id>", "r1"), lambda role: may(role, "write", "Library") and runs("reclassify")(role))
      for rule in ("/classification/map", "/classification/rules", "/classification/rules/<rule_id>/delete",
                   "/classification/reapply")),
    ("GET", "/reports", "/reports", reads("DocumentReference")),
    ("POST", "/reports", "/reports", every_device(STATS)),  # as POST /stats/reports/<kind>
    ("GET", "/reports/<rid>.<fmt>", "/reports/report-survey.pdf", every_device(reads("DocumentReference"))),
    ("GET", "/setup/devices", "/setup/devices", reads("Device")),
    ("POST", "/setup/devices/<rid>", "/setup/devices/dev-a", lambda role: may(role, "write", "Device")),
    ("POST", "/setup/devices/<rid>/table", "/setup/devices/dev-a/table", lambda role: may(role, "write", "Device")),
    ("GET", "/setup/levels", "/setup/levels", reads("ObservationDefinition")),
    ("POST", "/setup/levels/sets", "/setup/levels/sets", lambda role: may(role, "write", "Library")),
    ("POST", "/setup/levels", "/setup/levels", lambda role: may(role, "write", "ObservationDefinition")),
    ("GET", "/setup/users", "/setup/users", MANAGES_USERS),
    ("POST", "/setup/users", "/setup/users", MANAGES_USERS),
    ("POST", "/setup/users/<name>/revoke", "/setup/users/nobody/revoke", MANAGES_USERS),
    ("GET", "/setup/alerts", "/setup/alerts", reads("Subscription")),
    ("POST", "/setup/alerts/sets", "/setup/alerts/sets", lambda role: may(role, "write", "Library")),
    ("POST", "/setup/alerts/routes", "/setup/alerts/routes", lambda role: may(role, "write", "Subscription")),
    ("POST", "/setup/alerts/routes/<rid>/delete", "/setup/alerts/routes/sub-1/delete",
     lambda role: may(role, "delete", "Subscription")),
    ("GET", "/setup/messages", "/setup/messages", reads("Communication")),
    ("POST", "/setup/messages/<rid>/again", "/setup/messages/com-1/again", lambda role: may(role, "write", "Communication")),
    *(("GET", rule, rule.replace("<rid>", obs).replace("<fmt>", "png"), sees("Observation", obs))
      for rule in ("/skin-dose-maps/<rid>", "/skin-dose-maps/<rid>.<fmt>") for obs in ("obs-a", "obs-b")),
    *(("GET", "/resources/<rtype>/<rid>", f"/resources/{r['resourceType']}/{r['id']}",
       sees(r["resourceType"], r["id"])) for r in SEEDS),
]  # fmt: skip
# open to everyone, or the console's own (signing in, its static files, the API's docs)
PUBLIC = {"/health", "/health/live", "/health/ready", "/openapi.json", "/fhir/metadata", "/assets/{name}",
          "/fhir/OperationDefinition/{id}", "/.well-known/smart-configuration", "/auth/token",
          "/fhir/.well-known/smart-configuration", "/sign-in", "/sign-out", "/static/<path:filename>",
          "/console-static/<path:filename>", "/docs", "/docs/", "/docs/openapi.json",
          "/docs/static/<path:filename>"}  # fmt: skip

# batches, transactions and the system history: test_batch_reads, test_writes, test_histories
COVERED = {"/fhir", "/fhir/", "/fhir/_history"}


def _type_route(path: str, types: set[str]) -> bool:
    """A FHIR type's own interaction (read, search, history, $validate, $graphql...): the tests
    above generate those from the CapabilityStatement."""
    parts = path.split("/")
    return len(parts) > 2 and parts[1] == "fhir" and parts[2] in types and (
        len(parts) == 3 or parts[3] in ("_search", "_history", "{id}", "$validate"))  # fmt: skip


def _shape(path: str) -> str:
    """A route without the names of its parameters: /a/{id} and /a/<rid> are one route."""
    return re.sub(r"[{<][^}>]*[}>]", "{}", path)


def test_every_route_is_classified(world: Capability, app: Any) -> None:
    document = app.test_client().get("/openapi.json").get_json()
    classified = (
        {(m, p) for m, p, *_ in ROUTES} | set(EXPORT_ROUTES) | {(m, p) for m, p, *_ in CONSOLE}
    )
    unknown = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "delete", "patch")
        and (method.upper(), path) not in classified
        and path not in PUBLIC
        and path not in COVERED
        and not _type_route(path, set(world))
    ]
    documented = {_shape(p) for p in document["paths"]} | {_shape(p) for p in PUBLIC}
    console = {_shape(p) for _, p, *_ in CONSOLE}
    unknown += [
        f"{sorted(rule.methods or ())} {rule.rule}"
        for rule in app.url_map.iter_rules()
        if _shape(rule.rule) not in documented | console | COVERED and "<rtype>" not in rule.rule
    ]
    assert unknown == [], "say in ROUTES or CONSOLE who may use these"


@pytest.fixture
def reports_and_export(world: Capability, as_role: Any) -> Iterator[str]:
    """A kept survey and department report, and the status URL of an export the mpe asked for;
    the jobs the routes start are waited for before the store closes."""
    admin: Api = as_role("admin")
    for kind in ("survey", "department"):
        document = {"resourceType": "DocumentReference", "id": f"report-{kind}", "status": "current",
                    "type": {"coding": [{"system": REPORT_TYPE, "code": kind}]},
                    "content": [{"attachment": {"contentType": "application/pdf", "data": "JVBERi0="}}]}  # fmt: skip
        assert admin.put(f"/fhir/DocumentReference/report-{kind}", document).status_code == 201
    started = as_role("mpe").get("/fhir/$export", **ASYNC)
    assert started.status_code == 202, started.get_data(as_text=True)
    yield str(started.headers["Content-Location"].split("/fhir", 1)[1])
    for thread in threading.enumerate():
        if thread.name == "kerma-job":
            thread.join(120)


@pytest.mark.parametrize("role", ROLES)
def test_routes(reports_and_export: str, as_role: Any, client: Any, role: str) -> None:
    """Every classified route, for the role and without a token (401)."""
    api: Api = as_role(role)
    found = Findings()
    for method, _, url, rule, ok in ROUTES:
        send = (
            api.send
            if method == "POST"
            else lambda m, u, b, **h: api.client.open(u, method=m, headers=api.headers(h))
        )
        body = {"query": "{ __typename }"} if "graphql" in url else {"resourceType": "Parameters"}
        headers = {"Content-Type": "application/json"} if "graphql" in url else {}
        response = send(method, url, body, **headers, **(ASYNC if "$export" in url else {}))
        found.status(f"{method} {url}", response, rule(role), ok)
        if response.status_code == 200 and response.headers.get("Content-Type", "").endswith(
            "json"
        ):
            found.leak(
                role, f"{method} {url}", response.get_json()
            )  # (202: the request's own Task)
        if client.open(url, method=method).status_code != 401:
            found.append(f"{method} {url} without a token: not 401")
    status = f"/fhir{reports_and_export}"
    owner = role == "mpe" or MANAGES_USERS(role)
    found.status(f"GET {status}", api.get(status), owner, (200, 202))
    found.check()


@pytest.mark.parametrize("role", ROLES)
def test_console(reports_and_export: str, app: Any, store: Any, role: str) -> None:
    """Every console page and form, signed in as a person of the role."""
    set_password(store, f"{role}-user", PASSWORD)
    browser = app.test_client()
    assert sign_in(browser, f"{role}-user").status_code in (302, 303)
    token = csrf(browser.get("/").get_data(as_text=True))
    found = Findings()
    for method, _, url, rule in CONSOLE:
        response = browser.open(
            url, method=method, data={"csrf_token": token} if method == "POST" else None
        )
        allowed, status = rule(role), response.status_code
        if allowed and (
            status in (401, 403)
            or status >= 500
            or "/sign-in" in response.headers.get("Location", "")
        ):
            found.append(f"{method} {url}: {status}, expected an answer")
        elif not allowed and status != 403:
            found.append(f"{method} {url}: {status}, expected 403")
    found.check()
