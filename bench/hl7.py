"""HL7 ADT throughput over MLLP: messages applied (kept durably, applied to the store, ACKed)
per second by `kerma serve`, on one connection and on several.

N ADT messages (default 2,000): A04 registrations of new patients, then A08 updates of the same
patients, each with its own control id, sent one after the other (the next once the ACK of the
last is in, as HIS interfaces do), first on one connection, then spread over P connections.
The reference, in the same run: python-hl7's own MLLP server (asyncio, its own process)
answering every message with an AA ACK and doing nothing else, the floor of a Python MLLP
listener; Kerma also keeps each message durably and applies it to the store.

    .venv/bin/python bench/hl7.py
    .venv/bin/python bench/hl7.py --messages 200 --parallel 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from cstore import free_port, wait_for
from ingest import RESULTS
from machine import machine, wait_until_quiet

SB, EB = b"\x0b", b"\x1c\r"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "messages": args.messages,
        "parallel": args.parallel,
    }
    work = Path(tempfile.mkdtemp(prefix="kerma-hl7-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "KERMA_DATA_DIR": str(work),
        "KERMA_HTTP_PORT": str(free_port()),
        "KERMA_DICOM_PORT": "0",
        "KERMA_HL7_PORT": str(port),
        "KERMA_LOG_LEVEL": "WARNING",
    }
    kerma = Path(sys.executable).parent / "kerma"
    try:
        results["kerma"] = _run([str(kerma), "serve"], env, port, args, quiet=True)
        port = free_port()
        # -P: this folder not on the path, where this file would be imported as `hl7`
        reference = [sys.executable, "-P", str(Path(__file__).with_name("mllp_reference.py")),
                     str(port)]  # fmt: skip
        results["python-hl7"] = _run(reference, os.environ, port, args, quiet=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kerma_rates, floor = results["kerma"], results["python-hl7"]
    print(f"{results['date']}  {results['machine']}")
    print(f"{args.messages} ADT messages (A04 then A08 of the same patients) over MLLP, ACKed/s")
    for key, label in (("one", "1 connection"), ("several", f"{args.parallel} connections")):
        ratio = kerma_rates[key] / floor[key]  # type: ignore[index]
        print(f"  {label}: kerma serve (kept, applied) {kerma_rates[key]}/s,"  # type: ignore[index]
              f" python-hl7 answering only {floor[key]}/s: {ratio:.2f}x")  # type: ignore[index]  # fmt: skip
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "hl7.json").write_text(json.dumps(results, indent=2))


def _run(command: list[str], env: Mapping[str, str], port: int, args: argparse.Namespace,
         quiet: bool) -> dict[str, float]:  # fmt: skip
    """Both sends against one server: 1 connection, then `args.parallel`."""
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _listening(port))
        if quiet:  # kerma serve's HTTP processes warm up after its listeners open
            wait_until_quiet(server.pid)
        return {"one": _send_all(port, _messages("one", args.messages), 1),
                "several": _send_all(port, _messages("par", args.messages), args.parallel)}  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)


def _messages(tag: str, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        event, patient = ("A04", i) if i < n // 2 else ("A08", i - n // 2)
        segments = [
            f"MSH|^~\\&|HIS|HOSP|KERMA|RAD|20261126101500||ADT^{event}^ADT_A01|{tag}{i}|P|2.5.1",
            f"EVN|{event}|20261126101500",
            f"PID|||{tag}{patient:07d}^^^HOSP^MR||Doe{i}^John^Q||19600412|M|||Main St 1^^Bern^^3000^CH^H",
            "PV1||O",
        ]
        out.append("\r".join(segments).encode() + b"\r")
    return out


def _send_all(port: int, messages: list[bytes], connections: int) -> float:
    shares = [messages[k::connections] for k in range(connections)]
    failures: list[bytes] = []
    started = time.perf_counter()
    threads = [threading.Thread(target=_send, args=(port, s, failures)) for s in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} messages not applied, e.g. {failures[0]!r}")
    return round(len(messages) / seconds, 1)


def _send(port: int, messages: list[bytes], failures: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for raw in messages:
            sock.sendall(SB + raw + EB)
            answer = b""
            while not answer.endswith(EB):
                answer += sock.recv(65536)
            if b"MSA|AA|" not in answer:
                failures.append(answer)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


if __name__ == "__main__":
    main()
