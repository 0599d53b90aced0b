"""What ORM^O01 and OMI^O23 say about each order: ORC (control, numbers, requester, priority),
OBR (procedure, reason, modality, IHE accession in OBR-18), TQ1 (time), IPC (accession, study
UID, modality of an imaging order) and ZDS (study UID, IHE scheduled workflow)."""

from __future__ import annotations

from server.dose.model import Coded
from server.dose.order import OrderRecord, Person
from server.hl7.adt import Unreadable
from server.hl7.message import Message, table, timestamp


def orders(message: Message) -> list[OrderRecord]:
    """One record per ORC (an order message may carry several orders)."""
    count = message.count("ORC")
    if not count:
        raise Unreadable("an order message needs an ORC segment", "100", "ORC")
    return [_order(message, i, count) for i in range(1, count + 1)]


def _order(message: Message, i: int, count: int) -> OrderRecord:
    def seg(name: str) -> str:
        """The i-th segment of that name when each order has one, else the first."""
        return f"{name}{i}" if message.count(name) == count else f"{name}1"

    get = message.get
    orc, obr, ipc, zds, tq1 = seg("ORC"), seg("OBR"), seg("IPC"), seg("ZDS"), seg("TQ1")
    control = get(f"{orc}.F1").upper()
    status = _status(control, get(f"{orc}.F5").upper(), i)
    placer = get(f"{orc}.F2.R1.C1") or get(f"{obr}.F2.R1.C1")
    filler = get(f"{orc}.F3.R1.C1") or get(f"{obr}.F3.R1.C1")
    accession = get(f"{ipc}.F1.R1.C1") or get(f"{obr}.F18")
    if not (placer or filler or accession):
        raise Unreadable(
            "the order has no number: ORC-2, ORC-3 and the accession number are empty",
            "101",
            f"ORC^{i}^2",
        )
    priority = get(f"{tq1}.F9.R1.C1") or get(f"{orc}.F7.R1.C6") or get(f"{obr}.F27.R1.C6")
    return OrderRecord(
        status=status,
        placer=placer,
        filler=filler,
        accession=accession,
        study_uid=get(f"{ipc}.F3.R1.C1") or get(f"{zds}.F1.R1.C1"),
        requested_procedure_id=get(f"{ipc}.F2.R1.C1") or get(f"{obr}.F19"),
        procedure=_coded(message, f"{obr}.F4") or _coded(message, f"{obr}.F44"),
        modality=get(f"{ipc}.F5.R1.C1") or get(f"{obr}.F24"),
        reasons=tuple(c for c in [_coded(message, f"{obr}.F31")] if c),
        requester=_person(message, f"{orc}.F12") or _person(message, f"{obr}.F16"),
        priority=table("priorities").get(priority.upper(), ""),
        scheduled=timestamp(get(f"{tq1}.F7.R1.C1"))
        or timestamp(get(f"{obr}.F27.R1.C4"))
        or timestamp(get(f"{obr}.F36.R1.C1")),
        authored=timestamp(get(f"{orc}.F9.R1.C1")) or timestamp(get("MSH.F7.R1.C1")),
    )


def _status(control: str, order_status: str, i: int) -> str:
    status = table("order_control").get(control)
    if status == "by-status":
        status = table("order_status").get(order_status)
    if status is None:
        raise Unreadable(
            f"order control {control!r} / status {order_status!r} is not one Kerma applies",
            "103",
            f"ORC^{i}^1",
        )
    return status


def _coded(message: Message, field: str) -> Coded | None:
    """A CE/CWE (code^text^system) as a Coded: the system's FHIR URL when known, else its name."""
    code, text, system = (message.get(f"{field}.R1.C{c}") for c in (1, 2, 3))
    if not (code or text):
        return None
    url = table("coding_systems").get(system.upper(), "")
    if not url:  # a local or unknown system: keep what people can read
        return Coded(
            "", "", " ".join(p for p in (text or code, f"({system})" if system else "") if p)
        )
    return Coded(url, code, text)


def _person(message: Message, field: str) -> Person | None:
    """An XCN: id^family^given^middle^suffix^prefix."""
    part = [message.get(f"{field}.R1.C{c}") for c in (1, 2, 3, 6)]
    person = Person(id=part[0], family=part[1], given=part[2], prefix=part[3])
    return person if person.id or person.family else None
