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
import math
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
from server.mappings import read_csv_rows
from server.site import site_context
from server.stats.service import NOT_CLASSIFIED, Query, site_statistics
from server.store.port import Store

_READ = [f for f in FACT_FIELDS if f != "key"]
_DATES = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
_EXCEL_DATES = {
    "second": "yyyy-mm-dd hh:mm:ss",
    "day": "yyyy-mm-dd",
    "month": "yyyy-mm",
    "year": "yyyy",
}
_WIDTHS = {"patient_pseudonym": 24, "study_pseudonym": 24, "study_instance_uid": 40,
           "device_name": 36, "date": 20, "protocol": 28, "procedure": 36, "body_region": 18,
           "acquisition_type": 20}  # fmt: skip
_MAX_LINES = 1_048_576
_VALUES = [f for f in FACT_FIELDS if f not in ("key", "resource", "study_uid", "patient", "device")]


@dataclass(frozen=True)
class Export:
    store: Store
    key: bytes  # of the pseudonyms
    timezone: tzinfo
    device_name: Callable[[str], str]
    patient_id: Callable[[str], str] | None = None  # identified exports only
    precision: Precision = "day"  # of dates in pseudonymised exports
    descriptions: bool = False  # pseudonymised exports keep the protocol and own words

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
            row["date"] = when if self.patient_id else _truncated(when, self.precision)
            if not self.patient_id and row["age_years"] is not None:
                row["age_years"] = calendar_age(row["age_years"], when.date())
            if not (self.patient_id or self.descriptions):  # PS3.15: no free text
                row["protocol"] = None
                if row["category"] != "procedure":  # QA or unclassified: the own words
                    row["procedure"] = NOT_CLASSIFIED if row["category"] == "unclassified" else None
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
        at = self.header.index("date")
        for n, row in enumerate(self.rows(q, studies), 1):
            row[at] = self.date_text(row[at])
            writer.writerow(row)
            if n % 1000 == 0:
                yield _drain(out)
        yield _drain(out)

    def xlsx(self, q: Query, studies: frozenset[str] | None = None) -> Path:
        """An XLSX file a spreadsheet user opens: a "read me" sheet (what the export holds,
        each column with its unit), then one sheet per modality with a frozen header, a
        filter, widths and dates as dates. XlsxWriter's constant-memory mode: rows go to disk
        as written; past 1,048,575 rows a modality continues on a sheet of its own."""
        import xlsxwriter

        with tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False) as handle:
            path = Path(handle.name)
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "remove_timezone": True})
        _read_me(book.add_worksheet("read me"), self, q)
        sheets = _Sheets(book, self.header, _EXCEL_DATES[self.precision if not self.patient_id
                                                           else "second"])  # fmt: skip
        for row in self.rows(q, studies):
            sheets.write(row)
        sheets.close()
        book.close()
        return path

    def date_text(self, when: datetime) -> str:
        """A date as the export writes it: to the second when identified, else at the site's
        precision (a day, a month or a year)."""
        if self.patient_id:
            return when.isoformat(timespec="seconds")
        return when.strftime(_DATES[self.precision])


class _Sheets:
    """The modality sheets, each made when its first row comes."""

    def __init__(self, book: Any, header: list[str], date_format: str) -> None:
        self._book, self._header = book, header
        self._date = book.add_format({"num_format": date_format})
        self._bold = book.add_format({"bold": True})
        self._at = header.index("modality"), header.index("date")
        self._open: dict[str, tuple[Any, int]] = {}  # modality -> (sheet, next line)
        self._made: list[Any] = []  # every sheet, full ones too

    def write(self, row: list[Any]) -> None:
        modality = row[self._at[0]] or "other"
        sheet, line = self._open.get(modality, (None, _MAX_LINES))
        if line == _MAX_LINES:
            name = (
                modality
                if modality not in self._book.sheetnames
                else f"{modality} ({len(self._made)})"
            )
            sheet, line = self._book.add_worksheet(name[:31]), 1
            for column, title in enumerate(self._header):
                sheet.set_column(column, column, _width(title))
            sheet.write_row(0, 0, self._header, self._bold)
            sheet.freeze_panes(1, 0)
            self._made.append(sheet)
        at = self._at[1]  # the date as a date cell, once
        sheet.write_row(line, 0, row[:at])
        sheet.write_datetime(line, at, row[at], self._date)
        sheet.write_row(line, at + 1, row[at + 1 :])
        self._open[modality] = (sheet, line + 1)

    def close(self) -> None:
        if not self._open:  # nothing in the period: the header alone, on a sheet of its own
            self._book.add_worksheet("rows").write_row(0, 0, self._header, self._bold)
        lines = {id(sheet): line for sheet, line in self._open.values()}
        for sheet in self._made:
            sheet.autofilter(0, 0, lines.get(id(sheet), _MAX_LINES) - 1, len(self._header) - 1)


def _read_me(sheet: Any, export: Export, q: Query) -> None:
    """What the export holds: the level, the period, whether it is pseudonymised and how,
    each column with its unit and meaning (mappings/exports/columns.csv)."""
    start, end = (datetime.fromtimestamp(t, export.timezone).date() if math.isfinite(t) else None
                  for t in (q.since, q.until))  # fmt: skip
    period = f"{start or 'the first'} to {end or 'the last'}" + (" (end excluded)" if end else "")
    identified = export.patient_id is not None
    lines = [
        ["Kerma dose facts", f"one row per {'examination' if q.level == 'study' else 'irradiation event'}, "
         "one sheet per modality"],
        ["period", f"{period}, dates in the site's time zone"],
        ["filter", ", ".join(f"{f} {getattr(q, f)}" for f in ("modality", "device", "procedure")
                             if getattr(q, f)) or "none"],
        ["identified" if identified else "pseudonymised",
         "personal data: patient IDs, Study Instance UIDs, dates to the second" if identified
         else "patients and examinations as keyed pseudonyms (HMAC-SHA256, the site's key), "
              f"ages in whole years, dates to the {export.precision}; no name, ID, UID or birth date"],
        [],
        ["column", "unit", "meaning"],
    ]  # fmt: skip
    described = {r["column"]: r for r in read_csv_rows("exports/columns.csv")}
    lines += [[c, described[c]["unit"], described[c]["meaning"]] for c in export.header]
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 1, 12)
    sheet.set_column(2, 2, 110)
    for line, values in enumerate(lines):
        sheet.write_row(line, 0, values)


def _width(title: str) -> int:
    return _WIDTHS.get(title, max(len(title) + 2, 10))


def _truncated(when: datetime, precision: Precision) -> datetime:
    """The date at the precision pseudonymised exports give (the start of the day, month,
    year): no time of day."""
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if precision == "day":
        return day
    return day.replace(day=1) if precision == "month" else day.replace(month=1, day=1)


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
        settings.pseudonym_descriptions == "keep",
    )


def patient_ids(service: FhirService) -> Callable[[str], str]:
    """The patient's ID (the first identifier) of a Patient reference."""

    @functools.cache
    def patient_id(ref: str) -> str:
        stored = service.store.read(*ref.split("/", 1)) if ref else None
        identifiers = body_of(stored).get("identifier", []) if stored else []
        return str(identifiers[0].get("value", "")) if identifiers else ""

    return patient_id
