"""The `kerma` command: serve, users, ingest, openapi."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson

from server.config import Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as e:
        raise click.UsageError(str(e)) from None


_json_option = click.option("--json", "as_json", is_flag=True,
                            help="one JSON object per row, for scripts")  # fmt: skip


def _listing(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], as_json: bool) -> None:
    """Rows under a header, tab-separated; or JSON objects keyed by the header."""
    if as_json:
        click.echo(orjson.dumps([dict(zip(header, row, strict=True)) for row in rows]).decode())
        return
    for row in [header, *rows]:
        click.echo("\t".join(row))


def _list_entries(listed: dict[str, Any], as_json: bool) -> None:
    """A FHIR List's entries (reference, why), and how many on stderr."""
    entries = listed.get("entry", [])
    rows = [(e["item"]["reference"], e["flag"]["text"]) for e in entries]
    _listing(("reference", "why"), rows, as_json)
    click.echo(f"{len(entries)}: {listed['title'].lower()}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kerma", message="%(prog)s %(version)s")
def main() -> None:
    """Kerma: radiation dose management, FHIR-native.

    Settings come from KERMA_* environment variables (see docs/operations.md); exit statuses
    are in docs/deploy.md.
    """
    os.umask(0o077)  # what Kerma writes holds patient data: for its own user only


@main.command()
def serve() -> None:
    """Run the HTTP server (FHIR REST at /fhir) on KERMA_HTTP_HOST:KERMA_HTTP_PORT, the DICOM
    listener on KERMA_DICOM_HOST:KERMA_DICOM_PORT and the HL7 MLLP listener on
    KERMA_HL7_HOST:KERMA_HL7_PORT (port 0 disables a listener). Exits 2, binding nothing, when
    a setting is wrong or a port cannot be bound; SIGTERM stops it cleanly (exit 0)."""
    settings = _checked_settings()
    from server.logs import configure
    from server.ports import taken

    configure(settings.log_level, settings.log_format)
    if problems := taken(settings):
        for problem in problems:
            logging.getLogger("kerma").error("%s", problem)
        sys.exit(2)
    _metrics_across_processes(settings)
    from server.processes import start_fork_server

    start_fork_server(settings)  # before the imports below, which it then runs beside
    from server.serving import serve as run

    sys.exit(run(settings))


def _checked_settings() -> Settings:
    """The settings, or every problem with them on stderr (one line each) and exit 2."""
    from server.ops.settings_check import problems

    settings, found = Settings.read_env()
    found += problems(settings)
    if found:
        for line in found:
            click.echo(f"kerma: {line}", err=True)
        click.echo(f"kerma: {len(found)} setting(s) to fix; nothing was started", err=True)
        sys.exit(2)
    return settings


def _metrics_across_processes(settings: Settings) -> None:
    """Counters of every process `kerma serve` starts in files under KERMA_DATA_DIR/metrics:
    prometheus_client reads PROMETHEUS_MULTIPROC_DIR when first imported, so before that."""
    import shutil

    folder = settings.data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)  # the last run's processes are gone
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


@main.group()
def config() -> None:
    """The settings (KERMA_* environment variables) as this process sees them."""


@config.command("check")
def config_check() -> None:
    """Check every setting as kerma serve does at start, without starting anything: one line
    per problem and exit 2, or exit 0."""
    _checked_settings()
    click.echo("settings ok")


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="one JSON object, for scripts")
def config_show(as_json: bool) -> None:
    """The configuration in force (defaults included), secrets masked."""
    from server.ops.settings_check import effective

    settings, _ = Settings.read_env()
    pairs = effective(settings)
    if as_json:
        click.echo(orjson.dumps(dict(pairs), option=orjson.OPT_INDENT_2).decode())
        return
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        click.echo(f"{name:<{width}}  {value}")


@main.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def backup(dest: Path) -> None:
    """Copy KERMA_DATA_DIR into the new folder DEST while kerma serve may run: the SQLite store
    as one consistent snapshot, the spool, quarantine, keys and received files, with a manifest
    of checksums. Exit 1 if it could not be made. A MongoDB store is backed up with mongodump."""
    from server.ops.backup import BackupError
    from server.ops.backup import backup as make

    settings = _settings()
    try:
        summary = make(settings, dest)
    except (BackupError, OSError, sqlite3.Error) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{dest}: {summary.databases} databases and {summary.files} files, "
               f"{summary.bytes / 1e6:.1f} MB in {summary.seconds:.1f} s")  # fmt: skip
    if settings.store not in ("", "sqlite"):
        click.echo("the MongoDB store is not in it: run mongodump (docs/operations.md)", err=True)


