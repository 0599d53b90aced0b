"""Hostile HL7: messages beyond the limits get AR at once (the cost of refusing does not grow
with the message), a huge message does not delay another sender, a message that stops Kerma
is not replayed for ever, and idle connections are closed."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace

import orjson
from hl7.client import MLLPClient

from server.config import Settings
from server.fhir import FhirService
from server.hl7.inbox import Inbox
from server.hl7.listener import Hl7Listener
from server.ingest.hl7 import MAX_ATTEMPTS, Hl7Handler, build_handler
from server.network import start_hl7
from server.store.port import Store
from tests.hl7.conftest import err, message, msa, msh, patients


def _with_obx(control: str, count: int, patient: str = "77") -> bytes:
    obx = [f"OBX|{i}|NM|29463-7^Body weight^LN||{70 + i % 5}|kg|||||F" for i in range(count)]
    return message(msh("ADT^A08", control), f"PID|||{patient}^^^H||Doe^Heavy", *obx)


def test_a_message_over_the_segment_limit_gets_ar_at_once(handler: Hl7Handler) -> None:
    raw = _with_obx("BIG1", 4000)
    started = time.perf_counter()
    answer = handler.handle(raw)
    elapsed = time.perf_counter() - started
    fields = msa(answer)
    assert fields[1:3] == ["AR", "BIG1"]  # the control id is echoed
    assert "4002 segments" in fields[3] and "KERMA_HL7_MAX_SEGMENTS" in fields[3]
    assert "207^Application internal error" in err(answer)
    assert elapsed < 1.0
    # kept, with its answer: the same message again gets the same AR, not a second parse
    kept = handler.inbox.get(Inbox.key("HIS|HOSP", "ADT^A08", "BIG1", raw))
    assert kept is not None and kept.state == "AR"
    assert handler.handle(raw) == answer


def test_a_message_over_the_byte_limit_gets_ar(hl7_settings: Settings, store: Store) -> None:
    handler = build_handler(store, replace(hl7_settings, hl7_max_bytes=10_000))
    fields = msa(handler.handle(_with_obx("BIG2", 300)))
    assert fields[1:3] == ["AR", "BIG2"] and "KERMA_HL7_MAX_BYTES" in fields[3]


def test_4000_obx_are_read_in_linear_time_when_the_site_allows_them(
    hl7_settings: Settings, store: Store, service: FhirService
) -> None:
    site = replace(hl7_settings, hl7_max_segments=5000)
    answer = build_handler(store, site).handle(_with_obx("BIG3", 4000))
    assert msa(answer)[1] == "AA"
    [patient] = patients(service, "urn:kerma:patient-id:H|77")
    [weight] = [
        orjson.loads(s.body or b"")
        for s in service.search("Observation", [("subject", f"Patient/{patient['id']}")]).matches
    ]
    assert weight["valueQuantity"]["value"] == 74  # the last OBX: 70 + 3999 % 5 kg


def test_a_huge_message_does_not_delay_another_sender(mllp: Hl7Listener) -> None:
    huge = b"\x0b" + _with_obx("HUGE", 125_000) + b"\x1c\r"  # 4.5 MB
    assert len(huge) > 4_000_000
    answers: dict[str, bytes] = {}

    def send_huge() -> None:
        with socket.create_connection(("127.0.0.1", mllp.port), timeout=60) as sock:
            sock.sendall(huge)
            answers["huge"] = sock.recv(65536)

    sender = threading.Thread(target=send_huge)
    sender.start()
    time.sleep(0.05)  # the huge message is on its way
    with MLLPClient("127.0.0.1", mllp.port) as client:
        started = time.perf_counter()
        small = client.send_message(message(msh("ADT^A04", "SMALL"), "PID|||78^^^H||Doe^Small"))
        elapsed = time.perf_counter() - started
    sender.join(60)
    assert msa(small)[1] == "AA" and elapsed < 1.0
    assert msa(answers["huge"])[1] == "AR"  # too long to frame: refused, connection closed


def test_a_message_that_keeps_stopping_kerma_is_not_replayed_for_ever(
    hl7_settings: Settings, store: Store, service: FhirService
) -> None:
    raw = message(msh("ADT^A04", "CRASH"), "PID|||79^^^H||Doe^Crash")
    key = Inbox.key("HIS|HOSP", "ADT^A04", "CRASH", raw)
    inbox = Inbox(hl7_settings.data_dir / "hl7" / "inbox.sqlite3")
    inbox.keep(key, "ADT^A04", raw)  # the first try, which stopped the process
    for _ in range(MAX_ATTEMPTS - 1):
        inbox.attempt(key)  # and each restart's try, which stopped it again
    inbox.close()
    handler = build_handler(store, hl7_settings)
    assert handler.replay() == 1
    kept = handler.inbox.get(key)
    assert kept is not None and kept.state == "AE" and "not applied again" in (kept.reason or "")
    assert not patients(service, "urn:kerma:patient-id:H|79")
    assert handler.replay() == 0
    assert msa(handler.handle(raw))[1] == "AE"  # a resend gets the same answer


def test_a_restart_with_a_huge_message_in_the_inbox_listens_at_once(
    hl7_settings: Settings, store: Store
) -> None:
    raw = _with_obx("HUGE2", 125_000)
    inbox = Inbox(hl7_settings.data_dir / "hl7" / "inbox.sqlite3")
    inbox.keep(Inbox.key("HIS|HOSP", "ADT^A08", "HUGE2", raw), "ADT^A08", raw)
    inbox.close()
    started = time.perf_counter()
    listener = start_hl7(hl7_settings, store)
    try:
        assert time.perf_counter() - started < 2.0
        with MLLPClient("127.0.0.1", listener.port) as client:
            assert msa(client.send_message(raw))[1] == "AR"  # refused on replay, kept
    finally:
        listener.stop()


def test_a_connection_without_a_whole_message_is_closed(
    hl7_settings: Settings, store: Store
) -> None:
    listener = start_hl7(replace(hl7_settings, hl7_timeout_seconds=1), store)
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
            sock.sendall(b"\x0bMSH|^~\\&|HIS")  # and then nothing
            started = time.perf_counter()
            assert sock.recv(1024) == b""  # closed by Kerma
            assert time.perf_counter() - started < 5
    finally:
        listener.stop()
