"""Grouped summary statistics of dose values, vectorised with numpy (requirements S1, P1):
per group n, mean, standard deviation, min, 25th/50th/75th/95th percentiles and max.

Pure: values and integer group codes in, one row of numbers per group out. Percentiles are
numpy's default (linear interpolation between closest ranks, "method 7"), which is what
spreadsheets and R give, so physicists can check a table by hand.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

PERCENTILES = (25.0, 50.0, 75.0, 95.0)


@dataclass(frozen=True)
class Summary:
    group: int  # the group's code
    n: int
    mean: float
    sd: float  # sample standard deviation (n - 1); 0 for one value
    min: float
    p25: float
    median: float
    p75: float
    p95: float
    max: float


@dataclass(frozen=True)
class StatisticsTables:
    """mappings/statistics.yaml, read."""

    age_bands: tuple[tuple[str, float | None], ...]  # (label, upper bound exclusive)
    min_values_per_device: int
    proposal_percentile: float
    # department report: (modality, quantity, level, title) per section
    report_sections: tuple[tuple[str, str, str, str], ...] = ()
    # national DRL survey: (quantity, level) per table
    survey: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, table: dict[str, Any]) -> StatisticsTables:
        return cls(
            tuple((b["label"], b["below"]) for b in table["age_bands"]),
            int(table["drl_proposal"]["min_values_per_device"]),
            float(table["drl_proposal"]["percentile"]),
            tuple(
                (r["modality"], r["quantity"], r["level"], r["title"])
                for r in table.get("report_sections", [])
            ),
            tuple((r["quantity"], r["level"]) for r in table.get("survey", [])),
        )


def summarise(values: npt.ArrayLike, groups: npt.ArrayLike) -> list[Summary]:
    """One Summary per group code present, in code order. NaN values are left out."""
    v = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups, dtype=np.int64)
    keep = ~np.isnan(v)
    v, g = v[keep], g[keep]
    if v.size == 0:
        return []
    order = np.lexsort((v, g))  # by group, then value: each group's values sorted
    v, g = v[order], g[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    counts = np.diff(np.r_[starts, v.size])
    sums = np.add.reduceat(v, starts)
    means = sums / counts
    squares = np.add.reduceat((v - np.repeat(means, counts)) ** 2, starts)
    sds = np.sqrt(np.divide(squares, counts - 1, out=np.zeros_like(squares), where=counts > 1))
    quantiles = [_percentile(v, starts, counts, p) for p in PERCENTILES]
    return [
        Summary(
            group=int(g[s]),
            n=int(n),
            mean=float(m),
            sd=float(sd),
            min=float(v[s]),
            p25=float(quantiles[0][i]),
            median=float(quantiles[1][i]),
            p75=float(quantiles[2][i]),
            p95=float(quantiles[3][i]),
            max=float(v[s + n - 1]),
        )
        for i, (s, n, m, sd) in enumerate(zip(starts, counts, means, sds, strict=True))
    ]


def _percentile(
    ordered: npt.NDArray[np.float64],
    starts: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    p: float,
) -> npt.NDArray[np.float64]:
    """The p-th percentile of each group of sorted values (linear interpolation)."""
    position = starts + (counts - 1) * (p / 100.0)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, starts + counts - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction  # type: ignore[no-any-return]


def codes(labels: Sequence[Hashable]) -> tuple[npt.NDArray[np.int64], list[object]]:
    """Integer codes of labels (None included) and the label of each code."""
    index: dict[Hashable, int] = {}
    out = np.fromiter(
        (index.setdefault(label, len(index)) for label in labels), np.int64, len(labels)
    )
    return out, list(index)


def combine(columns: list[npt.NDArray[np.int64]], sizes: list[int]) -> npt.NDArray[np.int64]:
    """One code for a combination of codes (mixed radix): group by several columns."""
    combined = np.zeros(columns[0].size if columns else 0, dtype=np.int64)
    for column, size in zip(columns, sizes, strict=True):
        combined = combined * size + column
    return combined


def split(code: int, sizes: list[int]) -> list[int]:
    """The column codes of a combined code (the inverse of combine)."""
    parts = []
    for size in reversed(sizes):
        code, part = divmod(code, size)
        parts.append(part)
    return parts[::-1]
