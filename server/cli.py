"""The `kerma` command: serve, users, ingest, openapi."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import orjson

from server.config import Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as e:
        raise click.UsageError(str(e)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Kerma: radiation dose management, FHIR-native.

    Settings come from KERMA_* environment variables (see README.md).
    """


@main.command()
def serve() -> None:
    """Run the HTTP server (FHIR REST at /fhir) on KERMA_HTTP_HOST:KERMA_HTTP_PORT."""
    import waitress

    from server.app import create_app
    from server.logs import configure, log_event

    settings = _settings()
    configure(settings.log_level)
    app = create_app(settings)
    log_event(
        logging.getLogger("kerma"),
        "serving",
        http=f"{settings.http_host}:{settings.http_port}",
        store=app.extensions["kerma.store"].name,
        data_dir=settings.data_dir,
    )
    waitress.serve(
        app,
        host=settings.http_host,
        port=settings.http_port,
        threads=settings.http_threads,
        ident="kerma",
    )


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
def users_add(name: str, role_name: str, devices: tuple[str, ...]) -> None:
    """Create a user; the bearer token is printed alone on the last line (shown only once)."""
    from server.auth.users import add_user
    from server.store import Duplicate, open_store

    store = open_store(_settings())
    try:
        token = add_user(store, name, role_name, devices)
    except (ValueError, Duplicate) as e:
        raise click.UsageError(str(e)) from None
    finally:
        store.close()
    click.echo(
        f"user {name} created with role {role_name}; keep this token, it is not shown again:",
        err=True,
    )
    click.echo(token)


@users.command("list")
def users_list() -> None:
    """List users (never their tokens)."""
    from server.store import open_store

    store = open_store(_settings())
    for user in store.users():
        state = "active" if user.active else "revoked"
        click.echo(f"{user.name}\t{user.role}\t{state}\t{','.join(user.devices)}")
    store.close()


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


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def ingest(paths: tuple[Path, ...]) -> None:
    """Load FHIR JSON files (a resource, or a batch/transaction Bundle) into the store."""
    from server.fhir import FhirError, build_service
    from server.fhir.loading import load_json
    from server.store import open_store

    settings = _settings()
    store = open_store(settings)
    service = build_service(store, settings)
    failed = 0
    for path in _files(paths):
        try:
            summary = load_json(service, orjson.loads(path.read_bytes()))
            click.echo(f"{path}: {summary}")
        except (FhirError, orjson.JSONDecodeError) as e:
            failed += 1
            click.echo(f"{path}: not loaded: {e}", err=True)
    store.close()
    sys.exit(1 if failed else 0)


def _files(paths: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(p for p in path.rglob("*.json")) if path.is_dir() else [path])
    return found


@main.command()
@click.option("--check", is_flag=True, help="exit 1 if openapi/openapi.yaml is not current")
def openapi(check: bool) -> None:
    """Regenerate openapi/openapi.yaml from the routes and the search parameter table."""
    from server.openapi_gen import render, spec_path

    text = render()
    path = spec_path()
    if check:
        if path.read_text(encoding="utf-8") != text:
            raise click.ClickException(f"{path} is out of date; run `kerma openapi`")
        click.echo(f"{path} is current")
        return
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")
