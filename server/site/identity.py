"""Who reports: the site as one FHIR Organization, set up once (`kerma site set`, or PUT
/fhir/Organization/site): its name, address, the registration number the authority gave it,
and the medical physics expert responsible for the reports (a contact of the Organization
with the purpose `mpe`). Reports and surveys name them; the survey Bundle carries the
Organization as the reporter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.config import Settings
from server.fhir.errors import FhirError
from server.fhir.service import FhirService, body_of

SITE_ID = "site"  # Organization/site
ROLE_SYSTEM = "https://kerma.example.org/fhir/CodeSystem/site-role"
REGISTRATION_SYSTEM = "https://kerma.example.org/fhir/NamingSystem/authority-registration"
_MPE = {"system": ROLE_SYSTEM, "code": "mpe", "display": "medical physics expert"}


@dataclass(frozen=True)
class SiteIdentity:
    name: str
    address: str  # one line
    registration: str  # the number the authority registered the site (or its X-ray rooms) under
    mpe: str  # the responsible medical physics expert
    organization: dict[str, Any] | None  # the resource itself; None: not set up yet

    @property
    def reference(self) -> str:
        return f"Organization/{SITE_ID}"


@dataclass(frozen=True)
class About:
    """What every report and survey says of itself: who reports, the DRLs it compares with,
    and the FHIR base its Measures' canonicals live under."""

    site: SiteIdentity
    drl_sets: str
    base: str
    survey: str = ""  # the national survey the site sends (KERMA_SURVEY); "": Kerma's own

    @classmethod
    def of(cls, service: FhirService, settings: Settings) -> About:
        return cls(site_identity(service), settings.drl_sets, settings.fhir_base, settings.survey)


def site_identity(service: FhirService) -> SiteIdentity:
    """The site as set up; blank when it is not (reports then say so)."""
    try:
        body = body_of(service.read("Organization", SITE_ID))
    except FhirError:
        return SiteIdentity("", "", "", "", None)
    address = body.get("address", [{}])[0]
    line = ", ".join([*address.get("line", []), *(address[k] for k in ("postalCode", "city", "country")
                                                  if address.get(k))])  # fmt: skip
    registration = next((i.get("value", "") for i in body.get("identifier", [])
                         if i.get("system") == REGISTRATION_SYSTEM), "")  # fmt: skip
    mpe = next((c.get("name", {}).get("text", "") for c in body.get("contact", [])
                if any(x.get("code") == "mpe" for x in c.get("purpose", {}).get("coding", []))), "")  # fmt: skip
    return SiteIdentity(body.get("name", ""), line, registration, mpe, body)


def organization(name: str, address: list[str], registration: str, mpe: str) -> dict[str, Any]:
    """The Organization a site is set up as (address: its lines, the last one the city)."""
    body: dict[str, Any] = {"resourceType": "Organization", "id": SITE_ID, "active": True,
                            "name": name}  # fmt: skip
    if registration:
        body["identifier"] = [{"system": REGISTRATION_SYSTEM, "value": registration}]
    if address:
        body["address"] = [{"line": address[:-1], "city": address[-1]} if len(address) > 1
                           else {"line": address}]  # fmt: skip
    if mpe:
        body["contact"] = [{"purpose": {"coding": [_MPE]}, "name": {"text": mpe}}]
    return body
