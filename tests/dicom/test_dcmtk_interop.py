"""A third-party client: dcmtk's storescu sends the whole corpus to Kerma over loopback.

What the network gives must be what reading the same files from disk gives: the same studies,
the same dose reports, the same quarantine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from pydicom import dcmread

from server.config import Settings
from server.dicom.status import Status
from server.fhir import FhirService, build_service
from server.ingest import build_ingestor
from server.ingest.quarantine import Quarantine
from server.network import DicomListener
from server.store.sqlite import SqliteStore
from tests.dicom.conftest import CORPUS, Connect, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("storescu") is None, reason="dcmtk is installed by scripts/setup"
)
FILES = sorted(CORPUS.rglob("*.dcm"))


def _reports(service: FhirService) -> dict[str, tuple[frozenset[str], int]]:
    """Per study: the SOP Instance UIDs its dose summary was read from, and its event count."""
    found: dict[str, tuple[frozenset[str], int]] = {}
    for stored in service.search("Observation", [("code", "73569-6"), ("_count", "1000")]).matches:
        summary = orjson.loads(stored.body or b"")
        study = summary["partOf"][0]["reference"]
        events = service.search("Observation", [("part-of", study), ("code", "113852")]).total
        uids = frozenset(i["value"] for i in summary["identifier"])
        found[_study_uid(service, study)] = (uids, events or 0)
    return found


def _study_uid(service: FhirService, ref: str) -> str:
    study = orjson.loads(service.read(*ref.split("/")).body or b"")
    return str(study["identifier"][0]["value"])


def test_storescu_sends_the_corpus_and_every_file_is_ingested(
    listener: DicomListener,
    connect: Connect,
    service: FhirService,
    dicom_settings: Settings,
    tmp_path: Path,
) -> None:
    command = ["storescu", "-aet", "DCMTK", "-aec", "KERMA", "--no-halt", "+sd", "+r", "+sp"]
    sent = subprocess.run(
        [*command, "*.dcm", "127.0.0.1", str(listener.port), str(CORPUS)],
        env={**os.environ, "TCP_NODELAY": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sent.returncode == 0, sent.stderr
    # storescu cannot encode a header-only image (no Pixel Data) and never sends it: a client-side
    # failure, not a refusal by Kerma, so that file goes over pynetdicom instead
    refused = re.findall(
        r"Store Failed, file: (.+):\nE: 0006:020e DIMSE Failed to send", sent.stderr
    )
    assert [Path(f).name for f in refused] == ["GH133.dcm"]
    for name in refused:
        assert connect().send_c_store(dcmread(name)).Status == Status.SUCCESS
    wait_until(lambda: listener.spool.pending() == [], seconds=120)

    direct = Settings(data_dir=tmp_path / "direct")
    store = SqliteStore(direct.sqlite_path)
    ingestor = build_ingestor(store, direct)
    for path in FILES:
        ingestor.ingest_file(path)
    expected = _reports(build_service(store))
    assert len(expected) > 30
    assert _reports(service) == expected
    # pydicom cannot parse FreezePattern.dcm from disk (an item with VR "NONE"); dcmtk reads it
    # and re-encodes it correctly on sending, so over the network nothing needs quarantine
    assert [q.name for q in Quarantine(direct.quarantine_dir).items()] == ["FreezePattern.dcm"]
    assert Quarantine(dicom_settings.quarantine_dir).items() == []
    store.close()
