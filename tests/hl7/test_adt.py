"""ADT messages: the public samples applied with the values they carry, merges, identifier
changes, and the answers to what cannot be applied."""

from __future__ import annotations

import pytest

from server.fhir import FhirService
from server.hl7.files import messages_in
from server.ingest.hl7 import Hl7Handler
from tests.hl7.conftest import body, err, message, msa, msh, patients, sample

SYSTEM = "urn:kerma:patient-id"


def test_a01_creates_the_patient_with_demographics(
    handler: Hl7Handler, service: FhirService
) -> None:
    answer = handler.handle(sample("ADT_A01-hapi-hl7v2-docs-example.hl7").replace(b"\n", b"\r"))
    assert msa(answer)[1:3] == ["AA", "22139243"]
    [patient] = patients(service, f"{SYSTEM}|2216506")
    assert patient["name"] == [
        {"use": "official", "family": "Duck", "given": ["Donald"], "prefix": ["MR."]}
    ]
    assert patient["birthDate"] == "1972-02-27"
    assert patient["gender"] == "male"
    assert [a["city"] for a in patient["address"]] == ["TORONTO", "TORONTO"]
    assert patient["address"][0]["use"] == "home"
    assert patient["address"][0]["postalCode"] == "M6G 3E6"


def test_a08_with_an_assigning_authority_and_a31_update(
    handler: Hl7Handler, service: FhirService
) -> None:
    assert msa(handler.handle(sample("ADT_A08-dcm4che-2021.hl7")))[1] == "AA"
    [dog] = patients(service, f"{SYSTEM}:ADT1|583295")
    assert dog["name"][0]["family"] == "Smith" and dog["name"][0]["given"] == ["Shadow"]
    assert dog["gender"] == "female" and dog["birthDate"] == "2014-10-14"
    assert dog["identifier"][0]["assigner"] == {"display": "ADT1"}

    assert msa(handler.handle(sample("ADT_A31-dcm4che-UpdatePersonInfo.hl7")))[1] == "AA"
    [lucy] = patients(service, f"{SYSTEM}:ADT1|PID_1")
    assert lucy["name"][0]["given"] == ["Lucy", "Mark"]
    # the same person again, with new details: updated, not duplicated
    update = sample("ADT_A31-dcm4che-UpdatePersonInfo.hl7").replace(b"|100212|", b"|100213|")
    update = update.replace(b"Smith^Lucy^Mark", b"Smith-Jones^Lucy")
    assert msa(handler.handle(update))[1] == "AA"
    [lucy] = patients(service, f"{SYSTEM}:ADT1|PID_1")
    assert lucy["name"][0]["family"] == "Smith-Jones" and lucy["meta"]["versionId"] == "2"


def test_a_batch_file_gives_each_message(handler: Hl7Handler, service: FhirService) -> None:
    raw = sample("ADT_A04-python-hl7-VINAH-batch-FHS-BHS.hl7")
    [only] = messages_in(raw)
    assert only.startswith(b"MSH|") and b"FHS" not in only and b"BTS" not in only
    assert msa(handler.handle(only))[1] == "AA"
    [patient] = patients(service, f"{SYSTEM}:100|0000112234")
    assert patient["address"][0]["city"] == "RICHMOND"


def test_height_and_weight_from_obx_become_observations(
    handler: Hl7Handler, service: FhirService
) -> None:
    answer = handler.handle(
        message(
            msh("ADT^A08^ADT_A01", "W1"),
            "PID|||77^^^HOSP||Doe^Jane||19800101|F",
            "OBX|1|NM|29463-7^Body weight^LN||154|[lb_av]|||||F|||20261126",
            "OBX|2|NM|8302-2^Body height^LN||170|cm|||||F|||20261126",
        )
    )
    assert msa(answer)[1] == "AA", err(answer)
    [patient] = patients(service, f"{SYSTEM}:HOSP|77")
    found = service.search("Observation", [("subject", f"Patient/{patient['id']}")]).matches
    values = {
        body(service, f"Observation/{s.rid}")["code"]["coding"][0]["code"]: body(
            service, f"Observation/{s.rid}"
        )["valueQuantity"]
        for s in found
    }
    assert values["29463-7"]["value"] == pytest.approx(69.853, abs=1e-3)  # 154 lb
    assert values["29463-7"]["unit"] == "kg"
    assert values["8302-2"] == {
        "value": 1.7,
        "unit": "m",
        "system": "http://unitsofmeasure.org",
        "code": "m",
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ADT_A01-hapi-hl7v2-docs-example.hl7", "AA"),
        ("ADT_A04-python-hl7-VINAH-single.hl7", "AA"),
        ("ADT_A08-dcm4che-2021.hl7", "AA"),
        ("ADT_A31-dcm4che-UpdatePersonInfo.hl7", "AA"),
        ("ADT_A31-dcm4che-UpdatePersonInfo-Veterinary.hl7", "AA"),
        ("ADT_A34-linuxforhealth-merge-test.hl7", "AA"),  # v2.3, no control id
        ("ADT_A40-dcm4che-PatientMerge.hl7", "AA"),
        ("ADT_A47-dcm4che-ChangePatientID.hl7", "AA"),
        ("ORM_O01-dcm4che-2019-radiology-MR.hl7", "AA"),
        ("OMI_O23-dcm4che-ImagingOrder.hl7", "AA"),
        ("OMI_O23-dcm4che-filed-as-ORM_O01-GeneralOrder.hl7", "AA"),
        ("ORU_R01-dcm4che-2021.hl7", "AR"),  # results are not Kerma's business
        ("ORU_R01-python-hl7-normative-glucose.hl7", "AR"),
    ],
)
def test_every_sample_gets_its_answer(handler: Hl7Handler, name: str, expected: str) -> None:
    for each in messages_in(sample(name)):
        assert msa(handler.handle(each))[1] == expected


