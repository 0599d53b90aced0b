"""What the fuzzers check on every input (issue 23): the DICOM path from bytes to the store
and the HL7 path from a message to its ACK never raise, and every answer is one a sender can
read. One target per reader, each over its own store in a folder of its own; the same targets
run the regression inputs of tests/data/fuzz/ in the quick suite."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hl7

from server.config import Settings
from server.ingest import build_ingestor
from server.ingest.hl7 import build_handler
from server.store.sqlite import SqliteStore

DATA = Path(__file__).parents[1] / "data"
REGRESSIONS = DATA / "fuzz"


def _site(folder: Path | None, name: str) -> tuple[SqliteStore, Settings]:
    """A store and settings of their own, in `folder` or a new temporary one."""
    folder = folder or Path(tempfile.mkdtemp(prefix=f"kerma-fuzz-{name}-"))
    return SqliteStore(folder / "kerma.sqlite3"), Settings(data_dir=folder)


class DicomTarget:
    """Bytes as the SCP receives them: read, mapped, stored or quarantined, never an error."""

    name = "dicom"

    def __init__(self, folder: Path | None = None) -> None:
        self.ingestor = build_ingestor(*_site(folder, self.name))

    def __call__(self, data: bytes) -> None:
        result = self.ingestor.ingest_bytes(data, "fuzzed.dcm")
        assert result.status in ("ingested", "duplicate", "skipped", "quarantined"), result
        assert result.status != "quarantined" or result.reason, "quarantined without a reason"

    @staticmethod
    def seeds() -> list[Path]:
        """The corpus's dose reports and headers small enough to mutate quickly."""
        return sorted(p for p in (DATA / "dicom").rglob("*.dcm") if p.stat().st_size < 200_000)


class Hl7Target:
    """A message as the MLLP listener hands it over: an ACK every sender can parse, with an
    acknowledgement code."""

    name = "hl7"

    def __init__(self, folder: Path | None = None) -> None:
        self.handler = build_handler(*_site(folder, self.name))

    def __call__(self, data: bytes) -> None:
        answer = self.handler.handle(data)
        ack = hl7.parse(answer.decode("utf-8"))
        msa = ack.segment("MSA")
        assert str(msa[1]) in ("AA", "AE", "AR"), answer

    @staticmethod
    def seeds() -> list[Path]:
        return sorted((DATA / "hl7").glob("*.hl7"))


TARGETS = {t.name: t for t in (DicomTarget, Hl7Target)}
