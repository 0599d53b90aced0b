"""HL7 v2 from 2.3 to 2.8 and later 2.x: messages of 2.6, 2.7 and 2.8 as HIS/RIS send them,
with the fields later releases added (message profile identifiers, responsible organisations,
network addresses, longer identifier types, telecom in PID-40...), are read as 2.5.1 is and the
fields Kerma does not use are ignored. Major versions other than 2, and 2.1/2.2, get AR."""

from __future__ import annotations

import pytest
from hl7.client import MLLPClient

from server.fhir import FhirService
from server.hl7.listener import Hl7Listener
from server.ingest.hl7 import Hl7Handler
from tests.hl7.conftest import err, message, msa, patients


def _msh(event: str, control: str, version: str) -> str:
    """An MSH of a later release: MSH-21 message profile, MSH-22/23 responsible organisations
    (2.7), MSH-24/25 network addresses (2.7.1, 2.8)."""
    return (f"MSH|^~\\&|HIS|HOSP|KERMA|RAD|20261203101500+0100||{event}|{control}|P|{version}"
            f"|||AL|NE|DEU|UNICODE UTF-8|||IHE_PAM_{version}^IHE^1.3.6.1.4.1.12559^ISO"
            "|Klinikum Nord^^^^^&1.2.276.0.76.3.1&ISO^XX^^^260120011|Radiologie"
            "|HIS01^^DNS|KERMA01^^DNS")  # fmt: skip


def _pid(identifier: str, family: str) -> str:
    """A PID of 2.7/2.8: CX with assigning jurisdiction and agency (CX-9, CX-10), XPN with
    name validity (XPN-12, 13), telecom in PID-40, identity reliability (PID-32)."""
    cx = f"{identifier}^^^HOSP&1.2.276.0.76.3.1&ISO^PI^^20200101^^DE&Deutschland&ISO3166^KN"
    name = f"{family}^Maria^Luise^^Dr.^^L^^^^^20200101^20991231"
    return (f"PID|1||{cx}||{name}||19630512|F|||Hauptstr. 1^^Berlin^^10115^DEU^H"
            + "|" * 20 + "VER" + "|" * 8 + "^PRN^PH^^49^30^1234567")  # fmt: skip


@pytest.mark.parametrize("version", ["2.6", "2.7", "2.7.1", "2.8", "2.8.2", "2.9"])
def test_adt_a01_and_a08_of_later_releases(
    handler: Hl7Handler, service: FhirService, version: str
) -> None:
    patient_id = f"V{version.replace('.', '')}"
    a01 = message(_msh("ADT^A01^ADT_A01", f"A01-{version}", version),
                  "EVN||20261203101500|||||HOSP^^^^^&1.2.276&ISO", _pid(patient_id, "Weber"),
                  "PV1|1|I|RAD^101^1^^^^^^^^RADIOLOGIE||||||||||||||||V100^^^HOSP^VN",
                  "OBX|1|NM|29463-7^Body weight^LN||68|kg^kilogram^UCUM|||||F|||20261203")  # fmt: skip
    answer = handler.handle(a01)
    assert msa(answer)[1] == "AA", err(answer)
    a08 = message(_msh("ADT^A08^ADT_A01", f"A08-{version}", version),
                  "EVN||20261203111500", _pid(patient_id, "Weber-Schmidt"))  # fmt: skip
    assert msa(handler.handle(a08))[1] == "AA"
    [patient] = patients(service, f"urn:kerma:patient-id:HOSP|{patient_id}")
    assert patient["name"][0]["family"] == "Weber-Schmidt" and patient["birthDate"] == "1963-05-12"
    assert patient["name"][0]["given"] == ["Maria", "Luise"]


