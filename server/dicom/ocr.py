"""CT dose screens read by OCR (Tesseract): pixels -> words -> a vendor's table -> dose report.

The page is read twice, at two scales and with two binarisations; each value keeps the
lower confidence of its two readings, and a value the readings disagree on is flagged. The
vendor's layout (mappings/ocr/*.yaml) says which header words name which column; each word
of a row goes to the column whose header starts left of it. Flagged for review, never stored
as plain fact: values read with low confidence, readings that disagree, unreadable cells, and
series DLPs that do not add up to the printed total (to within the printed rounding).
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from dataclasses import dataclass, replace
from importlib import resources
from statistics import median
from typing import Any

import numpy as np
import pytesseract
from PIL import Image, ImageOps
from pydicom.dataset import Dataset

from server.dicom import header
from server.dicom.header import text
from server.dicom.image_header import derived_uid
from server.dose.model import Coded, CtEvent, CtSource, CtTotals, DoseReport, Finding
from server.dose.units import UnitTable
from server.mappings import read_yaml

# Tesseract's OpenMP threads spin while they wait: a page read by one thread takes a third of
# the CPU and of the time, idle machine or not (bench/README.md, ocr.py). An operator's own
# value stands. Pytesseract starts Tesseract with this process's environment.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

_FROM_SCREEN = Coded("DCM", "113868", "Derived From Human-Readable Reports")
LOW_CONFIDENCE = 0.80
# (scale, binarised) of the readings: the first two always, the third when they disagree
READINGS = ((1.0, False), (1.5, True), (0.75, False))
_PSM_SPARSE = 11  # Tesseract page mode "sparse text": tables are words with gaps between
_PAGE_WIDTH_PX = 1024  # a 512 page is read 2x enlarged: Tesseract wants ~25 px per text line
_KINDS = {
    "spiral": Coded("SCT", "116152004", "Spiral Acquisition"),
    "sequenced": Coded("DCM", "113804", "Sequenced Acquisition"),
    "constant-angle": Coded("DCM", "113805", "Constant Angle Acquisition"),
    "stationary": Coded("DCM", "113806", "Stationary Acquisition"),
}
_PHANTOMS = {
    "body": Coded("DCM", "113691", "IEC Body Dosimetry Phantom"),
    "head": Coded("DCM", "113690", "IEC Head Dosimetry Phantom"),
}
_NUMERIC = ("kvp_kv", "tube_current_ma", "ctdivol_mgy", "dlp_mgy_cm")
# characters Tesseract confuses with digits, in a cell that must be a number
_DIGIT_LOOKALIKES = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1", "S": "5", "B": "8", ",": "."}
)
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_EMPTY = ("-", "--", "—", "–", "n/a", "N/A")  # printed where a series has no such value


@dataclass(frozen=True)
class Word:
    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float  # 0..1
    line: tuple[int, int, int]  # Tesseract's block, paragraph, line


@dataclass(frozen=True)
class Cell:
    value: float | str | None
    confidence: float
    printed: str  # as read, for messages and the decimals of the sum check


Row = dict[str, Cell]  # field -> cell
Table = list[tuple[int, Row]]  # the rows of one reading, with the height on the page of each


@functools.cache
def profiles() -> tuple[dict[str, Any], ...]:
    folder = resources.files("kerma_mappings").joinpath("ocr")
    names = sorted(f.name for f in folder.iterdir() if f.name.endswith(".yaml"))
    return tuple(read_yaml(f"ocr/{name}") for name in names)


def screen_report(ds: Dataset, units: UnitTable) -> DoseReport | str:
    """The dose report a screen shows, or why none could be read."""
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        return "dose screen without pixel data (stripped by an anonymiser?): nothing to read"
    image = page_image(ds)
    first = _read(image, READINGS[0])
    profile = _profile(ds, first)
    if profile is None:
        return "dose screen of an unknown layout: no profile in mappings/ocr matches it"
    readings = [parse(first, profile), parse(_read(image, READINGS[1]), profile)]
    if not readings[0][0]:
        return f"{profile['vendor']} dose screen: no table found on the page"
    if _differ(readings[0], readings[1]):  # a third reading settles what the two disagree on
        readings.append(parse(_read(image, READINGS[2]), profile))
    findings: list[Finding] = []
    rows = _vote([r[0] for r in readings], findings)
    total = _vote_cell("ct_totals.dlp_total_mgy_cm", [r[1] for r in readings], findings)
    findings += _odd_decimals(rows, profile)
    findings += _lost_point(rows, total)
    return _report(ds, profile, rows, total, findings, units)


def _read(image: Image.Image, how: tuple[float, bool]) -> list[Word]:
    scale, binarise = how
    return words(image, scale=_scale(image) * scale, binarise=binarise)


def page_image(ds: Dataset) -> Image.Image:
    """The picture as 8-bit grey, dark text on light ground (what Tesseract reads best)."""
    pixels = ds.pixel_array.astype(np.float64)
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        pixels = pixels.mean(axis=-1)
    if pixels.ndim == 3:  # frames: the first one
        pixels = pixels[0]
    low, high = float(pixels.min()), float(pixels.max())
    grey = ((pixels - low) * (255.0 / (high - low or 1.0))).astype(np.uint8)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        grey = 255 - grey
    image = Image.fromarray(grey)
    if float(np.median(grey)) < 128:
        image = ImageOps.invert(image)
    return deskew(image)


def deskew(image: Image.Image) -> Image.Image:
    """Turn the page so its text lines are level: the angle whose row sums vary most (a
    re-captured or photographed screen is often turned a degree or two)."""
    small = image.resize((512, round(512 * image.height / image.width)))
    ink = np.asarray(small, dtype=np.float64) < 128

    def levelness(angle: float) -> float:
        turned = Image.fromarray(ink.astype(np.uint8) * 255).rotate(
            angle, resample=Image.Resampling.NEAREST
        )
        return float(np.asarray(turned, dtype=np.float64).sum(axis=1).var())

    angles = [a / 4 for a in range(-12, 13)]  # -3 to +3 degrees
    best = max(angles, key=levelness)
    if best == 0:
        return image
    return image.rotate(best, resample=Image.Resampling.BICUBIC, fillcolor=255)


def words(image: Image.Image, scale: float, binarise: bool) -> list[Word]:
    size = (round(image.width * scale), round(image.height * scale))
    big = image.resize(size, Image.Resampling.LANCZOS)
    if binarise:
        threshold = _otsu(big)
        big = big.point(lambda v: 255 if v > threshold else 0)
    data = pytesseract.image_to_data(
        big, config=f"--psm {_PSM_SPARSE}", output_type=pytesseract.Output.DICT
    )
    found = []
    for i, word in enumerate(data["text"]):
        if not word.strip() or float(data["conf"][i]) < 0:
            continue
        found.append(
            Word(
                word.strip(),
                round(data["left"][i] / scale),
                round(data["top"][i] / scale),
                round(data["width"][i] / scale),
                round(data["height"][i] / scale),
                float(data["conf"][i]) / 100,
                (data["block_num"][i], data["par_num"][i], data["line_num"][i]),
            )
        )
    return found


def _scale(image: Image.Image) -> float:
    return max(1.0, _PAGE_WIDTH_PX / image.width)


def _otsu(image: Image.Image) -> int:
    histogram = np.asarray(image.histogram(), dtype=np.float64)
    levels = np.arange(256)
    total, weighted = histogram.sum(), (histogram * levels).sum()
    best, threshold, below, below_weighted = -1.0, 127, 0.0, 0.0
    for level in range(256):
        below += histogram[level]
        below_weighted += histogram[level] * level
        above = total - below
        if below == 0 or above == 0:
            continue
        between = (
            below * above * (below_weighted / below - (weighted - below_weighted) / above) ** 2
        )
        if between > best:
            best, threshold = between, level
    return threshold


def _profile(ds: Dataset, found: list[Word]) -> dict[str, Any] | None:
    manufacturer = (text(ds, "Manufacturer") or "").lower()
    for profile in profiles():
        if any(m in manufacturer for m in profile["manufacturers"]):
            return profile
    page = " ".join(w.text for w in found).lower()
    return next((p for p in profiles() if any(t in page for t in p["titles"])), None)


def parse(found: list[Word], profile: dict[str, Any]) -> tuple[Table, Cell | None]:
    """The table's rows and the printed DLP total, from the words of one reading."""
    lines = _lines(found)
    columns = profile["columns"]
    headed = [c for c in columns if c.get("header")]
    start = next((i for i, line in enumerate(lines) if _is_header(line, headed)), None)
    if start is None:
        return [], None
    char_px = median(w.width / max(len(w.text), 1) for w in lines[start])
    anchors = _anchors(lines[start], columns)
    anchors = _fill_anchors(anchors, columns, lines[start + 1 :], char_px)
    table: Table = []
    total: Cell | None = None
    label = re.compile(profile["total"]["label"], re.IGNORECASE)
    for line in lines[start + 1 :]:
        joined = " ".join(w.text for w in line)
        if label.search(joined):
            total = _total_cell(line, joined, label)
            break
        row = _row(line, anchors, char_px, profile)
        if row is not None:
            table.append((round(median(w.top for w in line)), row))
    return table, total