@main.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="move what KERMA_DATA_DIR holds aside first")
def restore(source: Path, replace: bool) -> None:
    """Put a backup made by `kerma backup` back into KERMA_DATA_DIR, with kerma serve
    stopped; every file is checked against the manifest first. Exit 1 if it was not restored."""
    from server.ops.backup import BackupError
    from server.ops.backup import restore as put_back

    settings = _settings()
    try:
        summary = put_back(source, settings, replace)
    except (BackupError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{settings.data_dir}: {summary.databases} databases and {summary.files} files "
               f"restored from {source}")  # fmt: skip


@main.group()
def users() -> None:
    """Manage API users and their bearer tokens."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    "role_name",
    required=True,
    help="admin, mpe, radiographer, viewer, authority or integration",
)
@click.option(
    "--device", "devices", multiple=True, help="Device/<id> a radiographer works on (repeatable)"
)
@click.option("--password-stdin", is_flag=True,
              help="read a password for the web console from standard input (first line)")  # fmt: skip
def users_add(name: str, role_name: str, devices: tuple[str, ...], password_stdin: bool) -> None:
    """Create a user; the bearer token is printed alone on the last line (shown only once)."""
    from server.auth.passwords import set_password
    from server.auth.users import add_user
    from server.store import Duplicate, open_store

    password = _password(password_stdin) if password_stdin else None
    settings = _settings()
    store = open_store(settings)
    try:
        _devices_exist(store, settings, devices)
        token = add_user(store, name, role_name, devices)
        if password is not None:
            set_password(store, name, password)
    except (ValueError, Duplicate) as e:
        raise click.UsageError(str(e)) from None
    finally:
        store.close()
    click.echo(
        f"user {name} created with role {role_name}; keep this token, it is not shown again:",
        err=True,
    )
    click.echo(token)


def _devices_exist(store: Any, settings: Settings, devices: tuple[str, ...]) -> None:
    from server.site import build_service

    service = build_service(store, settings)
    for device in devices:
        rtype, _, rid = device.partition("/")
        if rtype == "Device" and service.store.read("Device", rid) is None:
            raise click.UsageError(
                f"no {device} in the store; kerma users add takes a registered Device "
                "(GET /fhir/Device lists them)"
            )


@users.command("token")
@click.argument("name")
def users_token(name: str) -> None:
    """Issue a new bearer token for a user (lost or leaked); the old one stops working. The
    token is printed alone on the last line (shown only once)."""
    from server.auth.users import reissue_token
    from server.store import open_store

    store = open_store(_settings())
    try:
        token = reissue_token(store, name)
        active = store.user_by_name(name).active  # type: ignore[union-attr]
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    finally:
        store.close()
    state = "" if active else " (the user is revoked: the token works once reactivated)"
    click.echo(f"new token for {name}{state}; the old one no longer works:", err=True)
    click.echo(token)


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_passwd(name: str, password_stdin: bool) -> None:
    """Set the password a user signs in to the web console with (asked twice on a terminal)."""
    from server.auth.passwords import set_password
    from server.store import open_store

    password = _password(password_stdin)
    store = open_store(_settings())
    try:
        set_password(store, name, password)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    finally:
        store.close()
    click.echo(f"password of {name} set")


def _password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


@users.command("list")
@_json_option
def users_list(as_json: bool) -> None:
    """List users (never their tokens): name, role, state, devices."""
    from server.store import open_store

    store = open_store(_settings())
    rows = [(u.name, u.role, "active" if u.active else "revoked", ",".join(u.devices))
            for u in store.users()]  # fmt: skip
    store.close()
    _listing(("name", "role", "state", "devices"), rows, as_json)


@users.command("revoke")
@click.argument("name")
def users_revoke(name: str) -> None:
    """Revoke a user's token (the user is kept for the audit trail)."""
    from server.store import open_store

    store = open_store(_settings())
    found = store.set_user_active(name, False)
    store.close()
    if not found:
        raise click.UsageError(f"no user {name!r}")
    click.echo(f"user {name} revoked")


@main.group()
def clients() -> None:
    """Register SMART backend services clients (systems that sign a JWT to get a token)."""


