"""Pushing a study's dose to an EHR's FHIR server: one transaction Bundle with the Patient,
the Device, the ImagingStudy, the irradiation-event Observations and the dose summary.

Nothing is created twice when a Bundle is sent again: the Patient, Device and ImagingStudy
are conditional creates by their identifiers, each event a conditional create by its
Irradiation Event UID, the summary a conditional update by the SOP Instance UID of the first
dose report read (so a study whose dose changed updates it). References between them point at
the Bundle's own entries; references to what is not sent (an order, a performer) keep only
their display. Authentication: a static bearer token, or SMART Backend Services (a JWT signed
with the site's private key, exchanged at the EHR's token endpoint for an access token).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import jwt
import orjson

from server.config import Settings
from server.fhir.service import FhirService, body_of
from server.notify.channels import SendFailed
from server.outbound.plan import FHIR_PUSH

_TIMEOUT_S = 30.0
_SENT_TYPES = ("Patient", "Device", "ImagingStudy")
_SUMMARY = "http://loinc.org|73569-6"
_EVENT = "http://dicom.nema.org/resources/ontology/DCM|113852"


class FhirPusher:
    def __init__(self, service: FhirService, settings: Settings) -> None:
        self._service = service
        self._settings = settings
        self._base = settings.fhir_push_url.rstrip("/")
        self._access: tuple[str, float] = ("", 0.0)  # token, expiry

    def channel(self, communication: dict[str, Any]) -> str:
        return FHIR_PUSH

    def send(self, communication: dict[str, Any]) -> str:
        bundle = self.bundle(communication["about"][0]["reference"])
        status, answer = self._request(self._base, orjson.dumps(bundle), "application/fhir+json")
        if status != 200:
            raise SendFailed(f"{self._base} answered {status}: {_diagnostics(answer)}",
                             permanent=status in (400, 403, 404, 405, 409, 412, 422))  # fmt: skip
        statuses = [e.get("response", {}).get("status", "") for e in answer.get("entry", [])]
        return f"{self._base} ({', '.join(sorted(set(statuses)))})"

    def bundle(self, study_ref: str) -> dict[str, Any]:
        """The transaction of a stored study, as it is now."""
        study = self._read(study_ref)
        events = self._observations(study_ref, _EVENT)
        summaries = self._observations(study_ref, _SUMMARY)
        sent: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {}
        for ref in _references(study) | {r for o in summaries + events for r in _references(o)}:
            rtype = ref.split("/")[0]
            if rtype in _SENT_TYPES and ref not in sent:
                resource = self._read(ref)
                sent[ref] = (_full_url(ref), resource, _if_none_exist(resource))
        sent[study_ref] = (_full_url(study_ref), study, _if_none_exist(study))
        for event in events:
            sent[f"Observation/{event['id']}"] = (
                _full_url(event["id"]),
                event,
                _if_none_exist(event),
            )
        urls = {ref: url for ref, (url, _, _) in sent.items()}
        for summary in summaries:
            urls[f"Observation/{summary['id']}"] = _full_url(summary["id"])
        entries = [_entry(url, resource, urls, {"method": "POST", **request})
                   for url, resource, request in sent.values()]  # fmt: skip
        for summary in summaries:
            query = urllib.parse.urlencode({"identifier": _token(summary["identifier"][0])})
            entries.append(_entry(urls[f"Observation/{summary['id']}"], summary, urls,
                                  {"method": "PUT", "url": f"Observation?{query}"}))  # fmt: skip
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    def _observations(self, study_ref: str, code: str) -> list[dict[str, Any]]:
        pairs = [("part-of", study_ref), ("code", code), ("_count", "1000")]
        return [body_of(s) for s in self._service.search("Observation", pairs).matches]

    def _read(self, ref: str) -> dict[str, Any]:
        rtype, rid = ref.split("/", 1)
        return body_of(self._service.read(rtype, rid))

    def _request(self, url: str, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": content_type, "Accept": "application/fhir+json",
                   "Authorization": f"Bearer {self._token()}"}  # fmt: skip
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, body, headers, method="POST"), timeout=_TIMEOUT_S
            ) as response:
                return response.status, orjson.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            if e.code == 401:
                self._access = ("", 0.0)  # ask for a new token next time
            return e.code, _json(e.read())
        except OSError as e:
            raise SendFailed(f"{url} did not answer ({getattr(e, 'reason', e)})") from None

    def _token(self) -> str:
        settings = self._settings
        if not settings.fhir_push_client_id:
            return settings.fhir_push_token
        token, expires = self._access
        if token and expires > time.time() + 30:
            return token
        endpoint = self._token_endpoint()
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "scope": settings.fhir_push_scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": _assertion(settings.fhir_push_client_id, settings.fhir_push_key,
                                           endpoint),
        }).encode()  # fmt: skip
        try:
            with urllib.request.urlopen(urllib.request.Request(endpoint, form, method="POST"),
                                        timeout=_TIMEOUT_S) as response:  # fmt: skip
                answer = orjson.loads(response.read())
        except urllib.error.HTTPError as e:
            raise SendFailed(f"the EHR refused a token ({e.code}): {_json(e.read())}") from None
        except OSError as e:
            raise SendFailed(f"{endpoint} did not answer ({getattr(e, 'reason', e)})") from None
        self._access = (
            str(answer["access_token"]),
            time.time() + float(answer.get("expires_in", 300)),
        )
        return self._access[0]

    def _token_endpoint(self) -> str:
        url = f"{self._base}/.well-known/smart-configuration"
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
                return str(orjson.loads(response.read())["token_endpoint"])
        except (OSError, KeyError, orjson.JSONDecodeError) as e:
            raise SendFailed(f"no SMART configuration at {url} ({e})") from None


def _assertion(client_id: str, key_file: Path, audience: str) -> str:
    """A client assertion (RFC 7523) signed with the site's private key (RSA: RS384, EC: ES384)."""
    key = key_file.read_bytes()
    algorithm = "ES384" if b"EC PRIVATE" in key or _is_ec(key) else "RS384"
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": uuid.uuid4().hex,
              "exp": int(time.time()) + 240}  # fmt: skip
    return jwt.encode(claims, key, algorithm=algorithm)


