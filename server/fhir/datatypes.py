"""The FHIR R4 shapes of what Kerma builds itself, as TypedDicts: mypy then catches a misspelt
element (`valueQuanity`) or a wrong kind of value where a resource is made. Only the elements
Kerma writes are listed; JSON that comes in stays `dict[str, Any]` until it is validated."""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Coding(TypedDict, total=False):
    system: str
    code: str
    display: str


class CodeableConcept(TypedDict, total=False):
    coding: list[Coding]
    text: str


class Quantity(TypedDict, total=False):
    value: float | int
    unit: str
    system: str
    code: str


class Range(TypedDict, total=False):
    low: Quantity
    high: Quantity


class SampledData(TypedDict, total=False):
    origin: Quantity
    period: float | int  # ms between samples
    dimensions: int
    data: str  # decimals separated by spaces


class Identifier(TypedDict, total=False):
    use: str
    system: str
    value: str
    type: CodeableConcept
    assigner: Reference


class Reference(TypedDict, total=False):
    reference: str
    identifier: Identifier
    display: str


class Extension(TypedDict, total=False):
    url: str
    extension: list[Extension]
    valueString: str
    valueCode: str
    valueDate: str
    valueInteger: int
    valueCoding: Coding


class HumanName(TypedDict, total=False):
    text: str
    family: str
    given: list[str]
    prefix: list[str]
    suffix: list[str]
    extension: list[Extension]


class Patient(TypedDict, total=False):
    resourceType: str
    identifier: list[Identifier]
    active: bool
    name: list[HumanName]
    gender: str
    birthDate: str


class Practitioner(TypedDict, total=False):
    resourceType: str
    identifier: list[Identifier]
    name: list[HumanName]


class Meta(TypedDict, total=False):
    tag: list[Coding]
    profile: list[str]


class Annotation(TypedDict):
    text: str


class ObservationComponent(TypedDict):
    code: CodeableConcept
    valueQuantity: NotRequired[Quantity]
    valueCodeableConcept: NotRequired[CodeableConcept]
    valueString: NotRequired[str]
    valueInteger: NotRequired[int]
    valueDateTime: NotRequired[str]
    valueRange: NotRequired[Range]
    valueSampledData: NotRequired[SampledData]
    dataAbsentReason: NotRequired[CodeableConcept]


class Observation(TypedDict, total=False):
    resourceType: str
    meta: Meta
    identifier: list[Identifier]
    status: str
    category: list[CodeableConcept]
    code: CodeableConcept
    subject: Reference
    partOf: list[Reference]
    basedOn: list[Reference]
    focus: list[Reference]
    hasMember: list[Reference]
    performer: list[Reference]
    device: Reference
    effectiveDateTime: str
    bodySite: CodeableConcept
    method: CodeableConcept
    note: list[Annotation]
    component: list[ObservationComponent]
    valueString: str
    valueQuantity: Quantity


class DeviceName(TypedDict):
    name: str
    type: str


class DeviceVersion(TypedDict):
    value: str


class Device(TypedDict, total=False):
    resourceType: str
    meta: Meta
    identifier: list[Identifier]
    status: str
    type: CodeableConcept
    manufacturer: str
    deviceName: list[DeviceName]
    modelNumber: str
    serialNumber: str
    version: list[DeviceVersion]
    owner: Reference
    location: Reference


class ImagingStudyInstance(TypedDict):
    uid: str
    sopClass: Coding


class ImagingStudyPerformer(TypedDict):
    function: CodeableConcept
    actor: Reference


class ImagingStudySeries(TypedDict):
    uid: str
    modality: Coding
    number: NotRequired[int]
    description: NotRequired[str]
    performer: NotRequired[list[ImagingStudyPerformer]]
    instance: NotRequired[list[ImagingStudyInstance]]


class ImagingStudy(TypedDict, total=False):
    resourceType: str
    id: str
    meta: Meta
    extension: list[Extension]
    identifier: list[Identifier]
    status: str
    modality: list[Coding]
    subject: Reference
    started: str
    basedOn: list[Reference]
    referrer: Reference
    interpreter: list[Reference]
    procedureCode: list[CodeableConcept]
    location: Reference
    description: str
    numberOfSeries: int
    numberOfInstances: int
    series: list[ImagingStudySeries]