@clients.command("add")
@click.argument("name")
@click.option("--role", "role_name", required=True, help="the role whose rights its scopes draw on")
@click.option("--jwks", "jwks_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="the client's public keys, a JSON Web Key Set (RS384 or ES384)")  # fmt: skip
@click.option("--device", "devices", multiple=True, help="Device/<id> (for a device-bound role)")
def clients_add(name: str, role_name: str, jwks_path: Path, devices: tuple[str, ...]) -> None:
    """Register a client; its client_id is NAME. It asks POST /auth/token for access tokens
    (revoke it with `kerma users revoke NAME`)."""
    from server.auth.users import add_client
    from server.store import Duplicate, open_store

    store = open_store(_settings())
    try:
        add_client(store, name, role_name, jwks_path.read_text(encoding="utf-8"), devices)
    except (ValueError, Duplicate) as e:
        raise click.UsageError(str(e)) from None
    finally:
        store.close()
    click.echo(f"client {name} registered with role {role_name}; client_id: {name}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    help="processes that parse DICOM while this one stores",
)
def ingest(paths: tuple[Path, ...], workers: int) -> None:
    """Ingest DICOM dose objects (RDSRs, images) and FHIR JSON (a resource or a batch/transaction
    Bundle) from files and folders (recursive). Exits 1 if anything was quarantined or refused.
    """
    from server.fhir import FhirError
    from server.fhir.loading import NotFhir, load_json
    from server.ingest import build_ingestor
    from server.ingest.batch import ingest_files
    from server.ingest.pipeline import Result
    from server.site import build_service
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    ingestor = build_ingestor(store, settings)
    service = build_service(store, settings)
    tally: Counter[tuple[str, str]] = Counter()
    files = _files(paths)
    started = time.perf_counter()
    with _progress(len(files), "ingesting") as bar:
        for path in (p for p in files if p.suffix.lower() == ".json"):
            try:
                load_json(service, orjson.loads(path.read_bytes()))
                tally[("fhir", "ingested")] += 1
            except NotFhir:
                tally[("fhir", "skipped")] += 1
            except (FhirError, orjson.JSONDecodeError) as e:
                tally[("fhir", "refused")] += 1
                click.echo(f"\n{path}: not loaded: {e}", err=True)
            bar.update(1)

        def counted(path: Path, result: Result) -> None:
            tally[(result.modality or "-", result.status)] += 1
            if result.status == "quarantined":
                click.echo(f"\r{path}: quarantined: {result.reason}", err=True)
            if result.warned:
                click.echo(f"\r{path}: {result.warned}", err=True)
            done = sum(tally.values())
            if done % 20 == 0:  # the rate, in the bar's label
                bar.label = f"ingesting, {done / (time.perf_counter() - started):.0f} files/s"
            bar.update(1)

        ingest_files(ingestor, (p for p in files if p.suffix.lower() != ".json"), workers, counted)
    store.close()
    seconds = time.perf_counter() - started
    _print_tally(tally, len(files), seconds)
    sys.exit(1 if tally_bad(tally) else 0)


def _progress(length: int, label: str) -> Any:
    """A bar with the count, percentage and time left, on stderr; on a terminal only (in a
    log or a pipe, the label once)."""
    return click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True,
                             show_percent=True, show_eta=True)  # fmt: skip


def tally_bad(tally: Counter[tuple[str, str]]) -> int:
    return sum(n for (_, status), n in tally.items() if status in ("quarantined", "refused"))


def _print_tally(tally: Counter[tuple[str, str]], files: int, seconds: float) -> None:
    statuses = ("ingested", "duplicate", "skipped", "quarantined", "refused")
    click.echo(f"{'modality':10}" + "".join(f"{s:>12}" for s in statuses))
    for modality in sorted({m for m, _ in tally}):
        click.echo(f"{modality:10}" + "".join(f"{tally[(modality, s)]:>12}" for s in statuses))
    rate = files / seconds if seconds else 0.0
    click.echo(f"{files} files in {seconds:.1f} s ({rate:.1f} files/s)")


@main.group()
def hl7() -> None:
    """HL7 v2: send messages to a listener, or apply files directly."""


