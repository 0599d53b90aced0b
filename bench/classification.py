"""How well the classification rules generalise: the examination names of
bench/data/classification_names.csv (RadLex Playbook names, national DRL categories in their
own languages, the test corpus's names, names written in German, French and Dutch usage), each
with the standard procedure it should get (`|`: any of them; `none`: no patient procedure, QA;
empty: Kerma has none, so it must stay unmatched), classified by the site's rules
(mappings/classification/rules.yaml) as a study named so.

Prints the share classified correctly, left unmatched (sent to the workbench; rightly so when
Kerma has no procedure for it) and forced wrong (a procedure it is not), per modality and
language, and every wrong one.

    .venv/bin/python bench/classification.py
"""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from pathlib import Path

from machine import machine

from server.dose.classify import Classified, Exam
from server.mappings import classification_rules

NAMES = Path(__file__).resolve().parent / "data" / "classification_names.csv"


def outcome(found: Classified | None, expected: str) -> str:
    """correct, unmatched (rightly: Kerma has no procedure for it; or not) or wrong."""
    if found is None:
        return "unmatched" if expected else "rightly unmatched"
    wanted = set(expected.split("|")) if expected else set()
    got = found.procedure.code if found.procedure is not None else "none"
    return "correct" if got in wanted else "wrong"


def main() -> None:
    rules = classification_rules()
    rows = list(csv.DictReader(NAMES.open(encoding="utf-8")))
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    confidence: Counter[str] = Counter()
    wrong = []
    for row in rows:
        found = rules.classify(Exam(row["modality"], description=row["name"]))
        result = outcome(found, row["expected"])
        for key in ("all", f"modality {row['modality']}", f"language {row['language']}"):
            tally[key][result] += 1
        if found is not None and result == "correct":
            confidence[found.confidence] += 1
        if result == "wrong":
            got = found.procedure.code if found and found.procedure else "none"
            wrong.append(f"  {row['modality']} {row['name']!r}: {got} ({found and found.rule}), "
                         f"expected {row['expected'] or 'unmatched'}")  # fmt: skip
    print(f"{time.strftime('%Y-%m-%d')}  {machine()}  rules version {rules.version}")
    print(
        f"{'names':24} {'n':>4} {'correct':>8} {'unmatched':>10} {'of them rightly':>16} {'wrong':>6}"
    )
    for key in ["all", *sorted(k for k in tally if k != "all")]:
        c, n = tally[key], sum(tally[key].values())
        unmatched = c["unmatched"] + c["rightly unmatched"]
        print(f"{key:24} {n:4} {c['correct'] / n:8.1%} {unmatched / n:10.1%} "
              f"{c['rightly unmatched'] / n:16.1%} {c['wrong'] / n:6.1%}")  # fmt: skip
    print("confidence of the correct ones:", dict(confidence))
    print(f"wrong ({len(wrong)}):", *wrong, sep="\n")


if __name__ == "__main__":
    main()
