"""Exports of the dose facts, one row per irradiation event or examination with every
parameter (requirements S5, A5), streamed: a million rows in bounded memory. Pseudonymised by
default: the patient and the study as keyed hashes, age in whole years (in the calendar year of
the examination: server/dose/ages.py), dates at the site's
precision (KERMA_PSEUDONYM_DATE_PRECISION, day by default: no time of day), never a name or a
birth date; identified (the patient's ID, the Study Instance UID, ages and times as recorded)
only for roles allowed to."""

from __future__ import annotations

import csv
import functools
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from server.auth.keys import site_key
from server.config import Settings
from server.dose.ages import calendar_age
from server.dose.facts import FACT_FIELDS
from server.fhir.pseudonymise import Precision, precision, pseudonym
from server.fhir.service import FhirService, body_of
from server.site import site_context
from server.stats.service import Query, site_statistics
from server.store.port import Store

_READ = [f for f in FACT_FIELDS if f != "key"]
_DATES = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
_VALUES = [f for f in FACT_FIELDS if f not in ("key", "resource", "study_uid", "patient", "device")]


@dataclass(frozen=True)
class Export:
    store: Store
    key: bytes  # of the pseudonyms
    timezone: tzinfo
    device_name: Callable[[str], str]
    patient_id: Callable[[str], str] | None = None  # identified exports only
    precision: Precision = "day"  # of dates in pseudonymised exports

    @property
    def header(self) -> list[str]:
        who = ["patient_id", "study_instance_uid"] if self.patient_id else []
        return ["patient_pseudonym", "study_pseudonym", *who, "device_name", *_VALUES]

    def rows(self, q: Query, studies: frozenset[str] | None = None) -> Iterator[list[Any]]:
        """The rows of the query; `studies`: of these Study Instance UIDs only (the console's
        current filter). Rows come in date order: an examination's events are together."""
        hashed = functools.lru_cache(maxsize=4096)(
            lambda identifier: pseudonym(self.key, identifier)
        )
        for values in self.store.fact_rows(q.level, _READ, q.since, q.until):
            row = dict(zip(_READ, values, strict=True))
            if any(
                getattr(q, f) and row[f] != getattr(q, f)
                for f in ("modality", "device", "procedure")
            ) or (q.devices and row["device"] not in q.devices):
                continue
            if studies is not None and row["study_uid"] not in studies:
                continue
            patient = row["patient"] or ""
            who = [self.patient_id(patient), row["study_uid"]] if self.patient_id else []
            when = datetime.fromtimestamp(row["date"], self.timezone)
            if self.patient_id:
                row["date"] = when.isoformat(timespec="seconds")
            else:
                row["date"] = when.strftime(_DATES[self.precision])
                if row["age_years"] is not None:
                    row["age_years"] = calendar_age(row["age_years"], when.date())
            yield [
                hashed(patient) if patient else "",
                hashed(row["study_uid"]),
                *who,
                self.device_name(row["device"]) if row["device"] else "",
                *(row[f] for f in _VALUES),
            ]

    def csv(self, q: Query, studies: frozenset[str] | None = None) -> Iterator[str]:
        """CSV text in pieces of about a thousand rows."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
        for n, row in enumerate(self.rows(q, studies), 1):
            writer.writerow(row)
            if n % 1000 == 0:
                yield _drain(out)
        yield _drain(out)

    def xlsx(self, q: Query, studies: frozenset[str] | None = None) -> Path:
        """An XLSX file (XlsxWriter's constant-memory mode: rows go to disk as written); a
        sheet holds at most 1,048,575 rows, so larger exports continue on the next sheet."""
        import xlsxwriter

        with tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False) as handle:
            path = Path(handle.name)
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        sheet, line = None, 0
        for row in self.rows(q, studies):
            if sheet is None or line == 1_048_576:
                sheet, line = book.add_worksheet(), 0
                sheet.write_row(line, 0, self.header)
                line += 1
            sheet.write_row(line, 0, row)
            line += 1
        if sheet is None:
            book.add_worksheet().write_row(0, 0, self.header)
        book.close()
        return path


def _drain(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


def exporter(service: FhirService, settings: Settings, identified: bool) -> Export:
    """The export of a site: its pseudonym key, time zone and device names; patient IDs when
    identified."""
    timezone = site_context(settings).timezone
    names = site_statistics(service, settings).device_name
    return Export(
        service.store,
        site_key(settings),
        timezone,
        names,
        patient_ids(service) if identified else None,
        precision(settings.pseudonym_date_precision),
    )


def patient_ids(service: FhirService) -> Callable[[str], str]:
    """The patient's ID (the first identifier) of a Patient reference."""

    @functools.cache
    def patient_id(ref: str) -> str:
        stored = service.store.read(*ref.split("/", 1)) if ref else None
        identifiers = body_of(stored).get("identifier", []) if stored else []
        return str(identifiers[0].get("value", "")) if identifiers else ""

    return patient_id