@hl7.command("send")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--host", default=None, help="default: KERMA_HL7_HOST")
@click.option("--port", type=int, default=None, help="default: KERMA_HL7_PORT")
def hl7_send(paths: tuple[Path, ...], host: str | None, port: int | None) -> None:
    """Send every message of the files over MLLP (one connection) and print each ACK."""
    from hl7.client import MLLPClient

    from server.hl7.files import messages_in

    settings = _settings()
    address = (host or settings.hl7_host, port or settings.hl7_port)
    try:
        with MLLPClient(*address) as client:
            answers = [
                (path, client.send_message(message))
                for path in paths
                for message in messages_in(path.read_bytes())
            ]
    except OSError as e:
        raise click.ClickException(
            f"no HL7 listener answers at {address[0]}:{address[1]} ({e.strerror or e}); is "
            "kerma serve running there (KERMA_HL7_PORT), or give --host and --port"
        ) from None
    _print_acks(answers)


@hl7.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def hl7_import(paths: tuple[Path, ...]) -> None:
    """Apply every message of the files (single messages or FHS/BHS batches) as if received."""
    from server.hl7.files import messages_in
    from server.ingest.hl7 import build_handler
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    handler = build_handler(store, settings)
    answers = [
        (path, handler.handle(message))
        for path in paths
        for message in messages_in(path.read_bytes())
    ]
    store.close()
    _print_acks(answers)


def _print_acks(answers: list[tuple[Path, bytes]]) -> None:
    """One line per message: file, MSA-1, MSA-3; exit 1 unless every one was AA."""
    codes = []
    for path, answer in answers:
        segments = answer.strip(b"\x0b\x1c\r").split(b"\r")
        msa = next(
            (s.decode(errors="replace").split("|") for s in segments if s.startswith(b"MSA")), []
        )
        code, text = [*msa, "", "", ""][1:4:2]
        codes.append(code)
        click.echo(f"{path.name}\t{code or '?'}\t{text}")
    sys.exit(0 if codes and all(c == "AA" for c in codes) else 1)


@main.command()
@click.argument(
    "kind",
    type=click.Choice(
        ["orders-without-dose", "dose-without-order", "demographics-mismatch", "unclassified"]
    ),
)
@click.option(
    "--hours", type=float, default=24.0, show_default=True, help="orders due longer ago than this"
)
@_json_option
def reconcile(kind: str, hours: float, as_json: bool) -> None:
    """List what does not match between dose data and the HIS/RIS: one line per resource
    (reference, why). The same lists are at GET /fhir/List/$reconcile?kind=..."""
    from server.orders.reconcile import reconciliation
    from server.site import build_service
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    service = build_service(store, settings)
    listed, _ = reconciliation(service, store, kind, hours)
    store.close()
    _list_entries(listed, as_json)


@main.command()
@click.option(
    "--now", type=click.DateTime(), default=None, help="run as of this time (default: now)"
)
def monitor(now: datetime | None) -> None:
    """Run the daily jobs once (kerma serve runs them at KERMA_DAILY_AT): the monitoring over
    the dose facts (medians above DRLs, parameter drift) as DetectedIssues, one line per new
    one, and the daily review lists of digest Subscriptions (sent by kerma serve)."""
    from server.jobs.daily import run_daily
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    issues, digests = run_daily(store, settings, (now or datetime.now()).astimezone())
    store.close()
    for ref in issues:
        click.echo(ref)
    click.echo(f"{len(issues)} new DetectedIssues, {len(digests)} review lists queued", err=True)


@main.command("protocol-review")
@click.argument("kind", type=click.Choice(["duplicate-protocols", "across-devices"]))
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    default=90,
    show_default=True,
    help="facts of the last days",
)
@_json_option
def protocol_review_cmd(kind: str, days: int, as_json: bool) -> None:
    """Duplicate protocols (same device, same parameters, different names) or standard
    procedures done differently on different devices: one line per device (reference, what).
    The same lists are at GET /fhir/List/$protocol-review?kind=..."""
    from server.alerts.monitoring import protocol_review
    from server.mappings import monitoring_table
    from server.site import build_service
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    listed = protocol_review(
        build_service(store, settings), monitoring_table(), kind, days, datetime.now().astimezone()
    )
    store.close()
    _list_entries(listed, as_json)


@main.command("graphql-schema")
@click.option("--check", is_flag=True, help="exit 1 if openapi/schema.graphql is not current")
def graphql_schema(check: bool) -> None:
    """Write the GraphQL schema (SDL) to openapi/schema.graphql."""
    from server.api.openapi import spec_path
    from server.graphql.schema import sdl

    path = spec_path().parent / "schema.graphql"
    text = sdl()
    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            raise click.ClickException(f"{path} is out of date; run `kerma graphql-schema`")
        return
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


