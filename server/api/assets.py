"""The browser libraries Kerma's pages use, served by Kerma itself at /assets/<name>: hospital
networks have no internet, so nothing comes from a CDN. `scripts/setup` installs them from the
npm registry into web/node_modules (`npm ci`, versions pinned in web/package-lock.json); the
table below says which file of which package each name is."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response

from server.fhir.errors import FhirError
from server.files import chunks

NODE_MODULES = Path(__file__).resolve().parents[2] / "web" / "node_modules"
ASSETS = {  # name -> (file under web/node_modules, media type)
    "graphiql.min.js": ("graphiql/graphiql.min.js", "text/javascript"),
    "graphiql.min.css": ("graphiql/graphiql.min.css", "text/css"),
    "react.production.min.js": ("react/umd/react.production.min.js", "text/javascript"),
    "react-dom.production.min.js": (
        "react-dom/umd/react-dom.production.min.js",
        "text/javascript",
    ),
}

bp = Blueprint("assets", __name__)


@bp.get("/assets/<name>")
def asset(name: str) -> Response:
    """A library file, public like the pages that load it (it holds no data)."""
    if name not in ASSETS:
        raise FhirError.of(404, "not-found", f"no asset {name}")
    relative, media = ASSETS[name]
    path = NODE_MODULES / relative
    if not path.is_file():
        raise FhirError.of(404, "not-found", f"{name} is not installed: run scripts/setup "
                           "(npm ci in web/)")  # fmt: skip
    response = Response(chunks(path), 200, content_type=f"{media}; charset=utf-8")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
