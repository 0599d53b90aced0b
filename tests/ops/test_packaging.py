"""What operators install: the systemd units verified by systemd-analyze (and their exposure
rated by its security audit), the Dockerfile linted by hadolint, the Compose file's services.
Building and running the image needs a Docker engine, which this machine does not have."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).parent.parent.parent / "deploy"
KERMA = Path(sys.executable).parent / "kerma"
UNITS = ("kerma.service", "kerma-worker@.service")


def _installed_units(tmp_path: Path) -> list[Path]:
    """The units as installed here: this checkout's kerma, an empty settings file."""
    (tmp_path / "kerma.env").write_text("")
    placed = []
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text()
        text = text.replace("/opt/kerma/.venv/bin/kerma", str(KERMA))
        text = text.replace("/etc/kerma/kerma.env", str(tmp_path / "kerma.env"))
        (tmp_path / name.replace("@", "@1")).write_text(text)
        placed.append(tmp_path / name.replace("@", "@1"))
    return placed


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(KERMA.parent))
    if found is None:
        pytest.fail(f"{name} is not installed (scripts/setup installs it)")
    return found


def test_systemd_units_verify(tmp_path: Path) -> None:
    units = _installed_units(tmp_path)
    run = subprocess.run([_tool("systemd-analyze"), "verify", *map(str, units)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0 and run.stderr == "", run.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_units_are_hardened(tmp_path: Path, unit: str) -> None:
    installed = tmp_path / unit.replace("@", "@1")
    _installed_units(tmp_path)
    run = subprocess.run([_tool("systemd-analyze"), "security", "--offline=true", str(installed)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", run.stdout + run.stderr)
    assert exposure is not None, run.stdout + run.stderr
    assert float(exposure.group(1)) <= 2.5  # systemd rates 0-10; "OK" is below 4


def test_dockerfile_passes_hadolint() -> None:
    run = subprocess.run([_tool("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_compose_runs_kerma_workers_and_redis_from_the_dockerfile() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"kerma", "worker", "redis", "mongodb"}
    assert services["kerma"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["worker"]["command"] == ["worker"]
    assert services["mongodb"]["profiles"] == ["mongodb"]  # optional
    assert services["kerma"]["environment"]["KERMA_REDIS_URL"] == "redis://redis:6379/0"
    assert services["kerma"]["env_file"] == [{"path": "kerma.env", "required": False}]
    assert (DEPLOY / "kerma.env.example").exists()
    exposed = re.findall(r"^EXPOSE (.+)$", (DEPLOY / "Dockerfile").read_text(), re.M)[0].split()
    assert [p.split(":")[1] for p in services["kerma"]["ports"]] == exposed


def test_version() -> None:
    run = subprocess.run([str(KERMA), "--version"], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == f"kerma {version('kerma')}"
