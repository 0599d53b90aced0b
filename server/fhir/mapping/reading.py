"""How a value was read (OCR): confidence per value and the status of what waits for review."""

from __future__ import annotations

from typing import Any

from server.dose.model import DoseReport
from server.fhir.mapping.codes import OCR_CONFIDENCE_URL

# the component each value read by OCR is mapped to (DoseReport.confidences paths)
_OCR_COMPONENTS = {
    "ctdivol_mgy": "113830",
    "dlp_mgy_cm": "113838",
    "kvp_kv": "113733",
    "tube_current_ma": "113734",
    "dlp_total_mgy_cm": "113813",
}


def mark_reading(resource: dict[str, Any], report: DoseReport, prefix: str) -> dict[str, Any]:
    """A resource of an OCR report: how sure the reading is of each value (an extension on its
    component), and `preliminary` while doubts wait for review."""
    confidences = {
        _OCR_COMPONENTS[path.removeprefix(prefix)]: c
        for path, c in report.confidences
        if path.startswith(prefix) and path.removeprefix(prefix) in _OCR_COMPONENTS
    }
    for component in resource.get("component", []):
        confidence = confidences.get(component["code"]["coding"][0]["code"])
        if confidence is not None:
            component["extension"] = [
                {"url": OCR_CONFIDENCE_URL, "valueDecimal": round(confidence, 2)}
            ]
    if report.needs_review:
        resource["status"] = "preliminary"
    return resource
