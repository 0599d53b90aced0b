"""Dose results to the RIS: an ingested CT RDSR becomes an ORU^R01 that hl7apy validates
strictly, with the order's numbers and the file's values, received by a test RIS (python-hl7);
a RIS that is down, or dies before it answers, loses and duplicates nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.ingest.hl7 import build_handler
from server.notify.delivery import Dispatcher, Policy
from server.outbound.senders import senders
from server.store.port import Store
from tests.dicom.conftest import CORPUS, SIEMENS_CT
from tests.hl7.conftest import msa
from tests.hl7.test_orders import omi
from tests.outbound.conftest import Ris

PHILIPS_RF = CORPUS / "openrem" / "RF-RDSR-Philips_Azurion.dcm"


def _site(settings: Settings, ris: Ris, version: str = "2.5.1") -> Settings:
    return replace(settings, ris_port=ris.port, ris_hl7_version=version, ris_application="RIS",
                   ris_facility="RAD", ae_title="KERMA", timezone="Europe/London",
                   patient_id_issuer="HOSP")  # fmt: skip


def _dispatcher(service: FhirService, site: Settings) -> Dispatcher:
    return Dispatcher(service, Policy(retry_s=1, attempts=4), senders(service, site))


def _outbound(service: FhirService) -> list[dict[str, Any]]:
    found = service.search("Communication", [("identifier", "urn:kerma:outbound|")]).matches
    import orjson

    return [orjson.loads(s.body or b"") for s in found]


def _segments(text: str, name: str) -> list[list[str]]:
    return [s.split("|") for s in text.split("\r") if s.startswith(name)]


@pytest.mark.parametrize("version", ["2.5.1", "2.3.1"])
def test_an_ingested_ct_rdsr_reaches_the_ris_as_a_valid_oru(
    settings: Settings, store: Store, service: FhirService, ris: Ris, version: str
) -> None:
    site = _site(settings, ris, version)
    assert msa(build_handler(store, site).handle(omi("O1", "ACC12345601")))[1] == "AA"
    assert build_ingestor(store, site).ingest_file(SIEMENS_CT).status == "ingested"
    [queued] = _outbound(service)
    assert (
        queued["status"] == "preparation"
        and queued["category"][0]["coding"][0]["code"] == "hl7-oru"
    )
    assert _dispatcher(service, site).run_once() == 1
    assert ris.results, _outbound(service)[0].get("statusReason")
    [(control, text)] = ris.results.items()
    parsed = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT)
    parsed.validate()  # hl7apy, strict, for the version sent
    [msh_] = _segments(text, "MSH")
    assert msh_[8] == "ORU^R01^ORU_R01" and msh_[11] == version and msh_[9] == control
    [obr] = _segments(text, "OBR")
    assert (obr[2], obr[3], obr[18], obr[25]) == ("P-1", "F-1", "ACC12345601", "F")
    assert obr[4] == "^CT chest (L)"  # the order's procedure, as the ServiceRequest keeps it
    [pid] = _segments(text, "PID")
    assert pid[3] == "123456^^^HOSP^MR" and pid[5] == "SMITH^JOHN" and pid[7] == "19600412"
    obx = _segments(text, "OBX")
    # the file: DLP total 724.52 mGy·cm over 4 events, CTDIvol 0.14, 1.20, 3.61, 9.91 mGy
    assert obx[0][2:4] == ["ST", "73569-6^Radiation exposure and protection information^LN"]
    assert obx[0][5] == ("CT Chest/Abdomen/Pelvis w IV Contrast: 4 acquisitions, "
                         "DLP 724.5 mGy·cm, CTDIvol max 9.91 mGy")  # fmt: skip
    dlp = [o for o in obx if o[3].startswith("113813^")]
    assert [(o[2], o[5], o[6]) for o in dlp] == [("NM", "724.5", "mGy.cm^mGy.cm^UCUM")]
    ctdi = [(o[4], o[5]) for o in obx if o[3].startswith("113830^")]
    assert ctdi == [("1", "0.14"), ("2", "1.20"), ("3", "3.61"), ("4", "9.91")]
    sent = _outbound(service)[0]
    assert sent["status"] == "completed" and "RIS 127.0.0.1" in sent["payload"][0]["contentString"]


def test_fluoroscopy_results_carry_dap_dose_at_rp_and_time(
    settings: Settings, store: Store, service: FhirService, ris: Ris
) -> None:
    site = _site(settings, ris)
    assert build_ingestor(store, site).ingest_file(PHILIPS_RF).status == "ingested"
    _dispatcher(service, site).run_once()
    [text] = ris.results.values()
    codes = {o[3].split("^")[0]: (o[5], o[6].split("^")[0]) for o in _segments(text, "OBX")[1:]}
    # the file: DAP total 0.00247409 Gy·m², dose (RP) total 0.54837 Gy, fluoro time 567.922 s;
    # sent as mappings/hl7/dose_results.csv says: Gy·cm², mGy, s
    assert codes == {"113722": ("24.74", "Gy.cm2"), "113725": ("548.4", "mGy"),
                     "113730": ("568", "s")}  # fmt: skip
    assert _segments(text, "OBX")[0][5].endswith(
        "DAP 24.74 Gy·cm², dose at RP 548.4 mGy, fluoroscopy time 568 s"
    )


def test_a_ris_down_then_dying_mid_way_loses_and_duplicates_nothing(
    settings: Settings, store: Store, service: FhirService, ris: Ris
) -> None:
    site = _site(settings, ris)
    ingestor = build_ingestor(store, site)
    files = [SIEMENS_CT, PHILIPS_RF, CORPUS / "openrem" / "CT-RDSR-GEPixelMed.dcm"]
    for path in files:
        assert ingestor.ingest_file(path).status == "ingested"
    ris.stop()
    dispatcher = _dispatcher(service, site)
    assert dispatcher.run_once(now=0) == 3
    waiting = _outbound(service)
    assert {c["status"] for c in waiting} == {"in-progress"}
    assert all("did not answer" in c["statusReason"]["text"] for c in waiting)
    dropped: list[str] = []

    def die_on_the_first(text: str) -> str:  # takes the first message in, dies before the ACK
        if not dropped:
            dropped.append(text)
            return ""
        return "AA"

    ris.answer = die_on_the_first
    ris.start()
    dispatcher.run_once(now=10**10)  # every retry is due
    dispatcher.run_once(now=2 * 10**10)
    assert {c["status"] for c in _outbound(service)} == {"completed"}
    assert len(ris.results) == 3  # one result per study
    control = _segments(dropped[0], "MSH")[0][9]
    assert control in ris.results and ris.repeats == []  # the retry had the same control ID


def test_ae_is_kept_and_retried_ar_stops(
    settings: Settings, store: Store, service: FhirService, ris: Ris
) -> None:
    site = _site(settings, ris)
    build_ingestor(store, site).ingest_file(SIEMENS_CT)
    dispatcher = _dispatcher(service, site)
    ris.answer = lambda text: "AE"
    dispatcher.run_once(now=0)
    [kept] = _outbound(service)
    assert kept["status"] == "in-progress" and kept["statusReason"]["text"].startswith(
        "the RIS answered AE"
    )
    ris.answer = lambda text: "AR"
    dispatcher.run_once(now=10**10)
    [stopped] = _outbound(service)
    assert stopped["status"] == "stopped" and "AR" in stopped["statusReason"]["text"]
    assert dispatcher.run_once(now=2 * 10**10) == 0  # never again
