"""`server.dose` is pure: it imports without any I/O library."""

from __future__ import annotations

import subprocess
import sys

BLOCKED = [
    "flask",
    "sqlite3",
    "pymongo",
    "mongoengine",
    "redis",
    "rq",
    "pynetdicom",
    "socket",
    "requests",
]


def test_dose_imports_with_io_libraries_blocked() -> None:
    code = (
        "import sys\n"
        f"for name in {BLOCKED!r}: sys.modules[name] = None\n"
        "import server.dose\n"
        "from server.dose import UnitTable, Unit\n"
        "t = UnitTable([Unit('Gy', 'dose', 1000.0, 'mGy'), Unit('mGy', 'dose', 1.0, 'mGy')])\n"
        "assert t.convert(0.0123, 'Gy', 'mGy') == 12.3\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
