"""The set-up pages: a device's site name (shown on every page after) and AE titles (the DICOM
listener's registry), the table geometry its skin dose maps use; a local DRL added and then
compared with; people added and revoked by an admin; who may do which."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from server.auth.passwords import set_password
from server.auth.users import add_user
from server.config import Settings
from server.dicom.read import Read, read_dicom
from server.fhir.service import body_of
from server.ingest.calculate import skin_map
from server.mappings import unit_table
from server.network import registered_ae_titles
from server.site import build_service, site_context
from server.site.tables import site_tables
from server.store.port import Store
from tests.console.conftest import PASSWORD, ZEE, World, csrf, sign_in, text


@pytest.fixture
def marie(client: FlaskClient, world: World) -> FlaskClient:
    assert sign_in(client, "marie").status_code == 302
    return client


def test_a_device_named_by_the_site(marie: FlaskClient, world: World, store: Store) -> None:
    page = marie.get("/setup/devices").get_data(as_text=True)
    words = text(page)
    assert "SIEMENS SOMATOM Definition Flash" in words
    assert "table positions as reported (DICOM directions)" in words
    rid = world.ct_device.split("/")[1]
    saved = marie.post(f"/setup/devices/{rid}", data={"site_name": "CT 2 (emergency)",
                                                      "ae_titles": "CT2_ER, CT2ER_B",
                                                      "csrf_token": csrf(page)})  # fmt: skip
    assert saved.status_code == 303
    words = text(marie.get("/setup/devices").get_data(as_text=True))
    assert "Device saved: CT 2 (emergency); AE titles CT2_ER, CT2ER_B." in words
    # the site's name everywhere: the studies table, the analysis page's devices
    assert "CT 2 (emergency)" in text(marie.get("/studies?modality=CT").get_data(as_text=True))
    assert ">CT 2 (emergency)</option>" in marie.get("/analysis").get_data(as_text=True)
    device = body_of(build_service(store).read("Device", rid))
    assert {"name": "SOMATOM Definition Flash", "type": "model-name"} in device["deviceName"]
    assert {"CT2_ER", "CT2ER_B"} <= registered_ae_titles(build_service(store))
    too_long = marie.post(f"/setup/devices/{rid}", data={"site_name": "x", "ae_titles": "A" * 17,
                                                         "csrf_token": csrf(page)})  # fmt: skip
    assert too_long.status_code == 400


def test_a_local_level_then_compared_with(marie: FlaskClient, world: World) -> None:
    page = marie.get("/setup/levels").get_data(as_text=True)
    assert "National sets in force: UKHSA GB 2022 " in text(page)
    added = marie.post("/setup/levels", data={"set": "Local 2026", "kind": "DRL",
                                              "procedure": "ct-cap-w CT Chest/Abdomen/Pelvis w IV Contrast",
                                              "quantity": "dlp-examination", "value": "800",
                                              "csrf_token": csrf(page)})  # fmt: skip
    assert added.status_code == 303, added.get_data(as_text=True)
    words = text(marie.get("/setup/levels").get_data(as_text=True))
    assert "Local 2026 DRL CT CT Chest/Abdomen/Pelvis w IV Contrast CT Dose Length Product " \
           "Total per examination 800 mGy·cm" in words  # fmt: skip
    analysis = text(marie.get("/analysis?from=1990-01-01").get_data(as_text=True))
    assert "Local 2026: 800 mGy·cm 0.9056 yes" in analysis  # 724.5 / 800, rounded to 4 places
    bad = marie.post("/setup/levels", data={"set": "Local", "kind": "DRL", "procedure": "nope",
                                            "quantity": "dlp-examination", "value": "800",
                                            "csrf_token": csrf(page)})  # fmt: skip
    assert bad.status_code == 400


def test_people_added_and_revoked_by_an_admin(
    client: FlaskClient, world: World, store: Store
) -> None:
    add_user(store, "ada", "admin")
    set_password(store, "ada", PASSWORD)
    assert sign_in(client, "ada").status_code == 302
    page = client.get("/setup/users").get_data(as_text=True)
    assert "marie mpe every device password active" in text(page)
    form = {"name": "nina", "role": "radiographer", "devices": world.rf_device,
            "password": "another long password", "csrf_token": csrf(page)}  # fmt: skip
    assert client.post("/setup/users", data=form).status_code == 303
    assert (
        client.post("/setup/users", data={**form, "name": "short", "password": "short"}).status_code
        == 400
    )
    words = text(client.get("/setup/users").get_data(as_text=True))
    assert f"nina radiographer {world.rf_device} password active" in words
    assert (
        client.post("/setup/users/nina/revoke", data={"csrf_token": csrf(page)}).status_code == 303
    )
    assert "nina radiographer" in text(client.get("/setup/users").get_data(as_text=True))
    client.post("/sign-out", data={"csrf_token": csrf(page)})
    assert sign_in(client, "nina", "another long password").status_code != 302  # revoked


def test_who_may_set_up_what(client: FlaskClient, world: World) -> None:
    assert sign_in(client, "marie").status_code == 302  # a physicist does not manage people
    assert client.get("/setup/users").status_code == 403
    client.post("/sign-out", data={"csrf_token": csrf(client.get("/").get_data(as_text=True))})
    assert sign_in(client, "vic").status_code == 302  # a viewer looks
    page = client.get("/setup/devices").get_data(as_text=True)
    assert "Save" not in page
    rid = world.ct_device.split("/")[1]
    refused = client.post(
        f"/setup/devices/{rid}", data={"site_name": "mine", "csrf_token": csrf(page)}
    )
    assert refused.status_code == 403


def test_where_alerts_and_reports_go(marie: FlaskClient, world: World, store: Store) -> None:
    page = marie.get("/setup/alerts").get_data(as_text=True)
    words = text(page)
    assert "Rule sets of significant events and patient follow-up: none" in words
    assert "No route: alerts wait on the work list and nobody is mailed." in words
    token = csrf(page)
    for form in ({"what": "high", "channel": "address", "address": "mpe@hospital.test"},
                 {"what": "modality", "modality": "ct", "channel": "role", "role": "radiographer",
                  "digest": "yes"},
                 {"what": "reports", "channel": "url", "url": "https://ris.hospital.test/hook"}):  # fmt: skip
        assert (
            marie.post("/setup/alerts/routes", data={**form, "csrf_token": token}).status_code
            == 303
        )
    words = text(marie.get("/setup/alerts").get_data(as_text=True))
    assert "DetectedIssue?severity=high mpe@hospital.test e-mail active" in words
    assert ("DetectedIssue?_tag=https://kerma.example.org/fhir/CodeSystem/modality|CT everyone of "
            "role radiographer e-mail, one review list a day active") in words  # fmt: skip
    assert "DocumentReference? https://ris.hospital.test/hook REST hook active" in words
    routes = build_service(store).search("Subscription", []).matches
    [hook] = [s for s in routes if "hook" in str(body_of(s).get("channel"))]
    assert (
        marie.post(
            f"/setup/alerts/routes/{hook.rid}/delete", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert "ris.hospital.test" not in marie.get("/setup/alerts").get_data(as_text=True)
    nowhere = marie.post("/setup/alerts/routes", data={"what": "high", "channel": "address",
                                                       "address": "", "csrf_token": token})  # fmt: skip
    assert nowhere.status_code == 400


def test_a_fluoroscopy_rooms_table_set_on_its_device(
    marie: FlaskClient, world: World, store: Store, settings: Settings
) -> None:
    """The Siemens Zee's beams are mapped with the table positions as reported; with the table
    set on its device (2 m along the table) they miss the phantom: the map says it cannot be
    trusted, and why."""
    outcome = read_dicom(ZEE, unit_table())
    assert isinstance(outcome, Read)
    service, ctx = build_service(store), site_context(settings)
    before = skin_map(outcome.report, service, ctx)
    assert before is not None and before.unfit is None
    assert before.table.name == "table positions as reported (DICOM directions)"

    page = marie.get("/setup/devices").get_data(as_text=True)
    rid = world.rf_device.split("/")[1]
    form = {"longitudinal_offset": "2000", "lateral_offset": "", "height_offset": "-50",
            "height_reversed": "yes", "csrf_token": csrf(page)}  # fmt: skip
    assert marie.post(f"/setup/devices/{rid}/table", data=form).status_code == 303
    words = text(marie.get("/setup/devices").get_data(as_text=True))
    assert "set on the device: offsets 2,000, 0, -50.0 mm, directions 1, 1, -1" in words
    after = skin_map(outcome.report, service, ctx)
    assert after is not None
    assert after.table.name == "table geometry set on the device (2000, 0, -50 mm)"
    assert after.dap_on_phantom < before.dap_on_phantom and after.unfit is not None

    cleared = {
        "longitudinal_offset": "",
        "lateral_offset": "",
        "height_offset": "",
        "csrf_token": csrf(page),
    }
    assert marie.post(f"/setup/devices/{rid}/table", data=cleared).status_code == 303
    again = skin_map(outcome.report, service, ctx)
    assert again is not None and again.table.name == before.table.name


def test_the_sets_in_force_chosen_in_the_console(
    marie: FlaskClient, world: World, store: Store
) -> None:
    """The national DRL sets and alert rule sets in force, chosen on the set-up pages: kept as
    one Library, applied to the statistics and to what is read from then on."""
    page = marie.get("/setup/levels").get_data(as_text=True)
    assert "UKHSA GB 2022 DRL CT" in text(page)
    token = csrf(page)
    assert marie.post("/setup/levels/sets", data={"csrf_token": token}).status_code == 303
    words = text(marie.get("/setup/levels").get_data(as_text=True))
    assert "National DRL sets in force: none." in words and "UKHSA GB 2022 DRL CT" not in words
    analysis = text(marie.get("/analysis?from=1990-01-01").get_data(as_text=True))
    assert "UKHSA GB 2022" not in analysis  # no DRL compared any more
    chosen = marie.post("/setup/levels/sets", data={"set": ["UKHSA GB 2022", "BfS DE 2022"],
                                                    "csrf_token": token})  # fmt: skip
    assert chosen.status_code == 303
    words = text(marie.get("/setup/levels").get_data(as_text=True))
    assert "National sets in force: BfS DE 2022, UKHSA GB 2022 " in words
    assert "BfS DE 2022 DRL DX Thorax p. a." in words and "UKHSA GB 2022 DRL CT" in words
    page = marie.post(
        "/setup/alerts/sets", data={"set": ["sir_srdl", "nonsense"], "csrf_token": token}
    )
    assert page.status_code == 303
    words = text(marie.get("/setup/alerts").get_data(as_text=True))
    assert "Rule sets of significant events and patient follow-up: sir_srdl" in words
    assert "calculated peak skin dose above 3 Gy" in words
    ctx = site_tables(build_service(store), Settings(data_dir=Path("."))).context(
        site_context(Settings())
    )
    assert {r.set for r in ctx.alert_rules} == {"SIR/NCRP 168 SRDL"}  # what ingest checks with
    [library] = (
        build_service(store).search("Library", [("identifier", "urn:kerma:site|choices")]).matches
    )
    assert body_of(library)["status"] == "active"
    # a viewer sees the choice but may not make it
    marie.post("/sign-out", data={"csrf_token": token})
    sign_in(marie, "vic")
    assert "Apply" not in marie.get("/setup/alerts").get_data(as_text=True)
    token = csrf(marie.get("/").get_data(as_text=True))
    assert (
        marie.post("/setup/alerts/sets", data={"set": "sir_srdl", "csrf_token": token}).status_code
        == 403
    )
