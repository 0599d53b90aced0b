"""Dose from image headers (no RDSR): DX/CR/PX/RF/XA and MG images, CT images.

Each projection image is one irradiation event; the study's totals are summed over its
events by the mapping. CT images give one event per acquisition (series): only ORIGINAL
PRIMARY images count, so reconstructions and derived images never add exposures (I7).
Units come from the attribute definitions (PS3.3): DAP (0018,115E) in dGy.cm2, Organ Dose
(0040,0316) in dGy, Exposure (0018,1152) in mAs; the unit table converts them.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import replace
from datetime import datetime

from pydicom.dataset import Dataset

from server.dicom import header
from server.dicom.header import number, text
from server.dicom.sr import coded
from server.dicom.text import combine, parse_datetime
from server.dose.model import (
    Coded,
    CtEvent,
    CtSource,
    DoseReport,
    Finding,
    ProjectionEvent,
    XRayFilter,
)
from server.dose.units import UnitTable
from server.mappings import read_csv_rows

PROJECTION_MODALITIES = ("DX", "CR", "PX", "MG", "RF", "XA")
_LATERALITY = {
    "L": Coded("SCT", "7771000", "Left"),
    "R": Coded("SCT", "24028007", "Right"),
    "B": Coded("SCT", "51440002", "Right and left"),
}
_MATERIALS = {
    "ALUMINUM": Coded("SCT", "256506002", "Aluminum or Aluminum compound"),
    "COPPER": Coded("SCT", "256504004", "Copper or Copper compound"),
    "MOLYBDENUM": Coded("SCT", "256505003", "Molybdenum or Molybdenum compound"),
    "RHODIUM": Coded("SCT", "256507006", "Rhodium or Rhodium compound"),
    "SILVER": Coded("SCT", "256508001", "Silver or Silver compound"),
    "TUNGSTEN": Coded("SCT", "256509009", "Tungsten or Tungsten compound"),
    "LEAD": Coded("SCT", "256510004", "Lead or Lead compound"),
}
_GLANDULARITY = re.compile(r"(\d+(?:\.\d+)?)\s*%")


def has_projection_dose(ds: Dataset) -> bool:
    """Whether an image carries anything that describes its exposure."""
    keywords = (
        "ImageAndFluoroscopyAreaDoseProduct",
        "EntranceDoseInmGy",
        "OrganDose",
        "ExposureIndex",
        "RelativeXRayExposure",
        "KVP",
        "ExposureInuAs",
        "Exposure",
    )
    return any(number(ds, k) is not None for k in keywords)


def projection_report(ds: Dataset, modality: str, units: UnitTable) -> DoseReport:
    findings: list[Finding] = []
    study = header.study(ds)
    event = _projection_event(ds, modality, units, findings)
    report = DoseReport(
        kind="projection",
        source=replace(header.source(ds, None, "image-header"), information_source=_FROM_IMAGE),
        patient=header.patient(ds, study.started.date() if study.started else None),
        study=study,
        equipment=header.equipment(ds, modality),
        procedure_reported=Coded("SCT", "71651007", "Mammography")
        if modality == "MG"
        else Coded("DCM", "113704", "Projection X-Ray"),
        irradiation_start=event.started,
        projection_events=(event,),
    )
    return replace(report, findings=tuple(findings))


_FROM_IMAGE = Coded("DCM", "113866", "Copied From Image Attributes")


def _projection_event(
    ds: Dataset, modality: str, units: UnitTable, findings: list[Finding]
) -> ProjectionEvent:
    def converted(keyword: str, unit: str, target: str) -> float | None:
        value = number(ds, keyword)
        return None if value is None else units.convert(value, unit, target)

    fix = _fixes(text(ds, "Manufacturer"), text(ds, "ManufacturerModelName"))
    organ_dose = (
        converted("OrganDose", "dGy", "mGy")
        if modality == "MG" or text(ds, "OrganExposed") == "BREAST"
        else None
    )
    width, height = _field_of_view(ds)
    view = ds.get("ViewCodeSequence")
    return ProjectionEvent(
        event_uid=event_uid(ds),
        started=_acquired(ds),
        plane=Coded("DCM", "113622", "Single Plane"),
        event_type=Coded("DCM", "113611", "Stationary Acquisition"),
        protocol=text(ds, "ProtocolName")
        or text(ds, "AcquisitionDeviceProcessingDescription")
        or text(ds, "SeriesDescription"),
        target_region=body_region(ds),
        laterality=_LATERALITY.get(
            (text(ds, "ImageLaterality") or text(ds, "Laterality") or "").upper()
        ),
        image_view=coded(view[0])
        if view
        else (Coded("", "", text(ds, "ViewPosition") or "") if text(ds, "ViewPosition") else None),
        dap_gy_m2=converted("ImageAndFluoroscopyAreaDoseProduct", "dGy.cm2", "Gy.m2"),
        entrance_exposure_mgy=number(ds, "EntranceDoseInmGy")
        or converted("EntranceDose", "dGy", "mGy")
        or None,
        half_value_layer_mm=number(ds, "HalfValueLayer"),
        agd_mgy=organ_dose,
        exposure_index=number(ds, "ExposureIndex"),
        target_exposure_index=number(ds, "TargetExposureIndex"),
        deviation_index=number(ds, "DeviationIndex"),
        relative_xray_exposure=number(ds, "RelativeXRayExposure"),
        sensitivity=number(ds, "Sensitivity"),
        exposure_control_mode=text(ds, "ExposureControlMode"),
        percent_fibroglandular=_glandularity(text(ds, "CommentsOnRadiationDose"))
        if modality == "MG"
        else None,
        kvp_kv=number(ds, "KVP"),
        # one current for the whole exposure: the header's tube current is its average
        average_tube_current_ma=number(ds, "XRayTubeCurrent")
        or converted("XRayTubeCurrentInuA", "uA", "mA"),
        exposure_time_ms=number(ds, "ExposureTime") or converted("ExposureTimeInuS", "us", "ms"),
        exposure_uas=number(ds, "ExposureInuAs") or converted("Exposure", "mA.s", "uA.s"),
        focal_spot_mm=number(ds, "FocalSpots"),
        anode_target=_material(text(ds, "AnodeTargetMaterial")),
        collimated_field_area_m2=units.convert(width * height, "mm2", "m2")
        if width and height
        else None,
        collimated_field_height_mm=height,
        collimated_field_width_mm=width,
        grids=tuple(
            Coded("", "", g) for g in header.many(ds.get("Grid")) if str(g) not in ("", "NONE")
        ),
        filters=filters(ds),
        primary_angle_deg=number(ds, "PositionerPrimaryAngle"),
        secondary_angle_deg=number(ds, "PositionerSecondaryAngle"),
        column_angulation_deg=number(ds, "ColumnAngulation")
        or (number(ds, "PositionerPrimaryAngle") if modality == "MG" else None),
        compression_thickness_mm=number(ds, "BodyPartThickness") if modality == "MG" else None,
        compression_force_n=number(ds, "CompressionForce"),
        source_to_detector_mm=_fixed(ds, "DistanceSourceToDetector", fix),
        source_to_entrance_mm=number(ds, "DistanceSourceToEntrance"),
        grid_focal_distance_mm=number(ds, "GridFocalDistance"),
        magnification_factor=number(ds, "EstimatedRadiographicMagnificationFactor"),
    )


def ct_image_report(ds: Dataset, units: UnitTable) -> DoseReport | str:
    """One CT acquisition from an image, or why the image adds no exposure."""
    image_type = [str(v).upper() for v in header.many(ds.get("ImageType"))]
    if image_type[:2] != ["ORIGINAL", "PRIMARY"]:
        return f"CT image of type {'/'.join(image_type) or 'unknown'}: not an original primary acquisition, adds no exposure (I7)"
    ctdivol = number(ds, "CTDIvol")
    if ctdivol is None:
        return "CT image without CTDIvol (0018,9345): no dose to read"
    study = header.study(ds)
    phantom = ds.get("CTDIPhantomTypeCodeSequence")
    position = _numbers(ds.get("ImagePositionPatient"))
    z = position[2] if len(position) == 3 else None
    event = CtEvent(
        event_uid=text(ds, "IrradiationEventUID")
        or derived_uid("ct-series", str(ds.get("SeriesInstanceUID", ""))),
        started=_acquired(ds),
        protocol=text(ds, "ProtocolName") or text(ds, "SeriesDescription"),
        target_region=body_region(ds),
        pitch=number(ds, "SpiralPitchFactor"),
        single_collimation_mm=number(ds, "SingleCollimationWidth"),
        total_collimation_mm=number(ds, "TotalCollimationWidth"),
        exposure_time_s=units.convert(t, "ms", "s")
        if (t := number(ds, "ExposureTime")) is not None
        else None,
        sources=(
            CtSource(
                kvp_kv=number(ds, "KVP"),
                tube_current_ma=number(ds, "XRayTubeCurrent"),
                exposure_time_per_rotation_s=number(ds, "RevolutionTime"),
            ),
        ),
        top_z_mm=z,
        bottom_z_mm=z,
        ctdivol_mgy=ctdivol,
        phantom=coded(phantom[0]) if phantom else None,
        water_equivalent_diameter_mm=number(ds, "WaterEquivalentDiameter"),
        modulation_type=text(ds, "ExposureModulationType"),
    )
    return DoseReport(
        kind="ct",
        source=replace(header.source(ds, None, "image-header"), information_source=_FROM_IMAGE),
        patient=header.patient(ds, study.started.date() if study.started else None),
        study=study,
        equipment=header.equipment(ds, "CT"),
        procedure_reported=Coded("SCT", "77477000", "Computed Tomography X-Ray"),
        irradiation_start=event.started,
        ct_events=(event,),
    )


def event_uid(ds: Dataset) -> str:
    """Irradiation Event UID (0008,3010), or one derived from what identifies an exposure.

    A For Processing and a For Presentation image of one exposure share study, acquisition
    time, laterality, view and technique, so they get the same derived UID: one event.
    """
    declared = text(ds, "IrradiationEventUID")
    if declared:
        return declared
    parts = [
        str(ds.get("StudyInstanceUID", "")),
        text(ds, "AcquisitionDateTime")
        or f"{text(ds, 'AcquisitionDate') or ''}{text(ds, 'AcquisitionTime') or ''}",
        text(ds, "ImageLaterality") or "",
        text(ds, "ViewPosition") or "",
        str(number(ds, "KVP")),
        str(number(ds, "ExposureInuAs") or number(ds, "Exposure")),
    ]
    if not parts[1]:  # no acquisition time: each image stands alone
        parts.append(str(ds.get("SOPInstanceUID", "")))
    return derived_uid("exposure", "|".join(parts))


def derived_uid(kind: str, key: str) -> str:
    """A valid DICOM UID under the UUID root (2.25), stable for the same key."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'kerma:{kind}:{key}').int}"