@pytest.mark.parametrize("version", ["2.6", "2.7", "2.8"])
def test_omi_o23_orders_of_later_releases(
    handler: Hl7Handler, service: FhirService, version: str
) -> None:
    omi = message(
        _msh("OMI^O23^OMI_O23", f"O23-{version}", version),
        _pid(f"O{version.replace('.', '')}", "Keller"),
        "PV1|1|O",
        f"ORC|NW|PL{version}^HIS|FI{version}^RIS||SC||||20261203101500|||^Arzt^Anna^^^Dr.",
        "TQ1|1||||||20261204090000|20261204093000|R",
        f"OBR|1|PL{version}^HIS|FI{version}^RIS|RPID16^CT Thorax^RADLEX||||||||||||^Arzt^Anna"
        f"||||||||CT|||||||||||||||||||||||RPID16^CT Thorax^RADLEX",
        f"IPC|ACC{version}|RP{version}|1.2.276.0.7230010.3.1.2.{version.replace('.', '')}|SPS1|CT",
    )
    answer = handler.handle(omi)
    assert msa(answer)[1] == "AA", err(answer)
    [order] = [
        r
        for r in (s.body for s in service.search("ServiceRequest", []).matches)
        if r and f"ACC{version}".encode() in r
    ]
    assert b'"status":"active"' in order


def test_an_orm_o01_of_2_6(handler: Hl7Handler, service: FhirService) -> None:
    """ORM was withdrawn in 2.7 (for OMG/OMI) but RIS still send it labelled 2.6."""
    orm = message(
        _msh("ORM^O01^ORM_O01", "O01-26", "2.6"),
        _pid("O26", "Keller"),
        "PV1|1|O",
        "ORC|NW|PL26^HIS|FI26^RIS||SC||^^^20261204090000^^R||20261203101500|||^Arzt^Anna",
        "OBR|1|PL26^HIS|FI26^RIS|RPID16^CT Thorax^RADLEX||||||||||||^Arzt^Anna||ACC26|RP26"
        "||||CT|||^^^20261204090000^^R",
    )
    answer = handler.handle(orm)
    assert msa(answer)[1] == "AA", err(answer)
    [order] = [o for o in (s.body for s in service.search("ServiceRequest", []).matches) if o]
    assert b'"value":"ACC26"' in order and b'"status":"active"' in order


@pytest.mark.parametrize("version", ["2.1", "2.2", "3.0", "2.x"])
def test_versions_kerma_cannot_read_get_ar(handler: Hl7Handler, version: str) -> None:
    answer = handler.handle(message(_msh("ADT^A08^ADT_A01", f"V-{version}", version),
                                    _pid("X1", "Weber")))  # fmt: skip
    assert msa(answer)[1] == "AR" and "not supported" in msa(answer)[3]
    assert "203" in err(answer)


def test_an_a40_of_2_6_merges_over_mllp(mllp: Hl7Listener, service: FhirService) -> None:
    with MLLPClient("127.0.0.1", mllp.port) as client:
        for control, identifier, family in (("M1", "OLD26", "Wagner"), ("M2", "NEW26", "Wagner")):
            a01 = message(_msh("ADT^A01^ADT_A01", control, "2.6"), "EVN||20261203",
                          _pid(identifier, family))  # fmt: skip
            assert msa(client.send_message(a01))[1] == "AA"
        a40 = message(_msh("ADT^A40^ADT_A39", "M3", "2.6"), "EVN||20261203",
                      _pid("NEW26", "Wagner"), "MRG|OLD26^^^HOSP&1.2.276.0.76.3.1&ISO^PI")  # fmt: skip
        answer = client.send_message(a40)
    assert msa(answer)[1] == "AA" and "merged into" in msa(answer)[3]
    [new] = patients(service, "urn:kerma:patient-id:HOSP|NEW26")
    [old] = [
        p for p in patients(service, "urn:kerma:patient-id:HOSP|OLD26") if p["id"] != new["id"]
    ]
    assert old["active"] is False and old["link"][0]["other"]["reference"] == f"Patient/{new['id']}"
