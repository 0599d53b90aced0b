"""Run one coverage-guided fuzzer (atheris, libFuzzer's engine for Python) over a reader:

    python -m tests.fuzz.run dicom|hl7 [libFuzzer options] [corpus folders]

e.g. `python -m tests.fuzz.run hl7 -max_total_time=60 /tmp/hl7-corpus tests/data/hl7`. New
inputs go to the first corpus folder; an input that breaks a target is written as
crash-<sha1> (-artifact_prefix) and belongs in tests/data/fuzz/<target>/ once fixed. The
target's store is a new folder in TMPDIR (kerma-fuzz-<target>-*), left there: libFuzzer ends
the process without Python's exit handlers.
"""

from __future__ import annotations

import logging
import sys
import warnings

import atheris

with atheris.instrument_imports(include=["server"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    logging.disable(logging.CRITICAL)  # what the readers say about each broken input is noise
    warnings.simplefilter("ignore")
    target = TARGETS[sys.argv.pop(1)]()
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
