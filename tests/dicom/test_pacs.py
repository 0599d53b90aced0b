"""Query/retrieve against a real PACS: Orthanc from Debian, started here on loopback.

Corpus files are uploaded through Orthanc's DICOM port; Kerma then pulls them by C-GET (and
by C-MOVE to its own SCP) and must end with what reading the same files from disk gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from pynetdicom import AE

from server.cli import main
from server.config import Settings
from server.dicom.pacs import Pacs, PacsError
from server.dicom.spool import Spool
from server.dicom.transport import NO_DELAY
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.ingest.pull import PullState, matching_studies, pacs_config, pull
from server.ingest.spool_worker import SpoolWorker
from server.network import PacsSchedule, start_dicom
from server.site import build_service
from server.store.port import Store
from tests.dicom.conftest import (
    CORPUS,
    ORTHANC,
    DoseReports,
    dose_reports,
    free_port,
    ingest_directly,
    orthanc_running,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    not Path(ORTHANC).exists(), reason="Orthanc is installed by scripts/setup"
)
OPENREM = CORPUS / "openrem"
UPLOADED = [
    OPENREM / "CT-RDSR-Siemens_Flash-TAP-SS.dcm",  # an RDSR
    *(OPENREM / f"CT-RDSR-Siemens-Multi-{i}.dcm" for i in (1, 2, 3)),  # 3 RDSRs, one study
    *(OPENREM / f"DX-Im-GE_XR220-{i}.dcm" for i in (1, 2, 3)),  # no RDSR: image headers
    CORPUS / "other" / "fo-dicom" / "GH1376.dcm",  # Hologic tomosynthesis as a CT image
    OPENREM / "NM-NmIm-Siemens-s1-1.dcm",  # NM: outside the modalities pulled
]
PULLED = UPLOADED[:-1]
MODALITIES = ("CT", "DX", "MG")


@pytest.fixture(scope="module")
def kerma_port() -> int:
    """Where Kerma's SCP listens in the C-MOVE test; Orthanc must know it before it starts."""
    return free_port()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, kerma_port: int) -> Iterator[int]:
    """A running Orthanc with the corpus selection; yields its DICOM port."""
    folder = tmp_path_factory.mktemp("orthanc")
    kerma = {"kerma": ["KERMA", "127.0.0.1", kerma_port]}
    with orthanc_running(folder, DicomModalities=kerma) as (port, _):
        _upload(port)
        yield port


def _upload(port: int) -> None:
    datasets = [pydicom.dcmread(path) for path in UPLOADED]
    ae = AE(ae_title="UPLOADER")
    for uid in {str(ds.SOPClassUID) for ds in datasets}:
        ae.add_requested_context(uid)
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC", evt_handlers=[NO_DELAY])
    for ds in datasets:
        assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()


def _settings(tmp_path: Path, orthanc: int, retrieve: str = "get") -> Settings:
    return Settings(
        data_dir=tmp_path,
        pacs_ae_title="ORTHANC",
        pacs_port=orthanc,
        pacs_retrieve=retrieve,
    )


def _expected(tmp_path: Path) -> DoseReports:
    return ingest_directly(PULLED, tmp_path / "direct")[0]


def _pull(settings: Settings, store: Store, limit: int | None = None) -> list[str]:
    spool = Spool(settings.spool_dir)
    state = PullState(settings.data_dir / "pacs" / "pulled.json")
    service = build_service(store, settings)
    with Pacs(pacs_config(settings), spool, lambda: None) as pacs:
        studies = matching_studies(pacs, date(1990, 1, 1), None, MODALITIES)[:limit]
        statuses = [o.status for o in pull(pacs, studies, state, service)]
    SpoolWorker(spool, build_ingestor(store, settings)).drain_unless_busy()
    return statuses