@main.group()
def report() -> None:
    """PDF reports from the statistics."""


@report.command("department")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True, help="first day")
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True, help="day after the last"
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the PDF to write (.pdf)")  # fmt: skip
def report_department(start: datetime, end: datetime, out: Path) -> None:
    """The department report of [--from, --to) as PDF: per modality, procedure and device n,
    median, 75th percentile and DRLs; the alerts and how they were handled; charts."""
    from server.reports.documents import department_pdf
    from server.site import build_service
    from server.store import open_store

    settings = _settings()
    _writable_out(out, (".pdf",))
    first, last = _local_period(start, end, settings)
    store = open_store(settings)
    pdf = department_pdf(
        build_service(store, settings), settings, first, last, datetime.now().astimezone()
    )
    store.close()
    out.write_bytes(pdf)
    click.echo(f"{out} ({len(pdf)} bytes)", err=True)


@report.command("survey")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True, help="first day")
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True, help="day after the last"
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="a .pdf, or a .json Bundle of MeasureReports")  # fmt: skip
def report_survey(start: datetime, end: datetime, out: Path) -> None:
    """The national DRL survey of [--from, --to): per standard procedure and device n, median
    and mean of CTDIvol, DLP, DAP, AGD and patient weight."""
    from server.reports import survey
    from server.site import build_service
    from server.site.identity import About
    from server.stats.service import site_statistics
    from server.store import open_store

    settings = _settings()
    _writable_out(out, (".pdf", ".json"))
    first, last = _local_period(start, end, settings)
    store = open_store(settings)
    service = build_service(store, settings)
    stats = site_statistics(service, settings)
    made = survey.make(stats, About.of(service, settings), first, last, datetime.now().astimezone())
    if out.suffix.lower() == ".json":
        out.write_bytes(orjson.dumps(made.bundle, option=orjson.OPT_INDENT_2))
    else:
        out.write_bytes(made.pdf())
    store.close()
    click.echo(f"{out}: {made.rows} rows in {made.tables} tables", err=True)


def _writable_out(out: Path, suffixes: tuple[str, ...]) -> None:
    """--out names a file of a kind the command writes, in a folder that exists."""
    if out.suffix.lower() not in suffixes:
        raise click.UsageError(f"--out {out}: the file name must end in {' or '.join(suffixes)}")
    if not out.parent.is_dir():
        raise click.UsageError(f"--out {out}: the folder {out.parent} does not exist; create it")
    if not os.access(out.parent, os.W_OK):
        raise click.UsageError(f"--out {out}: the folder {out.parent} is not writable")


def _local_period(start: datetime, end: datetime, settings: Settings) -> tuple[datetime, datetime]:
    """[--from, --to) as days in the site's time zone."""
    from server.fhir.values import day_start
    from server.site import site_context

    if end <= start:
        raise click.UsageError("--to must be after --from")
    local = site_context(settings).timezone
    return day_start(start.date(), local), day_start(end.date(), local)


@main.group()
def classification() -> None:
    """The classification rules (mappings/classification/, or the Library edited over the API)."""


@classification.command("export")
def classification_export() -> None:
    """Print the shipped rules and procedures as the FHIR Library to edit and PUT (with its
    version raised) to /fhir/Library/<id>; the stored Library then replaces the shipped tables."""
    from server.classification.rules import library
    from server.mappings import read_text

    body = library(
        read_text("classification/rules.yaml"), read_text("classification/procedures.csv")
    )
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


@classification.command("reapply")
def classification_reapply() -> None:
    """Classify every stored study again with the rules in force (as POST
    /fhir/ImagingStudy/$reclassify does in the background), followed as a Task."""
    from server.fhir.service import body_of
    from server.jobs import tasks
    from server.jobs.kinds import kinds
    from server.site import build_service
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    service = build_service(store, settings)
    studies = service.search("ImagingStudy", [("_summary", "count")]).total or 0
    task = tasks.create(service, "reclassify", "classify every study again, from the command line")
    finished: list[dict[str, Any]] = []
    runner = threading.Thread(
        target=lambda: finished.append(tasks.run(service, task["id"], kinds(service, settings)))
    )
    runner.start()
    with _progress(studies, "classifying") as bar:
        while runner.is_alive():  # the Task says how far it got: "<n> done"
            runner.join(0.5)
            status = body_of(service.read("Task", task["id"])).get("businessStatus", {})
            bar.update(int(status.get("text", "0").split()[0]) - bar.pos)
    store.close()
    done = finished[0]
    for output in done.get("output", []):
        click.echo(f"{output['type']['text']}\t{output['valueInteger']}")
    click.echo(f"Task/{done['id']} {done['status']}", err=True)


