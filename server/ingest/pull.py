"""Pull dose objects from a PACS: which studies, which of their objects, what is here already.

Per study: its dose reports (RDSR) when the PACS has them; otherwise Enhanced/Comprehensive SRs
(some devices write dose there), dose screens (for OCR), every projection image (each is an
exposure, its header the dose) and the first and last image of each CT series (CTDIvol and the
scan range from their headers). A study whose dose summary came from an RDSR is complete and
skipped; so is a study pulled before whose PACS instance count has not changed since. That
count is kept per study in data_dir/pacs/pulled.json after each study, so an interrupted pull
resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson

from server.config import Settings
from server.dicom.pacs import Pacs, PacsConfig, SeriesHit, StudyHit
from server.dicom.screens import is_dose_screen_series
from server.fhir import FhirService
from server.fhir.mapping import SOURCE_TAG
from server.files import write_durably

RDSR_CLASSES = ("1.2.840.10008.5.1.4.1.1.88.67", "1.2.840.10008.5.1.4.1.1.88.76")
# SR classes that sometimes hold a dose report (GE's "ESR" is an Enhanced SR)
OTHER_SR_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.88.22",
    "1.2.840.10008.5.1.4.1.1.88.33",
    "1.2.840.10008.5.1.4.1.1.88.34",
)
PROJECTION_MODALITIES = ("DX", "CR", "MG", "PX", "RF", "XA")


@dataclass(frozen=True)
class Outcome:
    study: StudyHit
    status: str  # "pulled", "complete" (has an RDSR), "unchanged" (pulled before)
    objects: int = 0
    failed: int = 0


class PullState:
    """Instance counts of the studies pulled, by Study Instance UID."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._counts: dict[str, int | None] = json.loads(path.read_text()) if path.exists() else {}

    def unchanged(self, study: StudyHit) -> bool:
        return study.instances is not None and self._counts.get(study.study_uid) == study.instances

    def record(self, study: StudyHit) -> None:
        self._counts[study.study_uid] = study.instances
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(self.path, json.dumps(self._counts).encode())


def pacs_config(settings: Settings) -> PacsConfig:
    if not settings.pacs_ae_title:
        raise ValueError(
            "no PACS configured: set KERMA_PACS_AE_TITLE, KERMA_PACS_HOST, KERMA_PACS_PORT"
        )
    if settings.pacs_retrieve not in ("get", "move"):
        raise ValueError(f"KERMA_PACS_RETRIEVE is get or move, not {settings.pacs_retrieve!r}")
    return PacsConfig(
        settings.pacs_ae_title,
        settings.pacs_host,
        settings.pacs_port,
        settings.ae_title,
        settings.pacs_retrieve,  # type: ignore[arg-type]
    )


def matching_studies(
    pacs: Pacs, since: date, until: date | None, modalities: tuple[str, ...]
) -> list[StudyHit]:
    """The PACS's studies in the date window with one of `modalities` (all when empty).

    A study holding only SR objects (an RDSR sent apart from its images) names no imaging
    modality: it is pulled whatever the filter, and its dose report says what it is.
    """
    return [
        s
        for s in pacs.studies(since, until)
        if not modalities or set(modalities) & set(s.modalities) or set(s.modalities) == {"SR"}
    ]


def pull(
    pacs: Pacs, studies: list[StudyHit], state: PullState, service: FhirService
) -> Iterator[Outcome]:
    """Yield one outcome per study, as it is done (the caller shows progress)."""
    for study in studies:
        if has_rdsr(service, study.study_uid):
            yield Outcome(study, "complete")
        elif state.unchanged(study):
            yield Outcome(study, "unchanged")
        else:
            objects, failed = _pull_study(pacs, study.study_uid)
            state.record(study)
            yield Outcome(study, "pulled", objects, failed)


def _pull_study(pacs: Pacs, study_uid: str) -> tuple[int, int]:
    objects = failed = 0
    for series, sop_uid in choose(pacs, study_uid):
        got = pacs.retrieve(study_uid, series.series_uid, sop_uid)
        objects, failed = objects + got.completed, failed + got.failed
    return objects, failed


def choose(pacs: Pacs, study_uid: str) -> list[tuple[SeriesHit, str | None]]:
    """(series, one SOP Instance UID or None for the whole series) to fetch for a study."""
    series = pacs.series(study_uid)
    reports: list[tuple[SeriesHit, str | None]] = []
    maybe: list[tuple[SeriesHit, str | None]] = []
    for s in (s for s in series if s.modality == "SR"):
        for uid, sop_class in pacs.instances(study_uid, s.series_uid):
            if sop_class in RDSR_CLASSES:
                reports.append((s, uid))
            elif sop_class in OTHER_SR_CLASSES:
                maybe.append((s, uid))
    if reports:
        return reports
    for s in series:
        if is_dose_screen_series(s.description) or s.modality in PROJECTION_MODALITIES:
            maybe.append((s, None))
        elif s.modality == "CT":
            uids = [uid for uid, _ in pacs.instances(study_uid, s.series_uid)]
            maybe += [(s, uid) for uid in dict.fromkeys(uids[:1] + uids[-1:])]
    return maybe


def has_rdsr(service: FhirService, study_uid: str) -> bool:
    """Whether the study's dose summary was read from an RDSR."""
    found = service.search("ImagingStudy", [("identifier", f"urn:dicom:uid|urn:oid:{study_uid}")])
    if not found.matches:
        return False
    summary = service.search(
        "Observation",
        [("part-of", f"ImagingStudy/{found.matches[0].rid}"), ("code", "http://loinc.org|73569-6")],
    )
    if not summary.matches:
        return False
    tags = orjson.loads(summary.matches[0].body or b"{}").get("meta", {}).get("tag", [])
    return {"system": SOURCE_TAG, "code": "rdsr"} in [
        {"system": t.get("system"), "code": t.get("code")} for t in tags
    ]
