"""The MLLP listener over loopback, with python-hl7's MLLP client as the independent sender:
connections kept open, several at once, bad framing and bytes answered with AR, fuzzed
messages never crash it, and what was kept before a crash is applied at the next start."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
from pathlib import Path

from hl7.client import MLLPClient

from server.config import Settings
from server.fhir import FhirService
from server.hl7.files import messages_in
from server.hl7.inbox import Inbox
from server.hl7.listener import Hl7Listener
from server.ingest.hl7 import build_handler
from server.store.port import Store
from tests.hl7.conftest import SAMPLES, message, msa, msh, patients, sample

SB, EB = b"\x0b", b"\x1c\r"


def _client(listener: Hl7Listener) -> MLLPClient:
    return MLLPClient("127.0.0.1", listener.port)


def _receive(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(EB):
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}")
        data += chunk
    return data


def test_the_samples_over_one_connection(mllp: Hl7Listener, service: FhirService) -> None:
    names = sorted(p.name for p in SAMPLES.glob("ADT_*.hl7"))
    with _client(mllp) as client:
        answers = [client.send_message(m) for n in names for m in messages_in(sample(n))]
    assert [msa(a)[1] for a in answers] == ["AA"] * len(answers)
    assert patients(service, "urn:kerma:patient-id|2216506")  # the A01's patient


def test_several_connections_at_once(mllp: Hl7Listener, service: FhirService) -> None:
    def send(sender: int) -> None:
        with _client(mllp) as client:
            for i in range(20):
                raw = message(msh("ADT^A04", f"C{sender}-{i}"), f"PID|||{sender}-{i}^^^H||Doe^J{i}")
                assert msa(client.send_message(raw))[1] == "AA"

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert service.search("Patient", [("_count", "1")]).total == 80


def test_bad_framing_and_bad_bytes_get_ar_and_the_connection_stays(mllp: Hl7Listener) -> None:
    with socket.create_connection(("127.0.0.1", mllp.port), timeout=10) as sock:
        sock.sendall(b"MSH|^~\\&|no start block" + EB)  # <VT> missing
        answer = _receive(sock)
        assert msa(answer)[1] == "AR" and "MLLP framing" in msa(answer)[3]
        sock.sendall(SB + b"this is not HL7" + EB)
        assert msa(_receive(sock))[1] == "AR"
        sock.sendall(SB + b"MSH|^~\\&|A|B" + EB)  # truncated: no message type
        assert msa(_receive(sock))[1] == "AR"
        sock.sendall(SB + b"\xff\xfe\x00garbage\x00" + EB)
        assert msa(_receive(sock))[1] == "AR"
        sock.sendall(SB + message(msh("ADT^A04", "OK1"), "PID|||42^^^H||Doe^J") + EB)
        assert msa(_receive(sock))[1:3] == ["AA", "OK1"]


def test_fuzzed_samples_always_get_an_answer(mllp: Hl7Listener) -> None:
    """Random mutations of the samples: bytes flipped, dropped, repeated, separators
    swapped. Every one gets AA, AE or AR, and the listener keeps serving."""
    rng = random.Random(20261126)
    seeds = [m for p in sorted(SAMPLES.glob("*.hl7")) for m in messages_in(p.read_bytes())]
    answered = []
    with _client(mllp) as client:
        for _ in range(300):
            raw = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 8)):
                at = rng.randrange(len(raw))
                match rng.randrange(4):
                    case 0:
                        raw[at] = rng.randrange(256)
                    case 1:
                        del raw[at]
                    case 2:
                        raw[at:at] = rng.choice([b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n"])
                    case _:
                        raw[at:at] = raw[at : at + rng.randint(1, 40)]
            payload = bytes(raw).replace(b"\x1c\r", b"")  # a frame cannot hold its own end
            answered.append(msa(client.send_message(payload))[1])
    assert set(answered) <= {"AA", "AE", "AR"} and len(answered) == 300
    assert {"AA", "AR"} <= set(answered)
    with _client(mllp) as client:
        assert msa(client.send_message(message(msh("ADT^A04", "after"), "PID|||1^^^H")))[1] == "AA"


def test_kerma_hl7_send_prints_each_ack(mllp: Hl7Listener) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kerma"), "hl7", "send", "--port", str(mllp.port),
         str(SAMPLES / "ADT_A40-dcm4che-PatientMerge.hl7"), str(SAMPLES / "ORU_R01-dcm4che-2021.hl7")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ADT_A40-dcm4che-PatientMerge.hl7\tAA\tPatient/")
    assert lines[1].startswith("ORU_R01-dcm4che-2021.hl7\tAR\t")
    assert done.returncode == 1  # not every message was applied


def test_a_message_kept_but_not_applied_is_applied_at_the_next_start(
    hl7_settings: Settings, store: Store, service: FhirService
) -> None:
    # a crash between keeping and applying: the inbox holds it as received
    raw = message(msh("ADT^A04", "R1"), "PID|||31^^^H||Doe^Crash")
    inbox = Inbox(hl7_settings.data_dir / "hl7" / "inbox.sqlite3")
    assert inbox.keep(Inbox.key("HIS|HOSP", "ADT^A04", "R1", raw), "ADT^A04", raw) is None
    inbox.close()
    handler = build_handler(store, hl7_settings)
    assert handler.replay() == 1
    [patient] = patients(service, "urn:kerma:patient-id:H|31")
    assert patient["name"][0]["family"] == "Doe"
    assert handler.replay() == 0
    # the sender, not having had its ACK, sends it again: answered, applied once
    assert msa(handler.handle(raw))[1] == "AA"
    assert patients(service, "urn:kerma:patient-id:H|31")[0]["meta"]["versionId"] == "1"
