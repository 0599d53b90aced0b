"""Rendered CT dose screens, for OCR tests and bench/ocr.py.

No public dose-screen bitmaps exist (the fo-dicom ones are blank or stripped), so this draws
them: the values of the corpus's real CT RDSRs, laid out as four vendors' dose pages print
them (GE "Dose Report", Siemens "Patient Protocol", Philips "Dose Info", Toshiba/Canon "Dose
Information": their column order, unit spellings, number formats, colours), at 512x512 and
1024x1024, clean or degraded (JPEG artefacts, low contrast, shifted), wrapped as Secondary
Capture DICOM with the RDSR's study. Each page knows the values it shows (`truth`), as printed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from server.dicom.read import Read, read_dicom
from server.mappings import unit_table

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "dicom" / "openrem"
FONTS = Path("/usr/share/fonts/truetype/dejavu")
SIZES = (512, 1024)
DEGRADATIONS = ("clean", "jpeg", "low-contrast", "shifted")


@dataclass(frozen=True)
class Row:
    number: int
    description: str
    kind: str
    kvp: float | None
    ma: float | None
    ctdivol: float | None
    dlp: float | None
    phantom: str | None


@dataclass(frozen=True)
class Exam:
    """What a dose page shows, from one RDSR."""

    name: str
    study_uid: str
    patient_id: str
    date: str
    model: str
    rows: tuple[Row, ...]
    total_dlp: float


@dataclass(frozen=True)
class Layout:
    vendor: str
    manufacturer: str
    series_description: str
    title: str
    font: str
    foreground: int
    background: int
    columns: tuple[tuple[str, str, str], ...]  # (field, header, unit line)
    decimals: dict[str, int]
    total_label: str
    total_unit: str
    image_type: tuple[str, ...] = ("DERIVED", "SECONDARY", "SCREEN SAVE")
    kinds: dict[str, str] = field(default_factory=dict)


_KINDS_GE = {"Spiral": "Helical", "Sequenced": "Axial", "Constant Angle": "Scout"}
LAYOUTS = (
    Layout(
        "GE",
        "GE MEDICAL SYSTEMS",
        "Dose Report",
        "Dose Report",
        "DejaVuSansMono.ttf",
        235,
        0,
        (
            ("number", "Series", ""),
            ("kind", "Type", ""),
            ("ctdivol", "CTDIvol", "(mGy)"),
            ("dlp", "DLP", "(mGy-cm)"),
            ("phantom", "Phantom", "(cm)"),
        ),
        {"ctdivol": 2, "dlp": 2},
        "Total Exam DLP:",
        "mGy-cm",
        kinds=_KINDS_GE,
    ),
    Layout(
        "Siemens",
        "SIEMENS",
        "Patient Protocol",
        "Patient Protocol",
        "DejaVuSans.ttf",
        255,
        0,
        (
            ("description", "", ""),
            ("number", "Scan", ""),
            ("kvp", "KV", ""),
            ("ma", "mA", ""),
            ("ctdivol", "CTDIvol", "mGy"),
            ("dlp", "DLP", "mGy*cm"),
        ),
        {"ctdivol": 2, "dlp": 1, "kvp": 0, "ma": 0},
        "Total DLP",
        "mGy*cm",
    ),
    Layout(
        "Philips",
        "Philips",
        "Dose Info",
        "Dose Info",
        "DejaVuSansCondensed.ttf",
        225,
        30,
        (
            ("number", "Series", ""),
            ("description", "Description", ""),
            ("kvp", "kV", ""),
            ("ctdivol", "CTDIvol", "[mGy]"),
            ("dlp", "DLP", "[mGy*cm]"),
        ),
        {"ctdivol": 1, "dlp": 1, "kvp": 0},
        "Total DLP (Exam):",
        "mGy*cm",
    ),
    Layout(
        "Toshiba",
        "TOSHIBA",
        "Dose Information",
        "Exposure Information",
        "DejaVuSans-Bold.ttf",
        20,
        215,
        (
            ("number", "No.", ""),
            ("kvp", "kV", ""),
            ("ma", "mA", ""),
            ("ctdivol", "CTDIvol", "(mGy)"),
            ("dlp", "DLP", "(mGy.cm)"),
        ),
        {"ctdivol": 1, "dlp": 1, "kvp": 0, "ma": 0},
        "Total DLP:",
        "mGy.cm",
    ),
)


@dataclass(frozen=True)
class Page:
    exam: Exam
    layout: Layout
    size: int
    degradation: str
    dataset: Dataset
    truth: dict[str, float | None]  # "rows[i].ctdivol", "total_dlp" -> the printed value


def exams() -> list[Exam]:
    """The values of every CT RDSR of the corpus."""
    found = []
    for path in sorted(CORPUS.glob("CT-*RDSR*.dcm")) + sorted(CORPUS.glob("CT-ESR*.dcm")):
        outcome = read_dicom(path, unit_table())
        if not isinstance(outcome, Read) or not outcome.report.ct_events:
            continue
        report = outcome.report
        rows = tuple(
            Row(
                number=i,
                # devices cut the description to its column
                description=(
                    e.protocol or (e.acquisition_type.meaning if e.acquisition_type else "Scan")
                )[:18],
                kind=(e.acquisition_type.meaning if e.acquisition_type else "").replace(
                    " Acquisition", ""
                ),
                kvp=e.sources[0].kvp_kv if e.sources else None,
                ma=e.sources[0].tube_current_ma if e.sources else None,
                ctdivol=e.ctdivol_mgy,
                dlp=e.dlp_mgy_cm,
                phantom=_phantom(e.phantom.meaning if e.phantom else None),
            )
            for i, e in enumerate(report.ct_events, start=1)
        )
        total = report.ct_totals.dlp_total_mgy_cm if report.ct_totals else None
        found.append(
            Exam(
                path.stem,
                report.study.study_uid,
                report.patient.patient_id or "ANON",
                f"{report.study.started:%Y-%m-%d}" if report.study.started else "",
                report.equipment.model or "",
                rows,
                total if total is not None else sum(r.dlp or 0 for r in rows),
            )
        )
    return found


def pages(
    sizes: tuple[int, ...] = SIZES, degradations: tuple[str, ...] = DEGRADATIONS
) -> Iterator[Page]:
    for exam in exams():
        for layout in LAYOUTS:
            for size in sizes:
                for degradation in degradations:
                    yield page(exam, layout, size, degradation)


def page(exam: Exam, layout: Layout, size: int, degradation: str) -> Page:
    image, truth = render(exam, layout, size)
    image = degrade(image, degradation, layout)
    return Page(
        exam, layout, size, degradation, wrap(image, exam, layout, degradation == "jpeg"), truth
    )


def render(exam: Exam, layout: Layout, size: int) -> tuple[Image.Image, dict[str, float | None]]:
    font_px = max(10, size // 40)
    font = ImageFont.truetype(str(FONTS / layout.font), font_px)
    image = Image.new("L", (size, size), layout.background)
    draw = ImageDraw.Draw(image)
    line = int(font_px * 1.7)
    x0, y = size // 24, size // 24
    widths = _column_widths(layout, font_px)
    truth: dict[str, float | None] = {}

    def text_row(cells: list[str]) -> None:
        nonlocal y
        x = x0
        for cell, width in zip(cells, widths, strict=True):
            draw.text((x, y), cell, fill=layout.foreground, font=font)
            x += width
        y += line

    for text in (layout.title, f"ID: {exam.patient_id}   {exam.date}", exam.model):
        draw.text((x0, y), text, fill=layout.foreground, font=font)
        y += line
    y += line // 2
    text_row([h for _, h, _ in layout.columns])
    if any(u for _, _, u in layout.columns):
        text_row([u for _, _, u in layout.columns])
    for i, row in enumerate(exam.rows):
        cells = []
        for name, _, _ in layout.columns:
            printed, value = _cell(row, name, layout)
            cells.append(printed)
            if name in ("kvp", "ma", "ctdivol", "dlp"):
                truth[f"rows[{i}].{name}"] = value
        text_row(cells)
    y += line // 2
    total = round(exam.total_dlp, layout.decimals["dlp"])
    draw.text(
        (x0, y),
        f"{layout.total_label} {total:.{layout.decimals['dlp']}f} {layout.total_unit}",
        fill=layout.foreground,
        font=font,
    )
    truth["total_dlp"] = total
    return image, truth


def _column_widths(layout: Layout, font_px: int) -> list[int]:
    chars = {"description": 19, "kind": 12, "number": 7, "phantom": 9, "kvp": 6, "ma": 6}
    return [int(font_px * 0.62 * chars.get(name, 10)) for name, _, _ in layout.columns]


def _cell(row: Row, name: str, layout: Layout) -> tuple[str, float | None]:
    if name == "number":
        return str(row.number), None
    if name == "description":
        return row.description, None
    if name == "kind":
        return layout.kinds.get(row.kind, row.kind), None
    if name == "phantom":
        return row.phantom or "-", None
    value = getattr(row, name)
    if value is None:
        return "-", None
    decimals = layout.decimals.get(name, 0)
    rounded = round(float(value), decimals)
    return f"{rounded:.{decimals}f}", rounded


def _phantom(meaning: str | None) -> str | None:
    if not meaning:
        return None
    return "Head 16" if "Head" in meaning else "Body 32"


def degrade(image: Image.Image, how: str, layout: Layout) -> Image.Image:
    if how == "low-contrast":  # text a few grey levels from its background, slightly blurred
        low = layout.background + (layout.foreground - layout.background) * 0.35
        pixels = np.asarray(image, dtype=np.float32)
        scaled = layout.background + (pixels - layout.background) * (low - layout.background) / (
            layout.foreground - layout.background
        )
        return Image.fromarray(scaled.clip(0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(0.6)
        )
    if how == "shifted":  # the page moved and turned a little, as a re-captured screen is
        shifted = Image.new("L", image.size, layout.background)
        shifted.paste(image, (image.size[0] // 20, image.size[1] // 16))
        return shifted.rotate(0.8, resample=Image.Resampling.BICUBIC, fillcolor=layout.background)
    return image


def wrap(image: Image.Image, exam: Exam, layout: Layout, as_jpeg: bool) -> Dataset:
    """A Secondary Capture of the page; `as_jpeg`: lossy JPEG Baseline, quality 35."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.Modality = "CT"
    ds.ConversionType = "WSD"
    ds.Manufacturer = layout.manufacturer
    ds.ManufacturerModelName = exam.model
    ds.StudyInstanceUID = exam.study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesDescription = layout.series_description
    ds.SeriesNumber = 999
    ds.InstanceNumber = 1
    ds.ImageType = list(layout.image_type)
    ds.PatientID = exam.patient_id
    ds.StudyDate = exam.date.replace("-", "")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = image.size[1], image.size[0]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if as_jpeg:
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=35)
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PixelData = encapsulate([out.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
    else:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = image.tobytes()
    return ds


def to_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


__all__ = ["DEGRADATIONS", "LAYOUTS", "SIZES", "Page", "exams", "page", "pages", "to_bytes"]
