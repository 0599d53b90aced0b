"""Values given once per pulse (kVp, tube current, pulse width of a fluoroscopy event; the
pre-pulse and main pulse of a mammogram), and the one value a physicist reads of them. Pure.

A pulse that did not fire reports 0 (GE's fluoroscopy RDSRs start with one): it stays in the
values but not in a mean. OpenREM keeps every value as a row of its own; Kerma keeps them in
order and leaves the zeros out of the mean, so a first pulse that did not fire does not lower
the kVp of an event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PulseValues:
    """Every value one quantity of an event had, in pulse order, in the unit of its field."""

    field: str
    values: tuple[float, ...]
    how: str  # mappings/dicom/concepts.csv `several`: sum, mean, mean/<field of the weights>

    @property
    def counted(self) -> tuple[float, ...]:
        """The values the summary is made of: those of pulses that fired, for a mean."""
        return self.values if self.how == "sum" else tuple(v for v in self.values if v != 0)


def summary(values: Sequence[float], how: str, weights: Sequence[float] = ()) -> float:
    """`sum` for what adds up over the pulses (an exposure in mAs); otherwise the mean over the
    pulses that fired (all 0: 0), weighted by each pulse's `weights` (its width) when there is
    one per value, so a 51 ms pre-pulse of 2 mA weighs less than a 558 ms main pulse of 30.5.

    >>> summary([0, 70, 72, 71], "mean"), summary([10, 20], "sum")
    (71.0, 30.0)
    >>> summary([2.0, 30.48], "mean/pulse_width_ms", [51.44, 558.06])
    28.0764
    """
    if how == "sum":
        return math.fsum(values)
    if len(weights) != len(values) or not any(weights):
        weights = [1.0] * len(values)
    fired = [(v, w) for v, w in zip(values, weights, strict=True) if v != 0]
    total = math.fsum(w for _, w in fired)
    mean = math.fsum(v * w for v, w in fired) / total if total else 0.0
    return float(f"{mean:.6g}")  # more digits than any report gives, none of float's noise