def _acquired(ds: Dataset) -> datetime | None:
    return (
        parse_datetime(text(ds, "AcquisitionDateTime") or "")
        or combine(text(ds, "AcquisitionDate"), text(ds, "AcquisitionTime"))
        or combine(text(ds, "ContentDate"), text(ds, "ContentTime"))
    )


def filters(ds: Dataset) -> tuple[XRayFilter, ...]:
    """FilterMaterial with one thickness pair per material (some devices write min > max)."""
    materials = [
        m.strip()
        for value in header.many(ds.get("FilterMaterial"))
        for m in str(value).split(",")
        if m.strip()
    ]
    minima = _numbers(ds.get("FilterThicknessMinimum"))
    maxima = _numbers(ds.get("FilterThicknessMaximum"))
    filters = []
    for i, name in enumerate(materials):
        if name.upper() == "NONE":
            continue
        low = minima[i] if i < len(minima) else None
        high = maxima[i] if i < len(maxima) else None
        if low is not None and high is not None and low > high:
            low, high = high, low
        filters.append(
            XRayFilter(material=_material(name), thickness_min_mm=low, thickness_max_mm=high)
        )
    return tuple(filters)


def _numbers(value: object) -> list[float]:
    out = []
    for item in header.many(value):
        for part in str(item).split(","):
            try:
                out.append(float(part))
            except ValueError:
                continue
    return out


