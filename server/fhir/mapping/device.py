"""Device: the modality, keyed by what identifies it, and how people name it."""

from __future__ import annotations

from typing import Any

from server.dose.model import Equipment
from server.fhir.datatypes import Device, DeviceName, Identifier
from server.fhir.mapping.codes import (
    AE_TITLE_SYSTEM,
    DCM,
    KERMA_DEVICE_KEY,
    SERIAL_NUMBER_TYPE,
)
from server.fhir.mapping.context import identifier_type, uid_identifier

# the name a site gives a device in Kerma (DeviceNameType "other": the modality's station name
# is its user-friendly-name already); statistics, pages and reports show it
SITE_NAME_TYPE = "other"


def device_key(equipment: Equipment) -> str:
    """Kerma's identity of a physical modality: the same scanner is found again by it."""
    parts = [
        equipment.manufacturer,
        equipment.model,
        equipment.serial_number or equipment.station_name or equipment.device_uid,
    ]
    return "|".join((part or "").strip().upper() for part in parts)


def device(eq: Equipment, modality: str) -> Device:
    identifiers: list[Identifier] = [{"system": KERMA_DEVICE_KEY, "value": device_key(eq)}]
    if eq.serial_number:
        identifiers.append({"type": SERIAL_NUMBER_TYPE, "value": eq.serial_number})
    if eq.device_uid:
        identifiers.append(uid_identifier(eq.device_uid, "device-uid"))
    if eq.ae_title:
        identifiers.append(ae_title_identifier(eq.ae_title))
    resource: Device = {
        "resourceType": "Device",
        "identifier": identifiers,
        "status": "active",
        "type": {"coding": [{"system": DCM, "code": modality}]},
    }
    if eq.manufacturer:
        resource["manufacturer"] = eq.manufacturer
    names = [
        ("manufacturer-name", eq.manufacturer),
        ("model-name", eq.model),
        ("user-friendly-name", eq.station_name),
    ]
    device_names: list[DeviceName] = [{"name": name, "type": kind} for kind, name in names if name]
    if device_names:
        resource["deviceName"] = device_names
    if eq.model:
        resource["modelNumber"] = eq.model
    if eq.serial_number:
        resource["serialNumber"] = eq.serial_number
    if eq.software_versions:
        resource["version"] = [{"value": v} for v in eq.software_versions]
    if eq.institution:
        resource["owner"] = {"display": eq.institution}
    if eq.department:
        resource["location"] = {"display": eq.department}
    return resource


def ae_title_identifier(title: str) -> Identifier:
    """The device's AE title: Kerma's system (the SCP's registry of senders) and the IG's type."""
    return {
        "system": AE_TITLE_SYSTEM,
        "type": identifier_type("application-entity"),
        "value": title,
    }


def device_identity(device: dict[str, Any]) -> dict[str, str]:
    """What a device table shows of a Device: name, type, manufacturer, model, station name,
    serial number, software versions, department."""
    names = {n.get("type"): n.get("name") for n in device.get("deviceName") or []}
    return {
        "name": device_label(device),
        "type": str(((device.get("type") or {}).get("coding") or [{}])[0].get("code", "")),
        "manufacturer": str(device.get("manufacturer", "")),
        "model": str(device.get("modelNumber", "")),
        "station_name": str(names.get("user-friendly-name") or ""),
        "serial_number": str(device.get("serialNumber", "")),
        "software_versions": "; ".join(str(v.get("value")) for v in device.get("version") or []),
        "department": str((device.get("location") or {}).get("display", "")),
    }


def device_label(device: dict[str, Any]) -> str:
    """How people name a device: the name the site gave it, else manufacturer, model and
    station name."""
    names = {n.get("type"): n.get("name") for n in device.get("deviceName") or []}
    if names.get(SITE_NAME_TYPE):
        return str(names[SITE_NAME_TYPE])
    kinds = ("manufacturer-name", "model-name", "user-friendly-name")
    return " ".join(str(names[k]) for k in kinds if names.get(k))


def with_site_name(device: dict[str, Any], name: str) -> dict[str, Any]:
    """The Device with the name the site calls it by ("" removes it); the station name the
    modality sends stays its user-friendly-name."""
    kept = [n for n in device.get("deviceName") or [] if n.get("type") != SITE_NAME_TYPE]
    names = kept + ([{"name": name, "type": SITE_NAME_TYPE}] if name else [])
    changed = {k: v for k, v in device.items() if k != "deviceName"}
    return {**changed, "deviceName": names} if names else changed


def with_ae_titles(device: dict[str, Any], titles: list[str]) -> dict[str, Any]:
    """The Device with exactly these AE titles (the DICOM listener's registry of senders)."""
    kept = [i for i in device.get("identifier", []) if i.get("system") != AE_TITLE_SYSTEM]
    return {**device, "identifier": kept + [ae_title_identifier(t) for t in titles]}


def ae_titles(device: dict[str, Any]) -> list[str]:
    return [str(i["value"]) for i in device.get("identifier", [])
            if i.get("system") == AE_TITLE_SYSTEM and i.get("value")]  # fmt: skip


# a device's table geometry for skin dose maps, set by the site: where the reported table
# positions put the isocentre at the phantom's reference (mm), and each axis's direction
TABLE_GEOMETRY_URL = "https://kerma.example.org/fhir/StructureDefinition/table-geometry"
TABLE_AXES = ("longitudinal", "lateral", "height")


def table_geometry(device: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(offsets in mm, directions ±1) per axis, when the site set them on the device."""
    found = next(
        (e for e in device.get("extension", []) if e.get("url") == TABLE_GEOMETRY_URL), None
    )
    if found is None:
        return None
    parts = {p["url"]: p for p in found.get("extension", [])}
    offsets = tuple(float(parts[f"{a}OffsetMm"]["valueDecimal"]) for a in TABLE_AXES)
    directions = tuple(float(parts[f"{a}Direction"]["valueInteger"]) for a in TABLE_AXES)
    return offsets, directions


def with_table_geometry(
    device: dict[str, Any],
    offsets: tuple[float, ...] | None,
    directions: tuple[int, ...] = (1, 1, 1),
) -> dict[str, Any]:
    """The Device with this table geometry (None: the one its type gets in mappings/)."""
    kept = [e for e in device.get("extension", []) if e.get("url") != TABLE_GEOMETRY_URL]
    if offsets is not None:
        parts = [
            {"url": f"{a}OffsetMm", "valueDecimal": o}
            for a, o in zip(TABLE_AXES, offsets, strict=True)
        ]
        parts += [
            {"url": f"{a}Direction", "valueInteger": d}
            for a, d in zip(TABLE_AXES, directions, strict=True)
        ]
        kept.append({"url": TABLE_GEOMETRY_URL, "extension": parts})
    changed = {k: v for k, v in device.items() if k != "extension"}
    return {**changed, "extension": kept} if kept else changed
