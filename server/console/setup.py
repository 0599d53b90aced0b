"""The set-up pages, for the roles allowed: devices (the name the site calls each by, used on
every page, chart and report; the AE titles the DICOM listener knows it by; the table geometry
its skin dose maps use), dose reference levels (the sets in force and local levels), alert
rules and where alerts and reports are sent, and the people who sign in (admin). Every change goes through the user's gate, as over the API."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from server.alerts.issues import MODALITY_TAG
from server.api.http import statistics
from server.auth.passwords import set_password
from server.auth.roles import roles
from server.auth.users import add_user
from server.classification import workbench
from server.console.sections import require_user_admin
from server.dose.model import Equipment
from server.fhir.errors import FhirError
from server.fhir.mapping.device import (
    SITE_NAME_TYPE,
    TABLE_AXES,
    ae_titles,
    table_geometry,
    with_ae_titles,
    with_site_name,
    with_table_geometry,
)
from server.fhir.service import FhirService, body_of
from server.mappings import alert_rule_sets, alert_rules, national_levels, skin_dose_factors
from server.site.choices import Choices, configured
from server.site.choices import library as choices_library
from server.site.choices import stored as stored_choices
from server.site.levels import LEVEL_QUANTITIES, local_level
from server.site.subscriptions import DIGEST_URL, ROLE_URL, ROUTES, route
from server.stats.service import Query

bp = Blueprint("setup", __name__)
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # DICOM AE: 16 characters, no backslash


def _service() -> FhirService:
    return current_app.extensions["kerma.fhir"]  # type: ignore[no-any-return]


@bp.get("/setup/devices")
def devices_page() -> str:
    factors = skin_dose_factors()
    rows = []
    for d in statistics().devices(Query("dlp_mgy_cm", devices=g.access.devices or ())):
        body = body_of(_service().read(*d["device"].split("/", 1)))
        site_name = next((n["name"] for n in body.get("deviceName", [])
                          if n.get("type") == SITE_NAME_TYPE), "")  # fmt: skip
        equipment = Equipment(manufacturer=d["manufacturer"], model=d["model"])
        rows.append({**d, "site_name": site_name, "ae_titles": ae_titles(body),
                     "geometry": factors.geometry_for(equipment), "own": table_geometry(body)})  # fmt: skip
    return render_template("console/setup_devices.html", devices=rows,
                           may_change=g.access.role.can("write", "Device"))  # fmt: skip


@bp.post("/setup/devices/<rid>")
def change_device(rid: str) -> ResponseReturnValue:
    g.access.require("Device", "write")
    name = " ".join(request.form.get("site_name", "").split())[:64]
    titles = list(dict.fromkeys(request.form.get("ae_titles", "").replace(",", " ").split()))
    bad = [t for t in titles if not _AE_TITLE.match(t)]
    if bad:
        raise FhirError.of(400, "invalid", f"an AE title is 1 to 16 characters: {', '.join(bad)}")
    device = body_of(_service().read("Device", rid))
    changed = with_ae_titles(with_site_name(device, name), titles)
    _service().update("Device", rid, changed, gate=g.access)
    flash(f"Device saved: {name or 'no site name'}; AE titles {', '.join(titles) or 'none'}.")
    return redirect(url_for("console.setup.devices_page"), 303)


@bp.post("/setup/devices/<rid>/table")
def change_table(rid: str) -> ResponseReturnValue:
    """The device's table geometry for skin dose maps (empty offsets: the one of its type)."""
    g.access.require("Device", "write")
    form = request.form
    texts = [form.get(f"{a}_offset", "").strip() for a in TABLE_AXES]
    offsets: tuple[float, ...] | None = None
    if any(texts):
        try:
            offsets = tuple(float(t or 0) for t in texts)
        except ValueError:
            raise FhirError.of(400, "invalid", "table offsets are numbers (mm)") from None
    directions = tuple(-1 if form.get(f"{a}_reversed") == "yes" else 1 for a in TABLE_AXES)
    device = body_of(_service().read("Device", rid))
    _service().update(
        "Device", rid, with_table_geometry(device, offsets, directions), gate=g.access
    )
    flash("Table geometry saved: the fluoroscopy examinations received from now on are mapped with it."
          if offsets else "Table geometry removed: the device's type decides again.")  # fmt: skip
    return redirect(url_for("console.setup.devices_page"), 303)


@bp.get("/setup/levels")
def levels_page() -> str:
    stats = statistics()
    levels = sorted(stats.ctx.levels, key=lambda lv: (lv.set, lv.modality, lv.examination))
    procedures = workbench.current(_service()).procedures()
    national = sorted({lv.set for lv in national_levels()})
    return render_template("console/setup_levels.html", levels=levels, national=national,
                           in_force=_choices().drl_sets, quantities=LEVEL_QUANTITIES,
                           procedures=procedures, may_choose=_may_choose(),
                           may_change=g.access.role.can("write", "ObservationDefinition"))  # fmt: skip


@bp.post("/setup/levels/sets")
def choose_drl_sets() -> ResponseReturnValue:
    """The national DRL sets in force (before KERMA_DRL_SETS)."""
    chosen = frozenset(request.form.getlist("set"))
    _save_choices(replace(_choices(), drl_sets=chosen))
    flash(f"National DRL sets in force: {', '.join(sorted(chosen)) or 'none'}.")
    return redirect(url_for("console.setup.levels_page"), 303)