def _material(name: str | None) -> Coded | None:
    if not name:
        return None
    return _MATERIALS.get(name.strip().upper(), Coded("", "", name.strip()))


def _field_of_view(ds: Dataset) -> tuple[float | None, float | None]:
    dims = _numbers(ds.get("FieldOfViewDimensions"))
    if len(dims) >= 2:
        return dims[1], dims[0]  # (row, column) dimensions: width is the second
    return None, None


def _glandularity(comment: str | None) -> float | None:
    match = _GLANDULARITY.search(comment or "")
    return float(match.group(1)) if match else None


@functools.cache
def _fix_table() -> dict[tuple[str, str, str], float]:
    return {
        (r["manufacturer"].upper(), r["model"].upper(), r["attribute"]): float(r["factor"])
        for r in read_csv_rows("dicom/header_fixes.csv")
    }


def _fixes(manufacturer: str | None, model: str | None) -> dict[str, float]:
    key = ((manufacturer or "").upper(), (model or "").upper())
    return {attr: factor for (m, mo, attr), factor in _fix_table().items() if (m, mo) == key}


def _fixed(ds: Dataset, keyword: str, fixes: dict[str, float]) -> float | None:
    value = number(ds, keyword)
    return None if value is None else value * fixes.get(keyword, 1.0)


def body_region(ds: Dataset) -> Coded | None:
    """The body region of an image: Body Part Examined, else the first code of its Anatomic
    Region Sequence (some modalities fill only the coded one)."""
    part = text(ds, "BodyPartExamined")
    if part:
        return Coded("", "", part)
    regions = ds.get("AnatomicRegionSequence")
    return coded(regions[0]) if regions else None