def test_an_unsupported_message_type_is_rejected_with_code_200(handler: Hl7Handler) -> None:
    answer = handler.handle(sample("ORU_R01-dcm4che-2021.hl7"))
    assert msa(answer)[1] == "AR" and "ORU" in msa(answer)[3]
    assert "200^Unsupported message type^HL70357" in err(answer)


def test_an_unsupported_event_and_version(handler: Hl7Handler) -> None:
    answer = handler.handle(message(msh("ADT^A99", "E1"), "PID|||1"))
    assert msa(answer)[1] == "AR" and "201^Unsupported event code" in err(answer)
    answer = handler.handle(message(msh("ADT^A08", "E2", version="2.1"), "PID|||1"))
    assert msa(answer)[1] == "AR" and "^203&Unsupported version id&HL70357" in err(answer)


def test_a_missing_identifier_is_an_application_error_naming_the_field(
    handler: Hl7Handler,
) -> None:
    answer = handler.handle(message(msh("ADT^A08", "E3"), "PID|||||Doe^John"))
    assert msa(answer)[1:3] == ["AE", "E3"]
    assert "PID-3" in msa(answer)[3]
    assert err(answer).startswith("ERR||PID^1^3|101^Required field missing^HL70357|E")
    # a v2.3 sender gets the error in ERR-1
    answer = handler.handle(message(msh("ADT^A08", "E4", version="2.3"), "PID|||||Doe^John"))
    assert err(answer) == "ERR|PID^1^3^101&Required field missing&HL70357"


def test_a_bad_birth_date_is_an_application_error(handler: Hl7Handler) -> None:
    answer = handler.handle(message(msh("ADT^A08", "E5"), "PID|||9^^^H||Doe^John||19801340"))
    assert msa(answer)[1] == "AE" and "102^Data type error" in err(answer)


def test_a_merge_without_mrg_is_an_application_error(handler: Hl7Handler) -> None:
    answer = handler.handle(message(msh("ADT^A40^ADT_A39", "E6"), "PID|||9^^^H||Doe^John"))
    assert msa(answer)[1] == "AE" and "MRG" in msa(answer)[3]


def test_the_same_control_id_twice_is_applied_once(
    handler: Hl7Handler, service: FhirService
) -> None:
    raw = message(msh("ADT^A08", "D1"), "PID|||5^^^H||Doe^John")
    first, second = handler.handle(raw), handler.handle(raw)
    assert first == second and msa(first)[1] == "AA"
    [patient] = patients(service, f"{SYSTEM}:H|5")
    assert patient["meta"]["versionId"] == "1"
    # a resend with a new MSH-7 time is the same message
    assert handler.handle(raw.replace(b"20261126101500", b"20261126101501")) == first
    # the control id reused for another message is refused, not silently dropped
    other = handler.handle(message(msh("ADT^A08", "D1"), "PID|||6^^^H||Roe^Jane"))
    assert msa(other)[1] == "AE" and "205^Duplicate key identifier" in err(other)


def test_a47_changes_the_identifier_of_a_known_patient(
    handler: Hl7Handler, service: FhirService
) -> None:
    handler.handle(message(msh("ADT^A04", "C1"), "PID|||OLD_PID_1^^^ADT1||Smith^Lucy||20141014|F"))
    [before] = patients(service, f"{SYSTEM}:ADT1|OLD_PID_1")
    assert msa(handler.handle(sample("ADT_A47-dcm4che-ChangePatientID.hl7")))[1] == "AA"
    assert patients(service, f"{SYSTEM}:ADT1|OLD_PID_1") == []
    [after] = patients(service, f"{SYSTEM}:ADT1|NEW_PID_1")
    assert after["id"] == before["id"]


def test_what_no_person_can_have_is_set_aside_and_said(
    handler: Hl7Handler, service: FhirService
) -> None:
    """Issue 23: a height of 99,999 m, a weight of 20,000,000 kg and a placeholder birth date
    were stored; now the patient is applied without them and MSA-3 says what was left out."""
    answer = handler.handle(
        message(
            msh("ADT^A08^ADT_A01", "W2"),
            "PID|||78^^^HOSP||Doe^John||99990101|M",
            "OBX|1|NM|29463-7^Body weight^LN||20000000|kg|||||F|||20261126",
            "OBX|2|NM|8302-2^Body height^LN||99999|m|||||F|||20261126",
        )
    )
    assert msa(answer)[1] == "AA", err(answer)
    said = msa(answer)[3]
    assert "height 99999 m is outside [0.2, 2.5] m: not used" in said
    assert "weight 2e+07 kg is outside [0.2, 400] kg: not used" in said
    assert "birth date 9999-01-01 is a placeholder or impossible: not used" in said
    [patient] = patients(service, f"{SYSTEM}:HOSP|78")
    assert "birthDate" not in patient and patient["name"][0]["family"] == "Doe"
    assert service.search("Observation", [("subject", f"Patient/{patient['id']}")]).matches == []


def test_a_name_longer_than_hl7_allows_is_an_application_error(
    handler: Hl7Handler, service: FhirService
) -> None:
    answer = handler.handle(
        message(msh("ADT^A08^ADT_A01", "W3"), "PID|||79^^^HOSP||" + "A" * 5000 + "^Jo||19800101|M")
    )
    assert msa(answer)[1:3] == ["AE", "W3"]  # the control id echoed
    assert "PID-5.1 is 5000 characters long; a name has at most 250" in msa(answer)[3]
    assert patients(service, f"{SYSTEM}:HOSP|79") == []
