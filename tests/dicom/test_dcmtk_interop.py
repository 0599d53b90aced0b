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

import pytest
from pydicom import dcmread

from server.config import Settings
from server.dicom.status import Status
from server.fhir import FhirService
from server.ingest.quarantine import Quarantine
from server.network import DicomListener
from tests.dicom.conftest import CORPUS, Connect, dose_reports, ingest_directly, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("storescu") is None, reason="dcmtk is installed by scripts/setup"
)
FILES = sorted(CORPUS.rglob("*.dcm"))


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

    expected, quarantined = ingest_directly(FILES, tmp_path / "direct")
    assert len(expected) > 30
    assert dose_reports(service) == expected
    # pydicom cannot parse FreezePattern.dcm from disk (an item with VR "NONE"), and GH179B.dcm
    # is cut short (a private element needs 18,916 bytes more than the file has); dcmtk reads
    # both and re-encodes what it read on sending, so over the network nothing needs quarantine
    assert sorted(quarantined) == ["FreezePattern.dcm", "GH179B.dcm"]
    assert Quarantine(dicom_settings.quarantine_dir).items() == []
