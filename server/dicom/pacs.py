"""Query/retrieve SCU: find studies and series on a PACS and fetch their dose objects.

Retrieval is C-GET (the objects come back on our own association, nothing to configure on the
PACS) or C-MOVE to Kerma's own Storage SCP (the PACS must know KERMA_AE_TITLE's address).
Either way a received object lands in the spool like any C-STORE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, build_role, evt
from pynetdicom.association import Association

from server.dicom.header import code_string, number, text
from server.dicom.scp import VERIFICATION, handle_store, storage_classes
from server.dicom.spool import Spool
from server.dicom.transport import NO_DELAY, narrate_only_when_debugging

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
_PENDING = (0xFF00, 0xFF01)
_SOME_FAILED = 0xB000  # a warning: the sub-operations that failed are counted


_Negotiation = Any  # pynetdicom's union of extended negotiation items
_Handler = Any  # (event, handler) or (event, handler, args)


class PacsError(Exception):
    """The PACS could not be reached, refused us, or answered a query with a failure."""


@dataclass(frozen=True)
class PacsConfig:
    ae_title: str
    host: str
    port: int
    calling_ae_title: str  # ours; C-MOVE sends to it, so the PACS must know its address
    retrieve: Literal["get", "move"] = "get"


@dataclass(frozen=True)
class StudyHit:
    study_uid: str
    study_date: str | None
    modalities: tuple[str, ...]
    instances: int | None  # NumberOfStudyRelatedInstances: a change means something new arrived


@dataclass(frozen=True)
class SeriesHit:
    series_uid: str
    modality: str
    description: str
    number: int | None


@dataclass(frozen=True)
class Retrieved:
    completed: int
    failed: int


class Pacs:
    """One association to the PACS for a whole pull, opened by `connect()`."""

    def __init__(self, config: PacsConfig, spool: Spool, received: Callable[[], None]) -> None:
        self.config = config
        self._spool = spool
        self._received = received
        self._assoc: Association | None = None

    def __enter__(self) -> Pacs:
        narrate_only_when_debugging()
        ae = AE(ae_title=self.config.calling_ae_title)
        ae.add_requested_context(VERIFICATION)
        for model in (STUDY_ROOT_FIND, STUDY_ROOT_MOVE, STUDY_ROOT_GET):
            ae.add_requested_context(model)
        roles: list[_Negotiation] = []
        if self.config.retrieve == "get":  # C-GET's stores come back on this association
            for uid in storage_classes():
                ae.add_requested_context(uid, ALL_TRANSFER_SYNTAXES)
                roles.append(build_role(uid, scp_role=True))
        handlers: list[_Handler] = [
            NO_DELAY,
            (evt.EVT_C_STORE, handle_store, [self._spool, self._received]),
        ]
        assoc = ae.associate(
            self.config.host,
            self.config.port,
            ae_title=self.config.ae_title,
            ext_neg=roles,
            evt_handlers=handlers,
        )
        if not assoc.is_established:
            raise PacsError(
                f"no association with {self.config.ae_title} at {self.config.host}:{self.config.port}"
            )
        self._assoc = assoc
        return self

    def __exit__(self, *exc: object) -> None:
        if self._assoc is not None and self._assoc.is_established:
            self._assoc.release()

    def studies(self, since: date, until: date | None) -> Iterator[StudyHit]:
        query = _query(
            "STUDY",
            StudyDate=f"{since:%Y%m%d}-{until:%Y%m%d}" if until else f"{since:%Y%m%d}-",
            StudyInstanceUID="",
            ModalitiesInStudy="",
            NumberOfStudyRelatedInstances="",
        )
        for found in self._find(query):
            count = number(found, "NumberOfStudyRelatedInstances")
            yield StudyHit(
                study_uid=str(found.get("StudyInstanceUID", "")),
                study_date=text(found, "StudyDate"),
                modalities=tuple(
                    m.strip() for m in (text(found, "ModalitiesInStudy") or "").split("\\") if m
                ),
                instances=int(count) if count is not None else None,
            )

    def series(self, study_uid: str) -> list[SeriesHit]:
        query = _query(
            "SERIES",
            StudyInstanceUID=study_uid,
            SeriesInstanceUID="",
            Modality="",
            SeriesDescription="",
            SeriesNumber="",
        )
        hits = []
        for found in self._find(query):
            series_number = number(found, "SeriesNumber")
            hits.append(
                SeriesHit(
                    series_uid=str(found.get("SeriesInstanceUID", "")),
                    modality=code_string(found, "Modality") or "",
                    description=text(found, "SeriesDescription") or "",
                    number=int(series_number) if series_number is not None else None,
                )
            )
        return hits

    def instances(self, study_uid: str, series_uid: str) -> list[tuple[str, str]]:
        """(SOP Instance UID, SOP Class UID) of a series' objects, in Instance Number order."""
        query = _query(
            "IMAGE",
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=series_uid,
            SOPInstanceUID="",
            SOPClassUID="",
            InstanceNumber="",
        )
        found = [
            (
                number(f, "InstanceNumber"),
                str(f.get("SOPInstanceUID", "")),
                str(f.get("SOPClassUID", "")),
            )
            for f in self._find(query)
        ]
        found.sort(key=lambda f: (f[0] is None, f[0] or 0, f[1]))
        return [(uid, sop_class) for _, uid, sop_class in found]

    def retrieve(self, study_uid: str, series_uid: str, sop_uid: str | None = None) -> Retrieved:
        """A whole series, or one instance of it."""
        fields = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid}
        if sop_uid:
            fields["SOPInstanceUID"] = sop_uid
        query = _query("IMAGE" if sop_uid else "SERIES", **fields)
        assoc = self._association()
        if self.config.retrieve == "get":
            responses = assoc.send_c_get(query, STUDY_ROOT_GET)
        else:
            responses = assoc.send_c_move(query, self.config.calling_ae_title, STUDY_ROOT_MOVE)
        final = Dataset()
        for status, _ in responses:
            if status.get("Status") not in _PENDING:
                final = status
        code = final.get("Status")
        if code not in (0x0000, _SOME_FAILED):
            raise PacsError(f"retrieve of series {series_uid} failed with status {code!r}")
        return Retrieved(
            completed=int(final.get("NumberOfCompletedSuboperations", 0) or 0),
            failed=int(final.get("NumberOfFailedSuboperations", 0) or 0),
        )

    def _find(self, query: Dataset) -> Iterator[Dataset]:
        for status, identifier in self._association().send_c_find(query, STUDY_ROOT_FIND):
            code = status.get("Status")
            if code in _PENDING and identifier is not None:
                yield identifier
            elif code is None or code != 0x0000:
                raise PacsError(f"C-FIND failed with status {code!r}")

    def _association(self) -> Association:
        if self._assoc is None or not self._assoc.is_established:
            raise PacsError("the association with the PACS was lost")
        return self._assoc


def _query(level: str, **fields: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in fields.items():
        setattr(ds, keyword, value)
    return ds
