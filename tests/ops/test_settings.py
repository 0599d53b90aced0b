"""Settings are checked before anything starts: every problem named at once, exit 2, nothing
bound; `kerma config show` masks secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server.config import Settings
from server.ops.settings_check import effective, problems

KERMA = str(Path(sys.executable).parent / "kerma")

# (variable, bad value, words the one line about it says)
BAD_VALUES = [
    ("KERMA_TIMEZONE", "Europe/Berlinn", "not a time zone"),
    ("KERMA_DAILY_AT", "25:99", "HH:MM"),
    ("KERMA_ALERT_RULES", "nope", "no rule set 'nope'"),
    ("KERMA_DRL_SETS", "UK 2022", "no DRL set 'UK 2022'"),
    ("KERMA_SURVEY", "uk", "no survey 'uk'; known: de_bfs, uk_ukhsa"),
    ("KERMA_SMTP_STARTTLS", "maybe", "one of yes, no"),
    ("KERMA_STORE", "postgres://x", "mongodb:// URL"),
    ("KERMA_LOG_LEVEL", "LOUD", "one of DEBUG"),
    ("KERMA_LOG_FORMAT", "xml", "one of text, json"),
    ("KERMA_HTTP_PORT", "eighty", "not a whole number"),
    ("KERMA_HL7_PORT", "70000", "1 to 65535"),
    ("KERMA_HTTP_THREADS", "0", "at least 1"),
    ("KERMA_REDIS_URL", "localhost:6379", "redis://"),
    ("KERMA_BASE_URL", "kerma.hospital", "http:// or https://"),
    ("KERMA_AE_TITLE", "A_TITLE_LONGER_THAN_16", "AE title"),
    ("KERMA_PSEUDONYM_DATE_PRECISION", "hour", "one of day, month, year"),
    ("KERMA_PSEUDONYM_DESCRIPTIONS", "strip", "one of remove, keep"),
    ("KERMA_HTTP_PROT", "8080", "unknown setting"),
]


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    plain = {k: v for k, v in os.environ.items() if not k.startswith("KERMA_")}
    return {**plain, "KERMA_DATA_DIR": str(tmp_path / "data"), **values}


@pytest.mark.parametrize(("variable", "value", "words"), BAD_VALUES)
def test_each_bad_value_is_one_line_naming_the_setting(
    tmp_path: Path, variable: str, value: str, words: str
) -> None:
    settings, found = Settings.read_env({variable: value, "KERMA_DATA_DIR": str(tmp_path)})
    found += problems(settings)
    assert len(found) == 1, found
    assert found[0].startswith(f"{variable}={value}") and words in found[0]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    environ = {variable: value for variable, value, _ in BAD_VALUES}
    settings, found = Settings.read_env({**environ, "KERMA_DATA_DIR": str(tmp_path)})
    found += problems(settings)
    assert sorted(line.partition("=")[0] for line in found) == sorted(environ)


def test_the_default_settings_pass_and_ports_may_not_collide(tmp_path: Path) -> None:
    assert problems(Settings(data_dir=tmp_path)) == []
    clash = problems(Settings(data_dir=tmp_path, hl7_port=8080))
    assert clash == ["KERMA_HL7_PORT=8080: the same port as KERMA_HTTP_PORT; give each its own"]


def test_a_data_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    found = problems(Settings(data_dir=tmp_path / "file" / "kerma"))
    assert (
        len(found) == 1 and found[0].startswith("KERMA_DATA_DIR=") and "cannot be made" in found[0]
    )


@pytest.mark.slow
def test_serve_with_bad_values_exits_2_within_5_s_binding_nothing(tmp_path: Path) -> None:
    """Every kind of bad value, each in its own `kerma serve`, all started at once."""
    started = time.monotonic()
    runs = [
        (variable, subprocess.Popen([KERMA, "serve"], env=_env(tmp_path / variable, **{variable: value}),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for variable, value, _ in BAD_VALUES
    ]  # fmt: skip
    for variable, process in runs:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 2, stderr
        assert f"kerma: {variable}=" in stderr and "nothing was started" in stderr
        assert "Traceback" not in stderr
    # one at a time on two cores, each under 5 s; started together they share them
    assert time.monotonic() - started < 5 * len(runs) / 2


@pytest.mark.slow
def test_config_check_and_show(tmp_path: Path) -> None:
    good = subprocess.run([KERMA, "config", "check"], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert good.returncode == 0 and good.stdout.strip() == "settings ok"
    bad = subprocess.run([KERMA, "config", "check"], env=_env(tmp_path, KERMA_DAILY_AT="6.30"),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "KERMA_DAILY_AT=6.30: a local time of day as HH:MM" in bad.stderr
    secret = _env(
        tmp_path, KERMA_SMTP_PASSWORD="hunter2", KERMA_STORE="mongodb://kerma:s3cret@db/k"
    )
    shown = subprocess.run([KERMA, "config", "show", "--json"], env=secret, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    values = json.loads(shown.stdout)
    assert (
        values["KERMA_SMTP_PASSWORD"] == "(set)"
        and values["KERMA_STORE"] == "mongodb://kerma:***@db/k"
    )
    assert values["KERMA_HTTP_PORT"] == "8080" and "hunter2" not in shown.stdout


def test_effective_configuration_masks_keys() -> None:
    shown = dict(
        effective(Settings(token_key="abc", pseudonym_key="", redis_url="redis://:pw@h:6379/0"))
    )
    assert shown["KERMA_TOKEN_KEY"] == "(set)" and shown["KERMA_PSEUDONYM_KEY"] == ""
    assert shown["KERMA_REDIS_URL"] == "redis://:***@h:6379/0"
