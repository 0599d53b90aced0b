"""The dose results of one study as an HL7 v2 ORU^R01, built and checked with hl7apy against
the structures of the version the RIS speaks (2.3.1 to 2.6).

PID: the patient's identifiers, name, birth date and sex, as the RIS knows them from the HIS.
ORC/OBR: the order (placer and filler numbers of the reconciled ServiceRequest, the accession
number), the procedure, the examination time, result status F, or C when the study's dose
changed after an earlier result. OBX 1: the sentence for the report (ST); then one NM per
quantity (DICOM codes, UCUM units), per acquisition where a quantity is (CTDIvol).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException

from server.dose.results import DoseResult
from server.hl7.ack import escape

VERSIONS = ("2.3.1", "2.4", "2.5", "2.5.1", "2.6")
_SEX = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
_SUMMARY_CODE = "73569-6^Radiation exposure and protection information^LN"


class NotBuilt(ValueError):
    """The message would not validate for its version; the text says which part."""


@dataclass(frozen=True)
class Header:
    version: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    control_id: str
    at: datetime


@dataclass(frozen=True)
class Order:
    placer: str = ""
    filler: str = ""
    accession: str = ""
    code: str = ""  # the procedure, as code^text^system
    started: datetime | None = None
    corrected: bool = False


def oru_r01(header: Header, patient: dict[str, Any], order: Order, result: DoseResult) -> bytes:
    """The message as ER7 bytes (UTF-8, segments ending in CR); NotBuilt when hl7apy's strict
    validation for the version refuses it."""
    try:
        message = Message("ORU_R01", version=header.version,
                          validation_level=VALIDATION_LEVEL.STRICT)  # fmt: skip
        _msh(message, header)
        group = message.add_group("ORU_R01_PATIENT_RESULT")
        _pid(group.add_group("ORU_R01_PATIENT").pid, patient)
        observation = group.add_group("ORU_R01_ORDER_OBSERVATION")
        _orc_obr(observation, order, header)
        for n, (kind, code, value, unit, sub_id) in enumerate(_rows(result), 1):
            obx = observation.add_group("ORU_R01_OBSERVATION").obx
            obx.obx_1 = str(n)
            obx.obx_2 = kind
            obx.obx_3 = code
            obx.obx_4 = sub_id or "1"  # required in 2.3.1; tells acquisitions apart
            obx.obx_5 = value
            if unit:
                obx.obx_6 = f"{unit}^{unit}^UCUM"
            obx.obx_11 = "C" if order.corrected else "F"
        message.validate()
        text: str = message.to_er7()
    except (HL7apyException, ValueError) as e:
        raise NotBuilt(f"the ORU^R01 for HL7 {header.version} does not validate: {e}") from None
    return text.encode("utf-8")


def _msh(message: Message, header: Header) -> None:
    msh = message.msh
    msh.msh_3 = "KERMA"
    msh.msh_4 = escape(header.sending_facility)
    msh.msh_5 = escape(header.receiving_application)
    msh.msh_6 = escape(header.receiving_facility)
    msh.msh_7 = header.at.strftime("%Y%m%d%H%M%S")
    msh.msh_9 = "ORU^R01^ORU_R01"
    msh.msh_10 = header.control_id
    msh.msh_11 = "P"
    msh.msh_12 = header.version
    msh.msh_18 = "UNICODE UTF-8"


def _pid(pid: Any, patient: dict[str, Any]) -> None:
    pid.pid_1 = "1"
    identifiers = [
        f"{escape(str(i['value']))}^^^{escape(_issuer(i))}^MR"
        for i in patient.get("identifier", [])
        if i.get("value")
    ]
    pid.pid_3 = "~".join(identifiers) or "UNKNOWN"
    name = (patient.get("name") or [{}])[0]
    family, given = name.get("family", ""), " ".join(name.get("given", []))
    if family or given:
        pid.pid_5 = f"{escape(family)}^{escape(given)}"
    if patient.get("birthDate"):
        pid.pid_7 = patient["birthDate"].replace("-", "")
    if patient.get("gender") in _SEX:
        pid.pid_8 = _SEX[patient["gender"]]


def _issuer(identifier: dict[str, Any]) -> str:
    """Where the ID comes from: the issuer Kerma appended to the system, else the system."""
    system = str(identifier.get("system", ""))
    return system.rpartition(":")[2] if system.startswith("urn:kerma:patient-id:") else ""


def _orc_obr(group: Any, order: Order, header: Header) -> None:
    orc = group.orc
    orc.orc_1 = "RE"
    if order.placer:
        orc.orc_2 = escape(order.placer)
    filler = order.filler or order.accession
    if filler:
        orc.orc_3 = escape(filler)
    obr = group.obr
    obr.obr_1 = "1"
    if order.placer:
        obr.obr_2 = escape(order.placer)
    if filler:
        obr.obr_3 = escape(filler)
    obr.obr_4 = order.code or "113701^X-Ray Radiation Dose Report^DCM"
    if order.started is not None:
        obr.obr_7 = order.started.strftime("%Y%m%d%H%M%S")
    if order.accession:
        obr.obr_18 = escape(order.accession)  # placer field 1: the accession, as IHE SWF has it
    obr.obr_25 = "C" if order.corrected else "F"


def _rows(result: DoseResult) -> list[tuple[str, str, str, str, str]]:
    """(value type, OBX-3, OBX-5, unit, sub-ID: the acquisition's number) of each OBX, the
    sentence first."""
    rows = [("ST", _SUMMARY_CODE, escape(result.text), "", "")]
    for v in result.values:
        code = f"{v.item.code}^{escape(v.item.display)}^{v.item.system}"
        rows.append(("NM", code, f"{v.value:.{v.item.decimals}f}", v.item.unit, v.sub_id))
    return rows
