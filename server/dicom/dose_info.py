"""CT dose screens whose values are in DICOM attributes too (Philips "Dose Info").

The secondary capture carries, beside its picture, one Exposure Dose Sequence item per series
and the DLPs in a private attribute (mappings/dicom/dose_info_tags.yaml): those are read, so
the pixels need no OCR. Units are the attributes' own: current in uA, exposure time in ms,
scan length and collimation in mm.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from pydicom.dataset import Dataset

from server.dicom import header
from server.dicom.header import number, text
from server.dicom.image_header import derived_uid
from server.dose.model import Coded, CtEvent, CtSource, CtTotals, DoseReport
from server.dose.units import UnitTable
from server.mappings import read_yaml

_FROM_IMAGE = Coded("DCM", "113866", "Copied From Image Attributes")


@functools.cache
def _table() -> dict[str, Any]:
    return read_yaml("dicom/dose_info_tags.yaml")  # type: ignore[no-any-return]


def has_dose_tags(ds: Dataset) -> bool:
    spec = _table()["philips_ct"]
    image_type = [str(v).upper() for v in header.many(ds.get("ImageType"))]
    return (
        spec["manufacturer"] in (text(ds, "Manufacturer") or "").lower()
        and spec["image_type"] in image_type
        and bool(ds.get("ExposureDoseSequence"))
    )


def dose_info_report(ds: Dataset, units: UnitTable) -> DoseReport:
    study = header.study(ds)
    events = tuple(
        _event(item, i, ds, units)
        for i, item in enumerate(ds.ExposureDoseSequence, start=1)
        if number(item, "CTDIvol") is not None
    )
    source = header.source(ds, None, "dose-info")
    return DoseReport(
        kind="ct",
        source=replace(source, information_source=_FROM_IMAGE),
        patient=header.patient(ds, study.started.date() if study.started else None),
        study=study,
        equipment=header.equipment(ds, "CT"),
        procedure_reported=Coded("SCT", "77477000", "Computed Tomography X-Ray"),
        irradiation_start=source.content_datetime,
        ct_totals=CtTotals(total_events=len(events), dlp_total_mgy_cm=_dlp(ds, units)),
        ct_events=events,
    )


def _event(item: Dataset, index: int, ds: Dataset, units: UnitTable) -> CtEvent:
    kind = _table()["acquisition_types"].get((text(item, "AcquisitionType") or "").upper())
    current_ua = number(item, "XRayTubeCurrentInuA")
    time_ms = number(item, "ExposureTime")
    return CtEvent(
        event_uid=derived_uid("dose-info", f"{ds.SOPInstanceUID}|{index}"),
        protocol=text(item, "SeriesDescription") or text(ds, "ProtocolName"),
        acquisition_type=Coded(kind["scheme"], kind["code"], kind["meaning"]) if kind else None,
        scanning_length_mm=number(item, "ScanLength"),
        exposure_time_s=units.convert(time_ms, "ms", "s") if time_ms is not None else None,
        single_collimation_mm=number(item, "SingleCollimationWidth"),
        total_collimation_mm=number(item, "TotalCollimationWidth"),
        pitch=number(item, "SpiralPitchFactor"),
        sources=(
            CtSource(
                kvp_kv=number(item, "KVP"),
                tube_current_ma=units.convert(current_ua, "uA", "mA")
                if current_ua is not None
                else None,
            ),
        ),
        ctdivol_mgy=number(item, "CTDIvol"),
        dlp_mgy_cm=_dlp(item, units),
    )


def _dlp(ds: Dataset, units: UnitTable) -> float | None:
    spec = _table()["philips_ct"]["dlp"]
    try:
        value = ds.private_block(spec["group"], spec["private_creator"])[spec["element"]].value
        mgy_cm = float(value)
    except (KeyError, TypeError, ValueError):  # no such attribute, or not a number
        return None
    return units.convert(mgy_cm, spec["unit"], "mGy.cm")
