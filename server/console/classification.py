"""The classification workbench: the examinations no rule maps, with how many; mapping one to
a standard procedure after seeing which stored studies would change; the rules as a table to
add to and remove from; and classifying the stored studies again as a Task with a progress bar.
Every change is a new version of the rules Library, as over the API."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from server.classification import workbench
from server.console.progress import REFRESH_S, task_view
from server.fhir.errors import FhirError
from server.fhir.service import FhirService
from server.jobs import tasks

bp = Blueprint("classification", __name__)
MODALITIES = ("CT", "DX", "MG", "RF", "XA")


def _service() -> FhirService:
    return current_app.extensions["kerma.fhir"]  # type: ignore[no-any-return]


@bp.get("/classification")
def workbench_page() -> str:
    tables = workbench.current(_service())
    task = request.args.get("task", "")
    return render_template(
        "console/classification.html",
        unmapped=workbench.unmapped(_service()),
        tables=tables,
        names={p["code"]: p["name"] for p in tables.procedures()},
        task=task_view(_service(), task) if task else None,
        refresh_s=REFRESH_S,
        may_change=_may_change(),
        modalities=MODALITIES,
    )


@bp.get("/classification/preview")
def preview_page() -> str:
    """What mapping these words to that procedure would change, before anything is written."""
    g.access.require("ImagingStudy")
    modality, words, procedure = (request.args.get(k, "").strip()
                                  for k in ("modality", "words", "procedure"))  # fmt: skip
    tables = workbench.current(_service())
    rule = workbench.mapping_rule(tables, modality, words, _code(procedure))
    changed = workbench.with_rule(tables, rule)
    changes, count = workbench.preview(_service(), changed.compiled())
    return render_template("console/classification_preview.html", rule=rule, changes=changes,
                           count=count, modality=modality, words=words,
                           procedure=rule["procedure"], may_change=_may_change(),
                           names={p["code"]: p["name"] for p in tables.procedures()})  # fmt: skip


@bp.post("/classification/map")
def map_words() -> ResponseReturnValue:
    """Add the previewed rule and classify the stored studies again."""
    _require_reclassify()
    form = request.form
    tables = workbench.current(_service())
    rule = workbench.mapping_rule(tables, form.get("modality", ""), form.get("words", ""),
                                  _code(form.get("procedure", "")))  # fmt: skip
    return _changed(workbench.with_rule(tables, rule), f"rule {rule['id']} added")


@bp.post("/classification/rules")
def add_rule() -> ResponseReturnValue:
    _require_reclassify()
    form = request.form
    rule = {
        "id": form.get("id", "").strip(),
        "modality": [m for m in form.getlist("modality") if m in MODALITIES],
        "all": _lines(form.get("all", "")),
        "none": _lines(form.get("none", "")),
        "procedure": _code(form.get("procedure", "")) or None,
    }
    if not rule["modality"] or not rule["all"]:
        raise FhirError.of(400, "invalid", "a rule needs a modality and a pattern to find")
    if not rule["none"]:
        del rule["none"]
    tables = workbench.current(_service())
    return _changed(workbench.with_rule(tables, rule), f"rule {rule['id']} added")


@bp.post("/classification/rules/<rule_id>/delete")
def delete_rule(rule_id: str) -> ResponseReturnValue:
    _require_reclassify()
    tables = workbench.current(_service())
    return _changed(workbench.without_rule(tables, rule_id), f"rule {rule_id} removed")


@bp.post("/classification/reapply")
def reapply() -> ResponseReturnValue:
    """Classify every stored study again with the rules in force."""
    _require_reclassify()
    return _reclassify("classify every study again")


def _changed(tables: workbench.Tables, what: str) -> ResponseReturnValue:
    """Write the new rules version, then classify the stored studies again with it."""
    workbench.save(_service(), tables, g.access)
    flash(f"Rules version {tables.version}: {what}.")
    return _reclassify(f"classify every study again after {what}")


def _reclassify(what: str) -> ResponseReturnValue:
    total = workbench.studies_count(_service())
    task = tasks.create(_service(), "reclassify", f"{what}, asked by {g.user.name}",
                        {"total": str(total)})  # fmt: skip
    current_app.extensions["kerma.jobs"].submit(task["id"])
    return redirect(url_for("console.classification.workbench_page", task=task["id"]), 303)


def _may_change() -> bool:
    return g.access.role.can("write", "Library") and "reclassify" in g.access.role.operations


def _require_reclassify() -> None:
    if not _may_change():
        raise FhirError.of(403, "forbidden", f"role {g.access.role.name} may not change the "
                           "classification rules")  # fmt: skip


def _code(text: str) -> str:
    """A procedure as chosen in the list ("RPID16 CT Chest wo IV Contrast") or typed (RPID16)."""
    return text.strip().split(" ", 1)[0]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]
