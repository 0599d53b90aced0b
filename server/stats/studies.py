"""The examinations as a table: the console's studies page and its CSV/XLSX export. The study
rows of the dose facts are filtered, sorted and paged on the columnar copy (a page over
100,000 studies costs milliseconds); only the page's rows are then looked up in the store
(their ImagingStudy, patient ID and alerts), each kind in one search."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from server.fhir.gate import Gate
from server.fhir.service import FhirService, body_of
from server.stats.columns import Columns, key_of
from server.stats.service import Query, Statistics

# the dose columns of the table, in its order, with how people call them
DOSES = {"ctdivol_mgy": "CTDIvol", "dlp_mgy_cm": "DLP", "dap_gy_m2": "DAP",
         "dose_rp_gy": "Ka,r", "agd_mgy": "AGD"}  # fmt: skip
WORDS = ("modality", "device", "procedure")
SORTS = ("date", *WORDS, *DOSES)
_UID_SYSTEM = "urn:dicom:uid"


@dataclass(frozen=True)
class Listing:
    """Which examinations, in which order, which page."""

    query: Query  # the period, modality, device, procedure and the user's devices
    dose: str = ""  # a field of DOSES to bound by [low, high]
    low: float | None = None
    high: float | None = None
    patients: tuple[str, ...] | None = None  # "Patient/<id>"s; None: every patient
    studies: frozenset[str] | None = None  # Study Instance UIDs; None: every study
    exclude: frozenset[str] = frozenset()  # Study Instance UIDs left out
    sort: str = "date"
    descending: bool = True
    offset: int = 0
    count: int = 50


@dataclass(frozen=True)
class StudyRow:
    study_uid: str
    date: float  # epoch seconds
    modality: str
    device: str
    device_name: str
    procedure: str
    patient: str  # "Patient/<id>" or ""
    doses: dict[str, float]  # field -> value, for the fields the study has
    study: str = ""  # "ImagingStudy/<id>"
    patient_id: str = ""  # the identifier people know the patient by
    alerts: dict[str, int] = field(default_factory=dict)  # status -> how many


@dataclass(frozen=True)
class StudyPage:
    rows: list[StudyRow]
    total: int


def studies(stats: Statistics, listing: Listing) -> StudyPage:
    """The page of study rows the listing asks for, and how many match in all."""
    if listing.sort not in SORTS or (listing.dose and listing.dose not in DOSES):
        raise ValueError(f"sort by one of {', '.join(SORTS)}; bound one of {', '.join(DOSES)}")
    columns, labels, keep = stats.select(replace(listing.query, level="study", qa=True))
    keep = keep & _bounded(columns, listing)
    keep &= _among(columns["patient"], listing.patients)
    keep &= _among(columns["study_uid"], listing.studies)
    if listing.exclude:
        keep &= ~_among(columns["study_uid"], listing.exclude)
    chosen = np.flatnonzero(keep)
    order = _order(columns, labels, chosen, listing.sort, listing.descending)
    page = chosen[order][listing.offset : listing.offset + listing.count]
    return StudyPage([_row(stats, columns, labels, int(i)) for i in page], int(chosen.size))


def every_study(stats: Statistics, listing: Listing) -> list[StudyRow]:
    """All rows of the listing, in its order (exports of the current filter)."""
    everything = replace(listing, offset=0, count=10**9)
    return studies(stats, everything).rows


def _bounded(columns: Columns, listing: Listing) -> npt.NDArray[np.bool_]:
    if not listing.dose:
        return np.ones(columns["date"].size, dtype=bool)
    values = columns[listing.dose]
    low = -math.inf if listing.low is None else listing.low
    high = math.inf if listing.high is None else listing.high
    return (values >= low) & (values <= high)  # NaN (no value) is in no range


def _among(
    keys: npt.NDArray[np.int64], wanted: Sequence[str] | frozenset[str] | None
) -> npt.NDArray[np.bool_]:
    if wanted is None:
        return np.ones(keys.size, dtype=bool)
    return np.isin(keys, [key_of(w) for w in wanted])


def _order(
    columns: Columns,
    labels: dict[str, list[str | None]],
    chosen: npt.NDArray[np.intp],
    sort: str,
    descending: bool,
) -> npt.NDArray[np.intp]:
    """Rows in the order asked for, the newest first among equals; missing values last."""
    if sort in WORDS:
        words = labels[sort]
        rank = np.argsort(np.argsort(np.array([(w or "").lower() for w in words], dtype=object)))
        key = (
            rank[columns[sort][chosen]].astype(np.float64) if len(words) else np.zeros(chosen.size)
        )
        missing = np.array([words[c] is None for c in columns[sort][chosen]], dtype=bool)
    else:
        key = columns[sort][chosen].astype(np.float64)
        missing = np.isnan(key)
    key = np.where(missing, 0.0, -key if descending else key)
    # lexsort: the last key is the primary one
    return np.lexsort((-columns["date"][chosen], key, missing))


def _row(
    stats: Statistics,
    columns: Columns,
    labels: dict[str, list[str | None]],
    i: int,
) -> StudyRow:
    def word(name: str) -> str:
        return labels[name][int(columns[name][i])] or ""

    doses = {n: float(columns[n][i]) for n in DOSES if not math.isnan(columns[n][i])}
    device = word("device")

    def text(name: str) -> str:
        return bytes(columns[f"{name}_text"][i]).decode()

    return StudyRow(text("study_uid"), float(columns["date"][i]), word("modality"), device,
                    stats.device_name(device) if device else "", word("procedure"),
                    text("patient"), doses)  # fmt: skip


def with_links(
    service: FhirService, gate: Gate, rows: list[StudyRow], patient_ids: bool
) -> list[StudyRow]:
    """The rows with their ImagingStudy, alerts by status and (`patient_ids`) the patient ID."""
    if not rows:
        return rows
    studies = _by_uid(service, gate, [r.study_uid for r in rows])
    alerts = _alerts(service, gate, [s for s in studies.values()])
    ids = _patient_ids(service, gate, [r.patient for r in rows if r.patient]) if patient_ids else {}
    return [replace(r, study=studies.get(r.study_uid, ""), patient_id=ids.get(r.patient, ""),
                    alerts=alerts.get(studies.get(r.study_uid, ""), {})) for r in rows]  # fmt: skip


def _by_uid(service: FhirService, gate: Gate, uids: list[str]) -> dict[str, str]:
    value = ",".join(f"{_UID_SYSTEM}|urn:oid:{uid}" for uid in uids)
    found = {}
    for stored in service.all_in(service.store, "ImagingStudy", [("identifier", value)], gate=gate):
        for identifier in body_of(stored).get("identifier", []):
            if identifier.get("system") == _UID_SYSTEM:
                found[identifier["value"].removeprefix("urn:oid:")] = f"ImagingStudy/{stored.rid}"
    return found


def _alerts(service: FhirService, gate: Gate, studies: list[str]) -> dict[str, dict[str, int]]:
    if not studies:
        return {}
    pairs = [("implicated", ",".join(studies))]
    counts: dict[str, dict[str, int]] = {}
    for stored in service.all_in(service.store, "DetectedIssue", pairs, gate=gate):
        issue = body_of(stored)
        for ref in (i.get("reference", "") for i in issue.get("implicated", [])):
            if ref in studies:
                mine = counts.setdefault(ref, {})
                mine[issue["status"]] = mine.get(issue["status"], 0) + 1
    return counts


def _patient_ids(service: FhirService, gate: Gate, patients: list[str]) -> dict[str, str]:
    ids = ",".join(dict.fromkeys(p.removeprefix("Patient/") for p in patients))
    found = {}
    for stored in service.all_in(service.store, "Patient", [("_id", ids)], gate=gate):
        identifiers = body_of(stored).get("identifier", [])
        found[f"Patient/{stored.rid}"] = identifiers[0].get("value", "") if identifiers else ""
    return found


class StudyUids:
    """ImagingStudy id -> Study Instance UID, remembered (a study keeps its UID): filtering by
    alert state otherwise reads every implicated ImagingStudy on every page (5,000 open alerts:
    a quarter of a second)."""

    def __init__(self, size: int = 500_000) -> None:
        self._known: dict[str, str] = {}
        self._size = size

    def of(self, service: FhirService, gate: Gate, ids: Sequence[str]) -> set[str]:
        missing = [i for i in dict.fromkeys(ids) if i not in self._known]
        if len(self._known) + len(missing) > self._size:
            self._known = {}  # a bound, not an eviction policy: it fills again as pages ask
        for start in range(0, len(missing), 500):
            chunk = ",".join(missing[start : start + 500])
            for stored in service.all_in(
                service.store, "ImagingStudy", [("_id", chunk)], gate=gate
            ):
                uid = next((i["value"].removeprefix("urn:oid:") for i in body_of(stored).get("identifier", [])
                            if i.get("system") == _UID_SYSTEM), None)  # fmt: skip
                if uid:
                    self._known[stored.rid] = uid
        return {self._known[i] for i in ids if i in self._known}


def studies_with_alerts(
    service: FhirService, gate: Gate, status: str, uids: StudyUids
) -> frozenset[str]:
    """The Study Instance UIDs of the studies with alerts of this status (any: "")."""
    pairs = [("status", status)] if status else []
    refs = {i.get("reference", "") for s in service.all_in(service.store, "DetectedIssue", pairs,
                                                           gate=gate, limit=100_000)
            for i in body_of(s).get("implicated", [])}  # fmt: skip
    ids = [r.removeprefix("ImagingStudy/") for r in refs if r.startswith("ImagingStudy/")]
    return frozenset(uids.of(service, gate, ids))