def test_pull_by_c_get_fetches_the_dose_objects_and_skips_what_is_complete(
    orthanc: int, store: Store, service: FhirService, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, orthanc)
    assert sorted(_pull(settings, store)) == ["pulled"] * 4
    assert dose_reports(service) == _expected(tmp_path)

    # again: studies with an RDSR are complete, the others unchanged on the PACS
    assert sorted(_pull(settings, store)) == ["complete", "complete", "unchanged", "unchanged"]


def test_an_interrupted_pull_resumes_where_it_stopped(
    orthanc: int, store: Store, service: FhirService, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, orthanc)
    assert _pull(settings, store, limit=2) == ["pulled", "pulled"]
    again = _pull(settings, store)
    assert len(again) == 4 and again.count("pulled") == 2
    assert dose_reports(service) == _expected(tmp_path)


def test_pull_by_c_move_goes_through_the_scp(
    orthanc: int, kerma_port: int, store: Store, service: FhirService, tmp_path: Path
) -> None:
    settings = replace(_settings(tmp_path, orthanc, "move"), dicom_port=kerma_port)
    listener = start_dicom(settings, store)
    try:
        spool = Spool(settings.spool_dir)
        state = PullState(settings.data_dir / "pacs" / "pulled.json")
        with Pacs(pacs_config(settings), spool, lambda: None) as pacs:
            studies = matching_studies(pacs, date(1990, 1, 1), None, MODALITIES)
            outcomes = list(pull(pacs, studies, state, build_service(store, settings)))
        assert sum(o.objects for o in outcomes) == 8  # 4 RDSRs, 3 DX images, GH1376
        wait_until(lambda: listener.spool.pending() == [] and len(dose_reports(service)) == 4)
    finally:
        listener.stop()
    assert dose_reports(service) == _expected(tmp_path)


def test_the_cli_pulls_with_a_progress_bar_and_a_summary(orthanc: int, tmp_path: Path) -> None:
    env = {
        "KERMA_DATA_DIR": str(tmp_path),
        "KERMA_PACS_AE_TITLE": "ORTHANC",
        "KERMA_PACS_PORT": str(orthanc),
    }
    result = CliRunner().invoke(
        main, ["pacs", "pull", "--since", "2014-01-01", "--modality", "DX,CT"], env=env
    )
    assert result.exit_code == 0, result.output
    # since 2014: the DX study, GH1376 (2022) and the SR-only Siemens Multi study (2018)
    assert "3 studies pulled (7 objects, 0 failed)" in result.output
    assert "objects stored" in result.output


def test_an_unreachable_pacs_is_a_clear_error(tmp_path: Path) -> None:
    env = {
        "KERMA_DATA_DIR": str(tmp_path),
        "KERMA_PACS_AE_TITLE": "NOWHERE",
        "KERMA_PACS_PORT": str(free_port()),
    }
    result = CliRunner().invoke(main, ["pacs", "pull", "--since", "2024-01-01"], env=env)
    assert result.exit_code == 1
    assert "no association with NOWHERE" in result.output
    nowhere = pacs_config(Settings(pacs_ae_title="X", pacs_port=free_port()))
    with pytest.raises(PacsError), Pacs(nowhere, Spool(tmp_path), lambda: None):
        pass


def test_the_scheduled_pull_of_kerma_serve(
    orthanc: int, store: Store, service: FhirService, tmp_path: Path
) -> None:
    settings = replace(_settings(tmp_path, orthanc), pacs_pull_days=365 * 40, dicom_port=0)
    listener = start_dicom(settings, store)  # its spool worker stores what the pull brings
    try:
        tally = PacsSchedule(settings, store, listener.worker.notify).pull_once()
        # every modality: the NM study is looked at too, but holds no dose object to fetch
        assert tally["pulled"] == 5 and tally["objects"] == 8
        wait_until(lambda: listener.spool.pending() == [] and len(dose_reports(service)) == 4)
    finally:
        listener.stop()
    assert dose_reports(service) == _expected(tmp_path)
