"""Which objects are pictures of dose pages (mappings/dicom/dose_screens.yaml)."""

from __future__ import annotations

import functools

from pydicom.dataset import Dataset

from server.dicom.header import many, text
from server.mappings import read_yaml


@functools.cache
def _terms() -> tuple[tuple[str, ...], frozenset[str]]:
    table = read_yaml("dicom/dose_screens.yaml")
    descriptions = tuple(d.lower() for d in table["series_descriptions"])
    return descriptions, frozenset(t.upper() for t in table["image_types"])


def is_dose_screen_series(description: str) -> bool:
    lowered = description.lower()
    return any(d in lowered for d in _terms()[0])


def is_dose_screen(ds: Dataset) -> bool:
    """A series description or an Image Type value that marks a dose page."""
    image_type = {str(v).upper() for v in many(ds.get("ImageType"))}
    return is_dose_screen_series(text(ds, "SeriesDescription") or "") or bool(
        image_type & _terms()[1]
    )