@main.command()
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
def worker(burst: bool) -> None:
    """Run background jobs (re-classification, the daily run...) from Redis
    (KERMA_REDIS_URL), with the same KERMA_* settings as kerma serve."""
    from server.jobs.worker import work
    from server.logs import configure

    settings = _checked_settings()
    if not settings.redis_url:
        raise click.UsageError("set KERMA_REDIS_URL: without Redis, kerma serve runs the jobs")
    configure(settings.log_level, settings.log_format)
    work(settings, burst)


@main.group()
def drl() -> None:
    """Dose levels: national DRLs from mappings/drl/, as FHIR ObservationDefinitions."""


@drl.command("load")
def drl_load() -> None:
    """Create or update an ObservationDefinition for every comparable level of
    mappings/drl/national.csv (superseded and unverified ones too, marked as such)."""
    from server.mappings import national_levels
    from server.site import build_service
    from server.site.tables import load
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    levels = list(national_levels())
    created, updated = load(build_service(store, settings), levels)
    store.close()
    sets = len({level.set for level in levels})
    click.echo(f"{len(levels)} levels of {sets} sets: {created} created, {updated} updated")


@main.group()
def site() -> None:
    """Who reports: the site's name, address, registration and medical physics expert."""


@site.command("set")
@click.option("--name", required=True, help="the site as the authority knows it")
@click.option(
    "--address",
    "address",
    multiple=True,
    help="a line of the address (repeat; the last is the city)",
)
@click.option(
    "--registration", default="", help="the number the authority registered the site under"
)
@click.option("--mpe", default="", help="the medical physics expert responsible for the reports")
def site_set(name: str, address: tuple[str, ...], registration: str, mpe: str) -> None:
    """Set up Organization/site (reports and surveys name it; the survey Bundle's reporter)."""
    from server.site import build_service
    from server.site.identity import SITE_ID, organization
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    body = organization(name, list(address), registration, mpe)
    saved = build_service(store, settings).update("Organization", SITE_ID, body)
    store.close()
    click.echo(f"Organization/{SITE_ID} {'created' if saved.created else 'updated'}: {name}")


@main.group()
def facts() -> None:
    """The dose-facts projection that statistics read (derived from the FHIR resources)."""


@facts.command("rebuild")
def facts_rebuild() -> None:
    """Recompute the dose facts of every study from the stored resources."""
    from server.fhir.facts import rebuild
    from server.mappings import unit_table
    from server.site import build_service
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    studies = rebuild(build_service(store, settings), unit_table())
    store.close()
    click.echo(f"dose facts rebuilt for {studies} studies")


@main.group()
def pacs() -> None:
    """Query/retrieve from the PACS in KERMA_PACS_AE_TITLE / _HOST / _PORT."""


