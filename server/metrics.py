"""What Kerma counts for monitoring, exposed at /metrics in Prometheus's text format.

`kerma serve` runs the spool worker in a child process, so its counters live in files
(prometheus_client's multiprocess mode: PROMETHEUS_MULTIPROC_DIR, set by `kerma serve` before
this module is imported) and /metrics adds the processes up. Elsewhere (tests, one-off
commands) they are plain counters of the process.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

RECEIVED = Counter(
    "kerma_objects_received", "DICOM objects received and spooled, by SOP class", ["sop_class"]
)
INGESTED = Counter(
    "kerma_objects_ingested",
    "Dose objects processed, by modality and outcome (ingested, duplicate, skipped, quarantined)",
    ["modality", "status"],
)
INGEST_SECONDS = Histogram(
    "kerma_ingest_seconds", "Time to read and store one dose object", buckets=_SECONDS
)
HTTP_SECONDS = Histogram(
    "kerma_http_request_seconds",
    "HTTP request latency, by method, route and status class",
    ["method", "route", "status"],
    buckets=_SECONDS,
)
HL7_MESSAGES = Counter(
    "kerma_hl7_messages", "HL7 v2 messages answered, by message type and ACK code",
    ["message_type", "ack_code"],
)  # fmt: skip
DELIVERIES = Counter(
    "kerma_deliveries",
    "Notifications and outbound messages by channel (email, rest-hook, hl7-oru, dicom-forward, "
    "fhir-push) and outcome (sent, failed, stopped)",
    ["channel", "outcome"],
)
