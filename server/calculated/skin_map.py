"""A skin dose map as a figure people read (H8), drawn with matplotlib's object API (no pyplot:
no global state, safe in the server's threads), as PNG, SVG or PDF.

Left: the map unrolled, one square per 1 cm skin cell: rows from the top of the head down,
columns round the body (front from the patient's right to left, left side, back, right side,
as server/dose/skin.py lays them out), a colour scale in Gy from 0 to the peak, isodose contours
at the site's levels (mappings/dose/skin_dose.yaml `thresholds_gy`) and the peak marked. Right:
the front and the back on the body's outline, each as seen by someone facing that side.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from server.dose.skin import surface_view

if TYPE_CHECKING:  # matplotlib is imported where a map is drawn: every process that reads
    # maps (ingest, the spool worker, the DICOM listeners) would otherwise pay 0.4 s at start
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

Format = Literal["png", "svg", "pdf"]
MEDIA: dict[Format, str] = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}
# (fraction of the peak, RGB): pale yellow -> orange -> red -> dark red
_RAMP = ((0.0, (255, 255, 204)), (0.33, (253, 141, 60)), (0.66, (227, 26, 28)), (1.0, (128, 0, 38)))
_CONTOUR_COLOURS = ("#1f5f8b", "#3a0ca3", "#000000", "#2d6a4f")


@dataclass(frozen=True)
class Layout:
    """Where the map's columns are on the body: the front's cells, then one side's."""

    front_columns: int
    side_columns: int

    def regions(self) -> list[tuple[str, int, int]]:
        f, s = self.front_columns, self.side_columns
        return [("front", 0, f), ("left side", f, f + s), ("back", f + s, 2 * f + s),
                ("right side", 2 * f + s, 2 * (f + s))]  # fmt: skip

    def region_of(self, column: int) -> tuple[str, int, int]:
        return next((r for r in self.regions() if r[1] <= column < r[2]), self.regions()[-1])


@cache
def _colours() -> Colormap:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(
        "kerma-skin", [(f, tuple(c / 255 for c in rgb)) for f, rgb in _RAMP]
    ).with_extremes(bad=(1.0, 1.0, 1.0, 0.0))  # cells that are not skin: transparent


def colour(fraction: float) -> tuple[int, int, int]:
    """The scale's colour at this fraction of the peak (0-255 RGB)."""
    red, green, blue, _ = _colours()(min(max(fraction, 0.0), 1.0))
    return round(red * 255), round(green * 255), round(blue * 255)


def dose_text(gy: float) -> str:
    return f"{gy * 1000:.3g} mGy" if gy < 1 else f"{gy:.3g} Gy"


def peak_place(dose_gy: np.ndarray, layout: Layout) -> str:
    """Where the peak is, in words: "on the back, 34 cm below the top of the head, 5 cm
    left of the back's middle"."""
    row, column = (int(i) for i in np.unravel_index(np.nanargmax(dose_gy), dose_gy.shape))
    name, start, end = layout.region_of(column)
    middle = (start + end) / 2
    offset = round(column + 0.5 - middle)
    # columns run from the patient's right to left on the front, left to right on the back
    towards = (
        ("left" if offset > 0 else "right")
        if name == "front"
        else ("right" if offset > 0 else "left")
    )
    side = (
        f", {abs(offset)} cm {towards} of its middle"
        if name in ("front", "back") and offset
        else ""
    )
    return f"on the {name}, {row + 0.5:.0f} cm below the top of the head{side}"


def figure(
    dose_gy: np.ndarray, layout: Layout, contours_gy: tuple[float, ...], title: str
) -> Figure:
    from matplotlib.figure import Figure

    peak = float(np.nanmax(dose_gy)) if np.isfinite(dose_gy).any() else 0.0
    top = peak if peak > 0 else 1.0
    fig = Figure(figsize=(11.0, 6.4), layout="constrained")
    fig.suptitle(title, fontsize=11)
    unrolled, body = fig.subplots(1, 2, width_ratios=(2.3, 1.0))
    image = unrolled.imshow(dose_gy, cmap=_colours(), vmin=0.0, vmax=top, interpolation="none",
                            extent=(0, dose_gy.shape[1], dose_gy.shape[0], 0))  # fmt: skip
    _contours(unrolled, dose_gy, contours_gy)
    _label_unrolled(unrolled, dose_gy, layout, peak)
    _body(body, dose_gy, layout, top)
    bar = fig.colorbar(image, ax=[unrolled, body], shrink=0.85, pad=0.02)
    bar.set_label("Skin dose (Gy)")
    for level in contours_gy:
        if level <= top:
            bar.ax.axhline(level, color="black", linewidth=1.2)
    return fig


