"""Charts of the statistics as SVG (requirements S3, S6), drawn with matplotlib's object API
(Figure without pyplot: no global state, no display, safe in the server's threads): the timeline of medians with the
DRL line, box plots per device, a histogram, and the modality load as a heat map. The same
SVG goes to the browser and into the PDF reports."""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from server.dose.statistics import Summary

if TYPE_CHECKING:  # imported when a chart is drawn: 0.5 s off every HTTP process's start
    from matplotlib.figure import Figure

_SIZE = (7.0, 3.6)  # inches: fits an A4 page's width with margins
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def timeline(
    periods: Sequence[str],
    medians: Sequence[float],
    levels: Sequence[tuple[str, float]],
    title: str,
    axis: str,
    unit: str,
) -> str:
    """Median per period, with each DRL as a dashed line (label, value in `unit`)."""
    figure = _figure()
    ax = figure.subplots()
    ax.plot(list(periods), list(medians), marker="o", color="#1f5f8b", label="median")
    for name, value in levels:
        ax.axhline(value, linestyle="--", color="#b03a2e", label=f"DRL {name}: {value:g} {unit}")
    ax.set_ylabel(axis)
    ax.set_ylim(bottom=0)
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(loc="best", fontsize="small")
    return _svg(figure, title)


def boxplot(groups: Sequence[tuple[str, Summary]], title: str, axis: str) -> str:
    """One box per group: the box from the 25th to the 75th percentile with the median, the
    whiskers from min to max (Kerma keeps these, not the raw values)."""
    figure = _figure()
    ax = figure.subplots()
    stats = [
        {"label": label, "med": s.median, "q1": s.p25, "q3": s.p75, "whislo": s.min, "whishi": s.max,
         "fliers": []}
        for label, s in groups
    ]  # fmt: skip
    if stats:
        ax.bxp(stats, showfliers=False)
    ax.set_ylabel(axis)
    ax.tick_params(axis="x", labelrotation=30)
    return _svg(figure, title)


def histogram(values: npt.ArrayLike, title: str, axis: str, counted: str, bins: int = 30) -> str:
    figure = _figure()
    ax = figure.subplots()
    data = np.asarray(values, dtype=np.float64)
    ax.hist(data[~np.isnan(data)], bins=bins, color="#1f5f8b")
    ax.set_xlabel(axis)
    ax.set_ylabel(counted)
    return _svg(figure, title)


def load_heatmap(counts: dict[tuple[int, int], int], title: str, counted: str) -> str:
    """How many per weekday (1 = Monday) and hour."""
    grid = np.zeros((7, 24))
    for (weekday, hour), n in counts.items():
        grid[weekday - 1, hour] = n
    figure = _figure()
    ax = figure.subplots()
    image = ax.imshow(grid, aspect="auto", cmap="Blues")
    ax.set_yticks(range(7), _WEEKDAYS)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("Hour of the day")
    figure.colorbar(image, ax=ax, label=counted)
    return _svg(figure, title)


@cache
def _figure_type() -> type[Figure]:
    import matplotlib
    from matplotlib.figure import Figure

    # text as text, not as outlines: readable in the PDF reports, searchable in the browser
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["font.family"] = "DejaVu Sans"
    return Figure


def _figure() -> Figure:
    return _figure_type()(figsize=_SIZE)


def _svg(figure: Figure, title: str) -> str:
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})  # the same chart, the same bytes
    return out.getvalue()