@pacs.command("pull")
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d"]), help="first study date")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="last study date (default: open)")
@click.option("--modality", "modalities", default="", help="e.g. CT,XA (default: every modality)")
@click.option("--limit", type=int, help="at most this many studies (a trial run)")
def pacs_pull(since: datetime, until: datetime | None, modalities: str, limit: int | None) -> None:
    """Fetch the dose objects of studies in a date window: RDSRs, else dose screens and image
    headers. Studies with an RDSR here, and studies unchanged since the last pull, are skipped;
    an interrupted pull resumes where it stopped."""
    from server.dicom.pacs import Pacs, PacsError
    from server.dicom.spool import Spool
    from server.ingest import build_ingestor
    from server.ingest.pull import PullState, matching_studies, pacs_config, pull
    from server.ingest.spool_worker import SpoolWorker
    from server.site import build_service
    from server.store import open_store

    settings = _settings()
    try:
        config = pacs_config(settings)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    store = open_store(settings)
    spool = Spool(settings.spool_dir)
    state = PullState(settings.data_dir / "pacs" / "pulled.json")
    wanted = tuple(m.strip().upper() for m in modalities.split(",") if m.strip())
    tally: Counter[str] = Counter()
    try:
        with Pacs(config, spool, lambda: None) as pacs_:
            studies = matching_studies(
                pacs_, since.date(), until.date() if until else None, wanted
            )[:limit]
            service = build_service(store, settings)
            with _progress(len(studies), "pulling") as bar:
                for outcome in pull(pacs_, studies, state, service):
                    tally[outcome.status] += 1
                    tally["objects"] += outcome.objects
                    tally["failed"] += outcome.failed
                    bar.update(1)
    except PacsError as e:
        raise click.ClickException(str(e)) from None
    click.echo(
        f"{tally['pulled']} studies pulled ({tally['objects']} objects, {tally['failed']} failed), "
        f"{tally['complete']} complete already, {tally['unchanged']} unchanged since the last pull"
    )
    if config.retrieve == "move":
        click.echo("objects were sent to the running `kerma serve`, which stores them")
    else:
        worker = SpoolWorker(spool, build_ingestor(store, settings))
        stored = worker.drain_unless_busy()
        click.echo(
            "the running `kerma serve` stores them"
            if stored is None
            else f"{stored} objects stored"
        )
    store.close()
    sys.exit(1 if tally["failed"] else 0)


@main.group()
def quarantine() -> None:
    """Objects that could not be read, kept with their reason."""


@quarantine.command("list")
@_json_option
def quarantine_list(as_json: bool) -> None:
    """One line per quarantined object: id, received (UTC), name, reason."""
    from server.ingest import Quarantine

    rows = [
        (item.path.stem, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(item.received)),
         item.name, item.reason)
        for item in Quarantine(_settings().quarantine_dir).items()
    ]  # fmt: skip
    _listing(("id", "received", "name", "reason"), rows, as_json)


@quarantine.command("show")
@click.argument("item_id")
def quarantine_show(item_id: str) -> None:
    """The reason and the file of one quarantined object."""
    item = _quarantined(item_id)
    click.echo(f"name: {item.name}\nfile: {item.path}\nreason: {item.reason}")


@quarantine.command("reprocess")
@click.argument("item_ids", nargs=-1)
def quarantine_reprocess(item_ids: tuple[str, ...]) -> None:
    """Read quarantined objects again (all, or the ids given); those now read leave quarantine."""
    from server.ingest import Quarantine, build_ingestor
    from server.store import open_store

    settings = _settings()
    box = Quarantine(settings.quarantine_dir)
    items = [i for i in box.items() if not item_ids or i.path.stem in item_ids]
    unknown = sorted(set(item_ids) - {i.path.stem for i in items})
    if unknown:
        raise click.UsageError(
            f"no quarantined object {', '.join(unknown)}; kerma quarantine list shows the ids"
        )
    store = open_store(settings)
    ingestor = build_ingestor(store, settings)
    still = 0
    for item in items:
        result = ingestor.ingest_bytes(item.path.read_bytes(), item.name, quarantine=False)
        if result.status == "quarantined":
            still += 1
            click.echo(f"{item.path.stem}: still unreadable: {result.reason}")
        else:
            box.release(item)
            click.echo(f"{item.path.stem}: {result.status}")
    store.close()
    sys.exit(1 if still else 0)


def _quarantined(item_id: str) -> Any:
    from server.ingest import Quarantine

    for item in Quarantine(_settings().quarantine_dir).items():
        if item.path.stem == item_id:
            return item
    raise click.UsageError(
        f"no quarantined object {item_id!r}; kerma quarantine list shows the ids"
    )


def _files(paths: tuple[Path, ...]) -> list[Path]:
    """Files named, and in folders those that can be DICOM or FHIR JSON (.dcm, .json, or no
    extension, as PACS exports name them); READMEs and images beside them are left alone."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.suffix.lower() in (".dcm", ".json", "")
                )
            )
        else:
            found.append(path)
    return found


@main.command()
@click.option("--check", is_flag=True, help="exit 1 if openapi/openapi.yaml is not current")
def openapi(check: bool) -> None:
    """Regenerate openapi/openapi.yaml from the routes and the search parameter table."""
    from server.api.openapi import render, spec_path

    text = render()
    path = spec_path()
    if check:
        if path.read_text(encoding="utf-8") != text:
            raise click.ClickException(f"{path} is out of date; run `kerma openapi`")
        click.echo(f"{path} is current")
        return
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")
