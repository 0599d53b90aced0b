"""The classification workbench: the examinations no rule maps, a mapping previewed then
applied (a new rules version, the stored studies classified again as a Task), the rules as a
table to add to and remove from; who may change them."""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient

from server.classification import workbench
from server.classification.rules import RULES_IDENTIFIER
from server.dose.classify import Exam
from server.fhir.errors import FhirError
from server.fhir.service import body_of
from server.mappings import classification_rules
from server.site import build_service
from server.store.port import Store
from tests.console.conftest import World, csrf, sign_in, text

ERCP = "RPID6663 FL ERCP Biliary"  # as the procedure list offers it
SHIPPED = classification_rules().version


@pytest.fixture
def marie(client: FlaskClient, world: World) -> FlaskClient:
    assert sign_in(client, "marie").status_code == 302
    return client


def _finished(client: FlaskClient, location: str) -> str:
    """The words of the page the change led to (its message) and of the page once the Task
    ended (it refreshes itself until then)."""
    first = page = client.get(location).get_data(as_text=True)
    deadline = time.monotonic() + 60
    while 'http-equiv="refresh"' in page and time.monotonic() < deadline:
        time.sleep(0.2)
        page = client.get(location).get_data(as_text=True)
    return f"{text(first)} ... {text(page)}"


def _procedure(store: Store, study: str) -> str:
    body = body_of(build_service(store).read("ImagingStudy", study.split("/")[1]))
    return str(((body.get("procedureCode") or [{}])[0].get("coding") or [{}])[0].get("display"))


def test_an_unmapped_protocol_mapped_to_a_procedure(
    marie: FlaskClient, world: World, store: Store
) -> None:
    page = text(marie.get("/classification").get_data(as_text=True))
    # the Siemens Zee's fluoroscopy: no requested procedure nor description, protocol "FL - Ang"
    assert "Examinations no rule maps Modality Requested procedure or study description " \
           "Protocols Examinations Map to a standard procedure RF FL - Ang FL - Ang 1" in page  # fmt: skip
    assert f"Rules, version {SHIPPED} (as shipped)" in page
    assert _procedure(store, world.rf_study) == "None"

    preview = marie.get("/classification/preview", query_string={"modality": "RF", "words": "FL - Ang",
                                                                  "procedure": ERCP})  # fmt: skip
    words = text(preview.get_data(as_text=True))
    assert "1 stored study would change" in words
    assert f"{world.rf_study} FL - Ang unmatched FL ERCP Biliary" in words
    assert _procedure(store, world.rf_study) == "None"  # a preview writes nothing

    token = csrf(preview.get_data(as_text=True))
    applied = marie.post("/classification/map", data={"modality": "RF", "words": "FL - Ang",
                                                      "procedure": "RPID6663", "csrf_token": token})  # fmt: skip
    assert applied.status_code == 303 and "task=" in applied.headers["Location"]
    done = _finished(marie, applied.headers["Location"])
    assert f"Rules version {SHIPPED + 1}: rule local-fl-ang added." in done
    assert "Done. 1 studies got another standard procedure, 0 match no rule now" in done, done
    assert f"Rules, version {SHIPPED + 1} The first rule" in done
    assert "None: a rule maps every classified examination." in done
    assert _procedure(store, world.rf_study) == "FL ERCP Biliary"
    study_page = text(marie.get(f"/studies/{world.rf_study.split('/')[1]}").get_data(as_text=True))
    assert "FL ERCP Biliary" in study_page and "local-fl-ang" in study_page
    # the same rules the API edits: a Library of the next version, the rule before the shipped ones
    [library] = build_service(store).search("Library", [("identifier", RULES_IDENTIFIER)]).matches
    assert body_of(library)["version"] == str(SHIPPED + 1)


def test_the_rules_as_a_table(marie: FlaskClient, world: World, store: Store) -> None:
    token = csrf(marie.get("/classification").get_data(as_text=True))
    rule = {"id": "rf-angio", "modality": ["RF", "XA"], "all": "\\bang\\b\n^fl",
            "none": "", "procedure": ERCP, "csrf_token": token}  # fmt: skip
    added = marie.post("/classification/rules", data=rule)
    assert added.status_code == 303
    done = _finished(marie, added.headers["Location"])
    assert "2 rf-angio RF, XA \\bang\\b and ^fl FL ERCP Biliary RPID6663 Remove" in done
    assert _procedure(store, world.rf_study) == "FL ERCP Biliary"
    again = marie.post("/classification/rules", data=rule)
    assert again.status_code == 422  # one id, one rule
    assert "there is a rule rf-angio already" in text(again.get_data(as_text=True))
    broken = marie.post("/classification/rules", data={**rule, "id": "broken", "all": "(unclosed"})
    assert broken.status_code == 422 and "the rules cannot be used" in broken.get_data(as_text=True)

    removed = marie.post("/classification/rules/rf-angio/delete", data={"csrf_token": token})
    done = _finished(marie, removed.headers["Location"])
    assert (
        f"Rules version {SHIPPED + 2}: rule rf-angio removed." in done and "rf-angio RF" not in done
    )
    assert _procedure(store, world.rf_study) == "None"  # classified again: unmatched
    assert (
        marie.post("/classification/rules/nope/delete", data={"csrf_token": token}).status_code
        == 404
    )


def test_who_may_change_the_rules(client: FlaskClient, world: World) -> None:
    assert sign_in(client, "vic").status_code == 302  # a viewer looks
    page = client.get("/classification").get_data(as_text=True)
    assert "FL - Ang" in page and "Add a rule" not in page and "Remove rule" not in page
    token = csrf(client.get("/").get_data(as_text=True))
    refused = client.post("/classification/map", data={"modality": "RF", "words": "FL - Ang",
                                                       "procedure": "RPID6663", "csrf_token": token})  # fmt: skip
    assert refused.status_code == 403
    assert client.post("/classification/reapply", data={"csrf_token": token}).status_code == 403
    assert client.post("/classification/reapply", data={}).status_code == 400  # no CSRF token


def test_a_mapping_rule_reads_the_words_literally(store: Store) -> None:
    tables = workbench.current(build_service(store))
    rule = workbench.mapping_rule(tables, "CR", "Abd. (Routine) + KM", "RPID2590")
    assert rule == {"id": "local-abd-routine-km", "modality": ["DX"],
                    "all": [r"abd\. \(routine\) \+ km"], "procedure": "RPID2590"}  # fmt: skip
    rules = workbench.with_rule(tables, rule).compiled()
    found = rules.classify(Exam("DX", description="ABD. (ROUTINE) + KM"))
    assert found is not None and found.rule == "local-abd-routine-km"
    assert rules.classify(Exam("DX", description="abdx routine km")) != found
    qa = rules.classify(Exam("DX", description="QA ABD. (Routine) + KM"))
    assert qa is not None and qa.rule == "qa"  # QA stays set aside
    with pytest.raises(FhirError):
        workbench.mapping_rule(tables, "CT", "head", "RPID999999")