@bp.post("/setup/levels")
def add_level() -> ResponseReturnValue:
    g.access.require("ObservationDefinition", "write")
    form = request.form
    try:
        value = float(form.get("value", ""))
    except ValueError:
        raise FhirError.of(400, "invalid", "the level's value must be a number") from None
    code = form.get("procedure", "").strip().split(" ", 1)[0]
    procedure = statistics().ctx.rules.procedure(code)
    rows = {p["code"]: p for p in workbench.current(_service()).procedures()}
    if procedure is None or code not in rows:
        raise FhirError.of(400, "invalid", f"no standard procedure {code!r}")
    body = local_level(form.get("set", "").strip(), form.get("kind", "DRL"), procedure,
                       rows[code]["modality"], form.get("quantity", ""), value, date.today().year,
                       f"set in Kerma's console by {g.user.name}")  # fmt: skip
    _service().create("ObservationDefinition", body, gate=g.access)
    flash(f"Level added: {body['preferredReportName']} {value:g}.")
    return redirect(url_for("console.setup.levels_page"), 303)


@bp.get("/setup/users")
def users_page() -> str:
    users = sorted(current_app.extensions["kerma.store"].users(), key=lambda u: u.name)
    return render_template("console/setup_users.html", users=users, roles=sorted(roles()),
                           devices=statistics().devices(Query("dlp_mgy_cm")))  # fmt: skip


@bp.post("/setup/users")
def add_person() -> ResponseReturnValue:
    require_user_admin()
    form = request.form
    name, password = form.get("name", "").strip(), form.get("password", "")
    devices = tuple(d for d in form.getlist("devices") if d.startswith("Device/"))
    store = current_app.extensions["kerma.store"]
    try:
        add_user(store, name, form.get("role", ""), devices)
        set_password(store, name, password)
    except (KeyError, ValueError) as e:
        raise FhirError.of(400, "invalid", str(e).strip("'")) from None
    flash(f"{name} can sign in now (role {form.get('role')}).")
    return redirect(url_for("console.setup.users_page"), 303)


@bp.post("/setup/users/<name>/revoke")
def revoke(name: str) -> ResponseReturnValue:
    require_user_admin()
    if not current_app.extensions["kerma.store"].set_user_active(name, False):
        raise FhirError.of(404, "not-found", f"no user {name}")
    flash(f"{name} may no longer sign in nor use their token.")
    return redirect(url_for("console.setup.users_page"), 303)


def _choices() -> Choices:
    """What the site chose in the console, else what its settings say."""
    return stored_choices(_service()) or configured(current_app.config["KERMA_SETTINGS"])


def _save_choices(choices: Choices) -> None:
    """The next version of the site's choices; they apply to what is read from then on."""
    if not _may_choose():
        raise FhirError.of(
            403, "forbidden", f"role {g.access.role.name} may not choose what applies"
        )
    body = choices_library(choices)
    if choices.library_id:
        _service().update("Library", choices.library_id, body, gate=g.access)
    else:
        _service().create("Library", body, gate=g.access)


def _may_choose() -> bool:
    return bool(g.access.role.can("write", "Library"))


@bp.get("/setup/alerts")
def alerts_page() -> str:
    sets = _choices().alert_sets
    routes = [body_of(s) for s in _service().all_in(_service().store, "Subscription", [])]
    return render_template("console/setup_alerts.html", sets={name: alert_rules(name) for name in sets},
                           every_set=alert_rule_sets(), may_choose=_may_choose(),
                           routes=routes, choices=ROUTES, roles=sorted(roles()),
                           role_url=ROLE_URL, digest_url=DIGEST_URL,
                           may_change=g.access.role.can("write", "Subscription"))  # fmt: skip


@bp.post("/setup/alerts/sets")
def choose_alert_sets() -> ResponseReturnValue:
    """The alert rule sets in force (before KERMA_ALERT_RULES)."""
    chosen = tuple(n for n in alert_rule_sets() if n in request.form.getlist("set"))
    _save_choices(replace(_choices(), alert_sets=chosen))
    flash(f"Alert rule sets in force: {', '.join(chosen) or 'none'}.")
    return redirect(url_for("console.setup.alerts_page"), 303)


@bp.post("/setup/alerts/routes")
def add_route() -> ResponseReturnValue:
    g.access.require("Subscription", "write")
    form = request.form
    channel = form.get("channel", "")
    target = {"address": form.get("address", ""), "role": form.get("role", ""),
              "url": form.get("url", "")}.get(channel, "").strip()  # fmt: skip
    if not target:
        raise FhirError.of(400, "invalid", "a route needs an address, a role or a URL")
    body = route(form.get("what", ""), form.get("modality", ""),
                 "rest-hook" if channel == "url" else "email", target, form.get("digest") == "yes",
                 f"set in Kerma's console by {g.user.name}", MODALITY_TAG)  # fmt: skip
    _service().create("Subscription", body, gate=g.access)
    flash(f"Route added: {ROUTES[form.get('what', '')][0]} to {target}.")
    return redirect(url_for("console.setup.alerts_page"), 303)


@bp.post("/setup/alerts/routes/<rid>/delete")
def delete_route(rid: str) -> ResponseReturnValue:
    g.access.require("Subscription", "delete")
    _service().delete("Subscription", rid, gate=g.access)
    flash("Route removed.")
    return redirect(url_for("console.setup.alerts_page"), 303)
