"""A skin dose map as a picture (H8): PNG (Pillow) or SVG, one square per 1 cm skin cell.

Colour runs from pale yellow (no dose) through orange to dark red at the map's peak; cells that
are not skin stay empty. Above the map: where the front, sides and back are; below it: the scale.
"""

from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CELL_PX = 8
MARGIN_PX = 24
# (fraction of the peak, RGB): pale yellow -> orange -> red -> dark red
_RAMP = ((0.0, (255, 255, 204)), (0.33, (253, 141, 60)), (0.66, (227, 26, 28)), (1.0, (128, 0, 38)))


@dataclass(frozen=True)
class Layout:
    """Where the map's columns are on the body: the front's cells, then one side's."""

    front_columns: int
    side_columns: int

    def regions(self) -> list[tuple[str, int, int]]:
        f, s = self.front_columns, self.side_columns
        return [("front", 0, f), ("left", f, f + s), ("back", f + s, 2 * f + s),
                ("right", 2 * f + s, 2 * (f + s))]  # fmt: skip


def colour(fraction: float) -> tuple[int, int, int]:
    """The ramp's colour at this fraction of the peak."""
    for (low, c0), (high, c1) in itertools.pairwise(_RAMP):
        if fraction <= high:
            w = (fraction - low) / (high - low)
            return tuple(round(a + (b - a) * w) for a, b in zip(c0, c1, strict=True))  # type: ignore[return-value]
    return _RAMP[-1][1]


def _fractions(dose_gy: np.ndarray) -> np.ndarray:
    peak = np.nanmax(dose_gy) if np.isfinite(dose_gy).any() else 0.0
    return dose_gy / peak if peak > 0 else np.where(np.isnan(dose_gy), np.nan, 0.0)


def _dose_text(gy: float) -> str:
    return f"{gy * 1000:.3g} mGy" if gy < 1 else f"{gy:.3g} Gy"


def png(dose_gy: np.ndarray, layout: Layout) -> bytes:
    rows, cols = dose_gy.shape
    image = Image.new("RGBA", (cols * CELL_PX, rows * CELL_PX + 2 * MARGIN_PX), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    fractions = _fractions(dose_gy)
    for (r, c), f in np.ndenumerate(fractions):
        if not math.isnan(f):
            x, y = c * CELL_PX, MARGIN_PX + r * CELL_PX
            draw.rectangle((x, y, x + CELL_PX - 1, y + CELL_PX - 1), fill=colour(float(f)))
    for name, start, _ in layout.regions():
        draw.text((start * CELL_PX + 2, 6), name, fill=(0, 0, 0, 255))
        draw.line((start * CELL_PX, 0, start * CELL_PX, MARGIN_PX - 2), fill=(0, 0, 0, 255))
    peak = float(np.nanmax(dose_gy))
    draw.text(
        (2, MARGIN_PX + rows * CELL_PX + 6), f"0 - {_dose_text(peak)} (peak)", fill=(0, 0, 0, 255)
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def svg(dose_gy: np.ndarray, layout: Layout) -> str:
    rows, cols = dose_gy.shape
    width, height = cols * CELL_PX, rows * CELL_PX + 2 * MARGIN_PX
    fractions = _fractions(dose_gy)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        "<title>Skin dose map</title>",
    ]
    for (r, c), f in np.ndenumerate(fractions):
        if not math.isnan(f):
            red, green, blue = colour(float(f))
            parts.append(
                f'<rect x="{c * CELL_PX}" y="{MARGIN_PX + r * CELL_PX}" width="{CELL_PX}" '
                f'height="{CELL_PX}" fill="rgb({red},{green},{blue})">'
                f"<title>{_dose_text(float(dose_gy[r, c]))}</title></rect>"
            )
    for name, start, _ in layout.regions():
        parts.append(f'<text x="{start * CELL_PX + 2}" y="16">{name}</text>')
    peak = float(np.nanmax(dose_gy))
    parts.append(f'<text x="2" y="{height - 6}">0 - {_dose_text(peak)} (peak)</text>')
    parts.append("</svg>")
    return "".join(parts)
