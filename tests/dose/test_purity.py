"""The pure core and the readers import without any I/O library: every module of
`server.dose` (it computes on what it is given), and the DICOM and HL7 readers (they turn bytes
into the dose model; the network, the spool and the inbox are elsewhere)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import server.dose

BLOCKED = ["flask", "sqlite3", "pymongo", "mongoengine", "redis", "rq", "pynetdicom",
           "strawberry", "weasyprint", "waitress", "requests"]  # fmt: skip
PURE = [f"server.dose.{m.name}" for m in pkgutil.iter_modules(server.dose.__path__)]
READERS = [
    *(f"server.dicom.{name}" for name in ("read", "sr", "fast_sr", "rdsr_ct", "rdsr_projection",
                                          "header", "image_header", "dose_info", "mpps", "ocr",
                                          "screens", "text", "vendor", "status")),
    *(f"server.hl7.{name}" for name in ("message", "adt", "orders", "ack", "files")),
]  # fmt: skip


def test_every_module_of_the_dose_core_is_guarded() -> None:
    assert len(PURE) >= 15 and "server.dose.skin" in PURE and "server.dose.units" in PURE


def test_imports_with_io_libraries_blocked() -> None:
    """Each module in turn, in one process (a process each cost 0.3 s of a core forty times):
    an import that reaches a blocked library fails whatever was imported before it."""
    code = (
        "import importlib, sys\n"
        f"for name in {BLOCKED!r}: sys.modules[name] = None\n"
        f"for module in {PURE + READERS!r}:\n"
        "    try:\n"
        "        importlib.import_module(module)\n"
        "    except ImportError as e:\n"
        "        print(module, e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_the_core_computes_with_them_blocked() -> None:
    code = (
        "import sys\n"
        f"for name in {BLOCKED!r}: sys.modules[name] = None\n"
        "from server.dose import UnitTable, Unit\n"
        "t = UnitTable([Unit('Gy', 'dose', 1000.0, 'mGy'), Unit('mGy', 'dose', 1.0, 'mGy')])\n"
        "assert t.convert(0.0123, 'Gy', 'mGy') == 12.3\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
