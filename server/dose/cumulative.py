"""Cumulative patient dose (H5), pure: per modality, the examinations of one patient in a
period and the sums of the physical dose quantities Kerma keeps per examination (DLP, DAP,
Ka,r at the reference point, AGD). Values a study lacks are left out of its sum, and the
number of examinations that had each quantity is kept beside it, so a sum over fewer
examinations than were done shows as such.

>>> import numpy as np
>>> rows = per_modality(np.array([0, 0, 1]), ["CT", "DX"], np.array([30.0, 10.0, 20.0]),
...                     {"dlp_mgy_cm": np.array([500.0, np.nan, np.nan]),
...                      "dap_gy_m2": np.array([np.nan, np.nan, 0.0002])})
>>> [(r.modality, r.examinations, r.sums["dlp_mgy_cm"], r.counted["dlp_mgy_cm"]) for r in rows]
[('CT', 2, 500.0, 1), ('DX', 1, 0.0, 0)]
>>> (rows[0].first, rows[0].last)
(10.0, 30.0)
>>> undated = per_modality(np.array([0, 0]), ["CT"], np.array([np.nan, 20.0]),
...                        {"dlp_mgy_cm": np.array([100.0, 200.0])})
>>> [(r.examinations, r.undated, r.sums["dlp_mgy_cm"], r.first, r.last) for r in undated]
[(2, 1, 300.0, 20.0, 20.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# the study-level quantities that add up over examinations, with their units
QUANTITIES = {"dlp_mgy_cm": "mGy·cm", "dap_gy_m2": "Gy·m²", "dose_rp_gy": "Gy", "agd_mgy": "mGy"}


@dataclass(frozen=True)
class Cumulative:
    modality: str
    examinations: int
    sums: dict[str, float]  # quantity -> sum of the known values
    counted: dict[str, int]  # quantity -> examinations that had a value
    first: float | None  # epoch seconds of the first and the last dated examination
    last: float | None
    undated: int = 0  # examinations without a date (counted, not placed in time)


def per_modality(
    modalities: npt.NDArray[np.int64],
    labels: Sequence[str | None],
    dates: npt.NDArray[np.float64],
    values: dict[str, npt.NDArray[np.float64]],
) -> list[Cumulative]:
    """One patient's examinations (rows) summed per modality (codes into `labels`)."""
    found = []
    for code in np.unique(modalities):
        mine = modalities == code
        sums = {q: float(np.nansum(v[mine])) for q, v in values.items()}
        counted = {q: int(np.count_nonzero(~np.isnan(v[mine]))) for q, v in values.items()}
        dated = dates[mine][~np.isnan(dates[mine])]
        first, last = (float(dated.min()), float(dated.max())) if dated.size else (None, None)
        found.append(Cumulative(str(labels[int(code)]), int(mine.sum()), sums, counted, first,
                                last, int(mine.sum() - dated.size)))  # fmt: skip
    return sorted(found, key=lambda c: c.modality)