def _is_ec(pem: bytes) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return isinstance(load_pem_private_key(pem, password=None), ec.EllipticCurvePrivateKey)


def _entry(url: str, resource: dict[str, Any], urls: dict[str, str],
           request: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    body = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    return {"fullUrl": url, "resource": _pointed(body, urls), "request": request}


def _pointed(value: Any, urls: dict[str, str]) -> Any:
    """References to sent resources point at their entries; others keep only their display."""
    if isinstance(value, list):
        return [_pointed(v, urls) for v in value]
    if not isinstance(value, dict):
        return value
    if isinstance(value.get("reference"), str):
        ref = value["reference"]
        if ref in urls:
            return {**value, "reference": urls[ref]}
        kept = {k: v for k, v in value.items() if k != "reference"}
        return kept or {"display": f"{ref.split('/')[0]} (kept in Kerma)"}
    return {k: _pointed(v, urls) for k, v in value.items()}


def _references(resource: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("reference"), str) and "/" in value["reference"]:
                found.add(value["reference"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(resource)
    return found


def _if_none_exist(resource: dict[str, Any]) -> dict[str, str]:
    identifiers = [i for i in resource.get("identifier", []) if i.get("value")]
    if not identifiers:
        return {"url": resource["resourceType"]}
    query = urllib.parse.urlencode({"identifier": _token(identifiers[0])})
    return {"url": resource["resourceType"], "ifNoneExist": query}


def _token(identifier: dict[str, Any]) -> str:
    return f"{identifier.get('system', '')}|{identifier['value']}"


def _full_url(ref: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'kerma:' + ref)}"


def _json(raw: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return {"text": raw[:200].decode("utf-8", "replace")}
    return answer if isinstance(answer, dict) else {}


def _diagnostics(answer: dict[str, Any]) -> str:
    issues = answer.get("issue") or [{}]
    return str(issues[0].get("diagnostics") or answer.get("text") or answer)[:300]
