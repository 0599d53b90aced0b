"""Device: the modality, keyed by what identifies it, and how people name it."""

from __future__ import annotations

from typing import Any

from server.dose.model import Equipment
from server.fhir.mapping.codes import (
    AE_TITLE_SYSTEM,
    DCM,
    KERMA_DEVICE_KEY,
    SERIAL_NUMBER_TYPE,
)
from server.fhir.mapping.context import identifier_type, uid_identifier


def device_key(equipment: Equipment) -> str:
    """Kerma's identity of a physical modality: the same scanner is found again by it."""
    parts = [
        equipment.manufacturer,
        equipment.model,
        equipment.serial_number or equipment.station_name or equipment.device_uid,
    ]
    return "|".join((part or "").strip().upper() for part in parts)


def device(eq: Equipment, modality: str) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = [{"system": KERMA_DEVICE_KEY, "value": device_key(eq)}]
    if eq.serial_number:
        identifiers.append({"type": SERIAL_NUMBER_TYPE, "value": eq.serial_number})
    if eq.device_uid:
        identifiers.append({**uid_identifier(eq.device_uid, "device-uid")})
    if eq.ae_title:
        identifiers.append(ae_title_identifier(eq.ae_title))
    resource: dict[str, Any] = {
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
    device_names = [{"name": name, "type": kind} for kind, name in names if name]
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


def ae_title_identifier(title: str) -> dict[str, Any]:
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
    """How people name a device: manufacturer, model and station name."""
    names = {n.get("type"): n.get("name") for n in device.get("deviceName") or []}
    kinds = ("manufacturer-name", "model-name", "user-friendly-name")
    return " ".join(str(names[k]) for k in kinds if names.get(k))
