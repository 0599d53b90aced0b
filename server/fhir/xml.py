"""FHIR's XML format: resources to and from XML through fhir.resources (R4B models, the R4
structure Kerma's resources follow; lxml underneath). Kerma keeps and computes JSON; XML is
made at the door for clients that ask for it (`_format=xml`, `Accept: application/fhir+xml`)
and read at the door from clients that send it."""

from __future__ import annotations

from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from lxml import etree
from pydantic import ValidationError

from server.fhir.errors import FhirError

XML_TYPES = ("application/fhir+xml", "application/xml", "text/xml")
NAMESPACE = "{http://hl7.org/fhir}"


def to_xml(resource: dict[str, Any]) -> bytes:
    """The resource (a Bundle, an OperationOutcome...) as FHIR XML."""
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    text = model.model_dump_xml()
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def from_xml(data: bytes) -> dict[str, Any]:
    """A resource sent as FHIR XML, as Kerma's JSON; 400 when it is not FHIR XML."""
    try:
        root = etree.fromstring(
            data, parser=etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError as e:
        raise FhirError.of(400, "structure", f"the body is not well-formed XML: {e}") from None
    tag = str(root.tag)
    if not tag.startswith(NAMESPACE):
        raise FhirError.of(
            400, "structure", "the XML is not in the FHIR namespace http://hl7.org/fhir"
        )
    rtype = tag.removeprefix(NAMESPACE)
    try:
        model = get_fhir_model_class(rtype).model_validate_xml(data)
    except KeyError:
        raise FhirError.of(400, "not-supported", f"{rtype} is not a FHIR resource type") from None
    except (ValidationError, ValueError) as e:
        raise FhirError.of(400, "structure", f"the XML is not a valid {rtype}: {e}") from None
    return orjson.loads(model.model_dump_json())  # type: ignore[no-any-return]
