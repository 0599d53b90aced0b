"""Settings: every KERMA_* environment variable, read in one place.

The table in docs/operations.md lists the same variables; `tests/test_config.py` keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a Kerma process needs to know about its site and its neighbours."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Few: requests beyond them wait their turn, whole, instead of all slowing each other down
    # under the interpreter lock (busy-hour search p95 165-182 ms at 4, 195 at 8, 231 at 16).
    http_threads: int = 4
    # processes serving HTTP, each with http_threads threads; 0 = one per core
    http_processes: int = 0
    data_dir: Path = Path("kerma-data")
    # "" = embedded SQLite under data_dir; "mongodb://..." = MongoDB.
    store: str = ""
    redis_url: str = ""
    dicom_host: str = "127.0.0.1"
    dicom_port: int = 11112
    # processes listening for DICOM associations on the one port; 0 = one per core. One by
    # default: a second takes cores from HTTP under load (docs/operations.md has the figures)
    dicom_processes: int = 1
    # How far DICOM associations yield the cores to HTTP under load: their threads' nice value.
    dicom_nice: int = 5
    # "*" = any calling AE; else comma-separated titles, plus devices registered over the API.
    dicom_allowed_aes: str = "*"
    hl7_host: str = "127.0.0.1"
    hl7_port: int = 2575
    # the largest HL7 message Kerma reads (larger ones get AR with the reason), and how long a
    # connection may stay open without delivering a whole message
    hl7_max_bytes: int = 1024 * 1024
    hl7_max_segments: int = 1000
    hl7_timeout_seconds: int = 300
    ae_title: str = "KERMA"
    # Time zone of DICOM times that carry no offset (IANA name, e.g. Europe/Berlin).
    # The PACS Kerma pulls dose objects from (empty AE title: none); "get" or "move" retrieves.
    pacs_ae_title: str = ""
    pacs_host: str = "127.0.0.1"
    pacs_port: int = 104
    pacs_retrieve: str = "get"
    # `kerma serve` pulls the last pacs_pull_days days every pacs_pull_minutes (0: never).
    pacs_pull_minutes: int = 0
    pacs_pull_days: int = 2
    timezone: str = "UTC"
    # FHIR identifier system of the local patient ID (0010,0020); an issuer (0010,0021) is appended.
    patient_id_system: str = "urn:kerma:patient-id"
    # Issuer assumed for DICOM objects that name none: the HIS's assigning authority (PID-3.4)
    # of the same IDs, so ADT messages find the patients DICOM created.
    patient_id_issuer: str = ""
    # The DRL sets reports are compared with, by name as in mappings/drl/national.csv, comma-
    # separated (e.g. "UKHSA GB 2022" or "BfS DE 2022"); empty: no DRL comparison.
    drl_sets: str = ""
    # Significant-event and follow-up rule sets of mappings/alerts/ (file names without
    # .yaml, comma-separated), e.g. "de_strlschv_annex14,sir_srdl"; empty: none.
    alert_rules: str = ""
    # The national DRL survey the site sends (mappings/surveys/, file name without .yaml), e.g.
    # "uk_ukhsa" or "de_bfs"; empty: Kerma's own survey of every standard procedure and device.
    survey: str = ""
    # Public base URL of the FHIR endpoint, used in Location headers and Bundle links.
    # Empty = derived from each request's Host header.
    base_url: str = ""
    # Host names (comma-separated; "*" = any) whose requests are answered while base_url is
    # empty, since links are then made from the Host header; "" = this machine's names and
    # loopback. Others get 400. With base_url set, any Host is answered.
    allowed_hosts: str = ""
    # e-mail notifications (FHIR Subscriptions with channel email): "" = none are sent
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "kerma@localhost"
    smtp_starttls: str = "no"  # "yes": STARTTLS before login and sending
    smtp_user: str = ""
    smtp_password: str = ""
    # failed notifications are retried after notify_retry_seconds, then twice as long each
    # time, up to notify_attempts attempts in all
    notify_retry_seconds: int = 30
    notify_attempts: int = 8
    # local time of the daily run: monitoring (medians, drift) and the daily review lists
    daily_at: str = "06:30"
    # the key of the pseudonyms in exports; "" = a random key kept in data_dir/pseudonym.key
    pseudonym_key: str = ""
    # the key that signs SMART access tokens; "" = a random key kept in data_dir/token.key
    token_key: str = ""
    # browser origins allowed to call the API (CORS), comma-separated; "" = none
    cors_origins: str = ""
    # the web console: how long a sign-in lasts, and how many failed sign-ins of one name or
    # one address lock it out for sign_in_lock_minutes
    session_hours: int = 12
    sign_in_attempts: int = 5
    sign_in_lock_minutes: int = 15
    # what is left of dates and times in pseudonymised outputs: day, month or year
    pseudonym_date_precision: str = "day"
    # the examination's and the devices' own words (study, requested procedure and protocol
    # descriptions) in pseudonymised outputs: remove (DICOM PS3.15's Basic Profile: free text
    # may name a person) or keep (its Clean Descriptors Option: the site's data-protection
    # officer has checked what its devices and RIS write)
    pseudonym_descriptions: str = "remove"
    max_body_bytes: int = 20 * 1024 * 1024
    page_size_default: int = 50
    page_size_max: int = 1000
    # GraphQL: the deepest nesting and the highest cost (fields x list sizes) of one query
    graphql_max_depth: int = 15
    graphql_max_cost: int = 1_000_000
    # dose results to the RIS: an HL7 v2 ORU^R01 per study over MLLP (port 0: none are sent)
    ris_host: str = "127.0.0.1"
    ris_port: int = 0
    ris_hl7_version: str = "2.5.1"
    ris_application: str = "RIS"
    ris_facility: str = ""
    # received RDSRs forwarded by C-STORE (IHE REM Dose Information Reporter): destinations as
    # AET@host:port, comma-separated; the second list gets copies de-identified per PS3.15;
    # forward_from: calling AE titles whose RDSRs are forwarded (empty: every device's)
    forward_to: str = ""
    forward_deidentified_to: str = ""
    forward_from: str = ""
    # the dose of each study pushed to an EHR's FHIR server as a transaction ("" = none), with a
    # static bearer token, or SMART Backend Services: client ID, private key (PEM), scopes
    fhir_push_url: str = ""
    fhir_push_token: str = ""
    fhir_push_client_id: str = ""
    fhir_push_key: Path = Path()
    fhir_push_scope: str = "system/*.rs system/*.cu"
    log_level: str = "INFO"
    # "text": `time LEVEL logger event key=value`; "json": one JSON object a line, for collectors
    log_format: str = "text"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from KERMA_<FIELD> variables; unknown or mistyped ones are an error."""
        settings, problems = cls.read_env(environ)
        if problems:
            raise ValueError("; ".join(problems))
        return settings

    @classmethod
    def read_env(cls, environ: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
        """Settings from KERMA_<FIELD> variables, and every variable that could not be read (an
        unknown name, a number that is not one), each one line; those keep their default."""
        environ = os.environ if environ is None else environ
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        problems: list[str] = []
        for key, raw in sorted(environ.items()):
            if not key.startswith("KERMA_") or key.startswith("KERMA_TEST_"):
                continue
            name = key.removeprefix("KERMA_").lower()
            if name not in fields:
                problems.append(
                    f"{key}={raw}: unknown setting; see the table in docs/operations.md"
                )
                continue
            try:
                values[name] = _convert(fields[name].type, raw, key)
            except ValueError as e:
                problems.append(str(e))
        return cls(**values), problems  # type: ignore[arg-type]

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "kerma.sqlite3"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def fhir_base(self) -> str:
        """The FHIR base URL others reach Kerma at: base_url, else the HTTP listener's."""
        return self.base_url or f"http://{self.http_host}:{self.http_port}/fhir"

    @property
    def facts_dir(self) -> Path:
        """The columnar copy of the dose facts (server/stats/snapshot.py): a cache."""
        return self.data_dir / "facts"


def _convert(type_name: object, raw: str, key: str) -> object:
    if type_name in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{key}={raw}: not a whole number") from None
    if type_name in ("Path", Path):
        return Path(raw)
    return raw