def _lines(found: list[Word]) -> list[list[Word]]:
    """Words on one text line: their vertical centres within half a word height (a slightly
    turned page still keeps its rows)."""
    lines: list[list[Word]] = []
    for word in sorted(found, key=lambda w: w.top + w.height / 2):
        centre = word.top + word.height / 2
        if lines:
            last = lines[-1]
            last_centre = median(w.top + w.height / 2 for w in last)
            if abs(centre - last_centre) <= 0.5 * median(w.height for w in last):
                last.append(word)
                continue
        lines.append([word])
    return [sorted(line, key=lambda w: w.left) for line in lines]


def _is_header(line: list[Word], headed: list[dict[str, Any]]) -> bool:
    hits = sum(_header_word(line, c["header"]) is not None for c in headed)
    return hits >= max(2, len(headed) - 1)


def _header_word(line: list[Word], header_text: str) -> Word | None:
    """The word of `line` that reads as `header_text`, allowing a misread letter (one in four)."""
    wanted = _fold(header_text)
    allowed = max(1, len(wanted) // 4)
    scored = [(_edits(_fold(w.text), wanted), w) for w in line]
    best = min(scored, key=lambda s: s[0], default=(allowed + 1, None))
    return best[1] if best[0] <= allowed else None


def _edits(a: str, b: str) -> int:
    """Levenshtein distance: letters to change, add or drop to turn `a` into `b`."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _fold(word: str) -> str:
    return word.lower().strip(":.()[]")


def _anchors(line: list[Word], columns: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(left edge, column) of each column; a leading column without header starts at 0."""
    anchors = [
        (word.left, c)
        for c in columns
        if c.get("header") and (word := _header_word(line, c["header"])) is not None
    ]
    if columns and not columns[0].get("header"):
        anchors.insert(0, (0, columns[0]))
    return sorted(anchors, key=lambda a: a[0])


def _fill_anchors(
    anchors: list[tuple[int, dict[str, Any]]],
    columns: list[dict[str, Any]],
    rows: list[list[Word]],
    char_px: float,
) -> list[tuple[int, dict[str, Any]]]:
    """A header word the OCR lost ("kV" is easily missed): when one column is missing between
    two found ones, it starts where the numbers between them start."""
    found = {id(spec): left for left, spec in anchors}
    for k, spec in enumerate(columns):
        if id(spec) in found or not spec.get("header"):
            continue
        before = [found[id(c)] for c in columns[:k] if id(c) in found]
        after = [found[id(c)] for c in columns[k + 1 :] if id(c) in found]
        if not before or not after or _missing_between(columns, found, k):
            continue
        lefts = [
            w.left
            for row in rows
            for w in row
            if before[-1] + 2 * char_px < w.left < after[0] - char_px
            and re.match(r"^[\d.]+$", w.text)
        ]
        if len(lefts) >= 2:
            found[id(spec)] = min(lefts)
            anchors.append((min(lefts), spec))
    return sorted(anchors, key=lambda a: a[0])


def _missing_between(columns: list[dict[str, Any]], found: dict[int, int], k: int) -> bool:
    """Whether another column next to column k is missing too (then the gap is ambiguous)."""
    neighbours = [c for c in (columns[k - 1 : k] + columns[k + 1 : k + 2])]
    return any(id(c) not in found and c.get("header") for c in neighbours)


def _row(
    line: list[Word],
    anchors: list[tuple[int, dict[str, Any]]],
    char_px: float,
    profile: dict[str, Any],
) -> dict[str, Cell] | None:
    cells: dict[str, list[Word]] = {}
    for word in line:
        column = None
        for left, spec in anchors:
            if word.left + char_px >= left:
                column = spec
        if column is not None:
            cells.setdefault(column["field"], []).append(word)
    values = [w.text for f in _NUMERIC for w in cells.get(f, [])]
    # a scout whose dashes Tesseract dropped: its name or kind is all there is of the row
    named = not values and any(f in cells for f in ("protocol", "kind"))
    if not named and not any(re.search(r"\d", v) or v in _EMPTY for v in values):
        return None  # a unit line ("(mGy)"), a blank: neither numbers nor "-" where numbers go
    row = {}
    for name, ws in cells.items():
        row[name] = _cell(name, ws, profile)
    return row


def _cell(name: str, ws: list[Word], profile: dict[str, Any]) -> Cell:
    printed = " ".join(w.text for w in ws)
    confidence = min(w.confidence for w in ws)
    if name in _NUMERIC:
        return _number(printed, confidence)
    if name == "series":
        number = _number(printed, confidence)
        return Cell(
            int(number.value) if isinstance(number.value, float) else None,
            number.confidence,
            printed,
        )
    return Cell(printed, confidence, printed)


def _number(printed: str, confidence: float) -> Cell:
    token = printed.replace(" ", "")
    if token in _EMPTY:
        return Cell(None, confidence, printed)
    fixed = token.translate(_DIGIT_LOOKALIKES).strip("()[]{}#=*:;'\"")
    if not _NUMBER.match(fixed):
        return Cell(None, 0.0, printed)  # unreadable: flagged
    return Cell(float(fixed), confidence if fixed == token else confidence * 0.5, printed)


def _total_cell(line: list[Word], joined: str, label: re.Pattern[str]) -> Cell | None:
    after = joined[label.search(joined).end() :]  # type: ignore[union-attr]
    match = re.search(r"[\dOolIS][\dOolIS.,]*", after)
    if match is None:
        return Cell(None, 0.0, after)
    printed = match.group(0)
    word = next((w for w in line if printed in w.text), None)
    return _number(printed, word.confidence if word else 0.0)


def _differ(a: tuple[Table, Cell | None], b: tuple[Table, Cell | None]) -> bool:
    def values(reading: tuple[Table, Cell | None]) -> list[object]:
        table, total = reading
        cells = [row.get(n) for _, row in table for n in _NUMERIC] + [total]
        return [c.value if c is not None else None for c in cells]

    return values(a) != values(b)


def _vote(tables: list[Table], findings: list[Finding]) -> list[Row]:
    """Each cell as most readings give it; flagged wherever a reading said otherwise. Rows are
    matched across readings by their height on the page; a row most readings found is kept
    even if one missed it (a row of "-" is easily lost)."""
    if len({len(t) for t in tables}) > 1:
        counts = sorted({len(t) for t in tables})
        findings.append(
            Finding("ct_events", "warning", "ocr-disagreement", f"the readings found {counts} rows")
        )
    needed = 2 if len(tables) > 2 else 1
    voted: list[Row] = []
    for same in _rows_by_height(tables):
        if sum(bool(r) for r in same) < needed:
            continue
        i = len(voted)
        names = dict.fromkeys(n for r in same for n in r)
        cells: Row = {}
        for name in names:
            cell = _vote_cell(f"ct_events[{i}].{name}", [r.get(name) for r in same], findings)
            if cell is not None:
                cells[name] = cell
        voted.append(cells)
    return voted


def _rows_by_height(tables: list[Table]) -> list[list[Row]]:
    """The rows of all readings grouped by height: one list per table row, one entry per
    reading ({} where a reading has no row there)."""
    gaps = [b[0] - a[0] for t in tables for a, b in itertools.pairwise(t)]
    tolerance = (float(median(gaps)) if gaps else 20.0) / 2
    found = sorted(((y, k, row) for k, t in enumerate(tables) for y, row in t), key=lambda e: e[:2])
    groups: list[list[tuple[int, int, Row]]] = []
    for entry in found:
        if groups and entry[0] - groups[-1][0][0] <= tolerance:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return [
        [next((r for _, k, r in g if k == reading), {}) for reading in range(len(tables))]
        for g in groups
    ]


def _vote_cell(path: str, cells: list[Cell | None], findings: list[Finding]) -> Cell | None:
    read = [c for c in cells if c is not None and not _unreadable(c)]
    if not read:  # nothing legible: the first reading, flagged by its zero confidence
        return next((c for c in cells if c is not None), None)
    if not isinstance(read[0].value, float | type(None)):  # text (a protocol's name): the first
        return read[0]
    values = [c.value for c in read]
    if len(set(values)) == 1 and len(read) == len(cells):
        return replace(read[0], confidence=min(c.confidence for c in read))
    findings.append(
        Finding(
            path,
            "warning",
            "ocr-disagreement",
            "read as " + " and as ".join(repr(c.printed) for c in cells if c),
        )
    )
    likeliest = max(read, key=lambda c: (values.count(c.value), c.confidence))
    return replace(likeliest, confidence=min(c.confidence for c in read) * 0.5)


def _unreadable(cell: Cell) -> bool:
    return cell.value is None and cell.confidence == 0.0 and cell.printed not in _EMPTY


def _odd_decimals(table: list[Row], profile: dict[str, Any]) -> list[Finding]:
    """A value printed with other decimals than its column (as the profile says the device
    prints it, else as most of the column reads) lost or gained a point. A lost point is put
    back where the column has it; either way the value is flagged."""
    printed_places = {c["field"]: c["decimals"] for c in profile["columns"] if "decimals" in c}
    findings = []
    for name in _NUMERIC:
        column = [
            (i, row[name])
            for i, row in enumerate(table)
            if name in row and isinstance(row[name].value, float)
        ]
        places = [_decimals(c.printed) for _, c in column]
        usual = printed_places.get(name)
        if usual is None and len(column) >= 3:
            usual = max(set(places), key=places.count)
        for (i, cell), p in zip(column, places, strict=True):
            if usual is None or p == usual:
                continue
            digits = cell.printed.strip()
            message = f"{cell.printed!r}: the column prints {usual} decimals"
            if p == 0 and usual > 0 and digits.isdigit() and len(digits) > usual:
                mended = f"{digits[:-usual]}.{digits[-usual:]}"
                table[i][name] = replace(cell, value=float(mended), printed=mended)
                message += f"; read as {mended}"
            findings.append(Finding(f"ct_events[{i}].{name}", "warning", "ocr-format", message))
    return findings


def _report(
    ds: Dataset,
    profile: dict[str, Any],
    table: list[Row],
    total: Cell | None,
    findings: list[Finding],
    units: UnitTable,
) -> DoseReport:
    confidences: list[tuple[str, float]] = []
    events = []
    for i, row in enumerate(table):
        events.append(_event(ds, i, row, profile, units))
        for name, cell in row.items():
            if name in _NUMERIC and cell.value is not None:
                confidences.append((f"ct_events[{i}].{name}", cell.confidence))
            if name in _NUMERIC and cell.confidence < LOW_CONFIDENCE and cell.printed not in _EMPTY:
                findings.append(_doubt(f"ct_events[{i}].{name}", cell))
    total_dlp = float(total.value) if total and isinstance(total.value, float) else None
    if total is not None and total_dlp is not None:
        confidences.append(("ct_totals.dlp_total_mgy_cm", total.confidence))
        if total.confidence < LOW_CONFIDENCE:
            findings.append(_doubt("ct_totals.dlp_total_mgy_cm", total))
    findings += _sum_check(table, total)
    study = header.study(ds)
    source = replace(header.source(ds, None, "ocr"), information_source=_FROM_SCREEN)
    return DoseReport(
        kind="ct",
        source=source,
        patient=header.patient(ds, study.started.date() if study.started else None),
        study=study,
        equipment=header.equipment(ds, "CT"),
        procedure_reported=Coded("SCT", "77477000", "Computed Tomography X-Ray"),
        irradiation_start=source.content_datetime,
        ct_totals=CtTotals(total_events=len(events), dlp_total_mgy_cm=total_dlp),
        ct_events=tuple(events),
        findings=tuple(findings),
        confidences=tuple(confidences),
    )


def _event(ds: Dataset, i: int, row: Row, profile: dict[str, Any], units: UnitTable) -> CtEvent:
    def value(name: str) -> float | None:
        cell = row.get(name)
        return cell.value if cell is not None and isinstance(cell.value, float) else None

    def words_of(name: str) -> str:
        cell = row.get(name)
        return str(cell.value) if cell is not None and cell.value is not None else ""

    kind = profile.get("kinds", {}).get(words_of("kind").lower())
    phantom = next((c for key, c in _PHANTOMS.items() if key in words_of("phantom").lower()), None)
    series = row.get("series")
    return CtEvent(
        event_uid=derived_uid("ocr", f"{ds.get('SOPInstanceUID', '')}|{i}"),
        protocol=words_of("protocol")
        or (f"Series {series.value}" if series and series.value else None),
        acquisition_type=_KINDS.get(kind) if kind else None,
        sources=(CtSource(kvp_kv=value("kvp_kv"), tube_current_ma=value("tube_current_ma")),)
        if value("kvp_kv") is not None or value("tube_current_ma") is not None
        else (),
        ctdivol_mgy=value("ctdivol_mgy"),
        dlp_mgy_cm=units.convert(d, profile_unit(profile, "dlp_mgy_cm"), "mGy.cm")
        if (d := value("dlp_mgy_cm")) is not None
        else None,
        phantom=phantom,
    )


def profile_unit(profile: dict[str, Any], name: str) -> str:
    return next((c.get("unit", "1") for c in profile["columns"] if c["field"] == name), "1")


def _doubt(path: str, cell: Cell) -> Finding:
    return Finding(
        path,
        "warning",
        "ocr-low-confidence",
        f"read {cell.printed!r} with confidence {cell.confidence:.2f}",
    )


def _sum_check(table: list[Row], total: Cell | None) -> list[Finding]:
    """Series DLPs against the printed total, to within the rounding of what is printed."""
    dlps = [
        (cell.value, cell.printed)
        for row in table
        if (cell := row.get("dlp_mgy_cm")) is not None and isinstance(cell.value, float)
    ]
    if total is None or not isinstance(total.value, float) or not dlps:
        return []
    half_units = [0.5 * 10.0 ** -_decimals(p) for _, p in (*dlps, (0.0, total.printed))]
    summed = sum(v for v, _ in dlps)
    if abs(summed - total.value) <= sum(half_units) + 1e-9:
        return []
    return [
        Finding(
            "ct_totals.dlp_total_mgy_cm",
            "warning",
            "ocr-sum-mismatch",
            f"series DLPs add up to {summed:.2f}, the page says {total.printed}",
        )
    ]


def _lost_point(table: list[Row], total: Cell | None) -> list[Finding]:
    """When one series DLP read ten or a hundred times too big (a lost decimal point, the
    commonest misreading of small print) is all that keeps the sum from the printed total, put
    the point back; the finding keeps the report for review all the same."""
    if total is None or not isinstance(total.value, float) or not _sum_check(table, total):
        return []
    mended = []
    for i, row in enumerate(table):
        cell = row.get("dlp_mgy_cm")
        if cell is None or not isinstance(cell.value, float) or "." in cell.printed:
            continue
        for places in (1, 2):
            guess = f"{cell.printed[:-places]}.{cell.printed[-places:]}"
            row["dlp_mgy_cm"] = replace(cell, value=float(guess), printed=guess)
            if not _sum_check(table, total):
                mended.append((i, cell, guess))
            row["dlp_mgy_cm"] = cell
    if len(mended) != 1:  # none, or more than one way to make it add up: leave it to a person
        return []
    i, cell, guess = mended[0]
    table[i]["dlp_mgy_cm"] = replace(cell, value=float(guess), printed=guess)
    return [
        Finding(
            f"ct_events[{i}].dlp_mgy_cm",
            "warning",
            "ocr-decimal-point",
            f"read {cell.printed!r}; {guess} makes the series add up to the total",
        )
    ]


def _decimals(printed: str) -> int:
    digits = printed.strip().split(".")
    return len(digits[1]) if len(digits) == 2 else 0