def _contours(ax: Axes, dose_gy: np.ndarray, levels_gy: tuple[float, ...]) -> None:
    peak = np.nanmax(dose_gy) if np.isfinite(dose_gy).any() else 0.0
    drawn = [level for level in sorted(levels_gy) if level <= peak]
    if not drawn:
        return
    rows, columns = dose_gy.shape
    x, y = np.meshgrid(np.arange(columns) + 0.5, np.arange(rows) + 0.5)
    lines = ax.contour(x, y, np.nan_to_num(dose_gy, nan=0.0), levels=drawn,
                       colors=_CONTOUR_COLOURS[: len(drawn)], linewidths=1.4)  # fmt: skip
    ax.clabel(lines, fmt=lambda v: f"{v:g} Gy", fontsize=8)


def _label_unrolled(ax: Axes, dose_gy: np.ndarray, layout: Layout, peak: float) -> None:
    rows = dose_gy.shape[0]
    ax.set_xlabel("The skin unrolled round the body (1 cm cells)", fontsize=10)
    for name, start, end in layout.regions():
        ax.axvline(start, color="#57606a", linewidth=0.8, linestyle=":")
        ax.text((start + end) / 2, -1, name, ha="center", va="bottom", fontsize=9)
    ax.set_xticks([])
    ticks = list(range(0, rows + 1, 20))
    ax.set_yticks(ticks, [f"{t} cm" for t in ticks], fontsize=8)
    ax.set_ylabel("head (top) → feet (bottom), from the top of the head")
    if peak > 0:
        row, column = np.unravel_index(np.nanargmax(dose_gy), dose_gy.shape)
        ax.plot(column + 0.5, row + 0.5, marker="x", markersize=10, color="#0b6e4f", mew=2.5)
        ax.annotate(f"peak {dose_text(peak)}", (column + 0.5, row + 0.5), xytext=(8, 8),
                    textcoords="offset points", fontsize=9, color="#0b6e4f", weight="bold")  # fmt: skip


def _body(ax: Axes, dose_gy: np.ndarray, layout: Layout, top: float) -> None:
    """The front and the back side by side on the body's outline, each as seen facing it."""
    front = surface_view(dose_gy, layout.front_columns, layout.side_columns, "front")
    back = surface_view(dose_gy, layout.front_columns, layout.side_columns, "back")
    rows, width = front.shape
    gap = 8
    for view, left, name, sides in (
        (front, 0, "front", ("R", "L")),
        (back, width + gap, "back", ("L", "R")),
    ):
        ax.imshow(view, cmap=_colours(), vmin=0.0, vmax=top, interpolation="none",
                  extent=(left, left + width, rows, 0))  # fmt: skip
        outline = np.pad((~np.isnan(view)).astype(float), 1)
        xs, ys = np.meshgrid(np.arange(-1, width + 1) + left + 0.5, np.arange(-1, rows + 1) + 0.5)
        ax.contour(xs, ys, outline, levels=[0.5], colors="#1b1f24", linewidths=1.0)
        ax.text(left + width / 2, -2, name, ha="center", va="bottom", fontsize=9)
        ax.text(left - 1, rows * 0.55, sides[0], ha="right", va="center", fontsize=9, weight="bold")
        ax.text(
            left + width + 1,
            rows * 0.55,
            sides[1],
            ha="left",
            va="center",
            fontsize=9,
            weight="bold",
        )
    ax.set_xlim(-5, 2 * width + gap + 5)
    ax.set_ylim(rows + 2, -8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("On the body", fontsize=10)


def picture(
    dose_gy: np.ndarray, layout: Layout, contours_gy: tuple[float, ...], when: str, fmt: Format
) -> bytes:
    """The figure of a map as a file, titled with the examination's date and the peak."""
    title = "Skin dose map" + (f" of the examination of {when}" if when else "")
    if np.isfinite(dose_gy).any() and np.nanmax(dose_gy) > 0:
        title += f": peak {dose_text(float(np.nanmax(dose_gy)))} {peak_place(dose_gy, layout)}"
    return render(figure(dose_gy, layout, contours_gy, title), fmt)


def render(fig: Figure, fmt: Format) -> bytes:
    from matplotlib import rc_context

    out = io.BytesIO()
    with rc_context({"svg.fonttype": "none"}):  # text as text: searchable, read back by tests
        fig.savefig(out, format=fmt, dpi=100, metadata={"Title": "Skin dose map"})
    return out.getvalue()
