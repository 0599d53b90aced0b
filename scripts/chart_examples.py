"""Render one example of each chart to docs/charts/ (SVG and PNG), from made-up numbers of the
shape Kerma's statistics have, so the docs show what the charts look like.

    .venv/bin/python scripts/chart_examples.py
"""

from __future__ import annotations

from pathlib import Path

import cairosvg
import numpy as np

from server.dose.statistics import summarise
from server.stats import charts

OUT = Path(__file__).resolve().parent.parent / "docs" / "charts"


def main() -> None:
    rng = np.random.default_rng(135)
    months = [f"2026-{m:02d}" for m in range(1, 13)]
    medians = [720 - 12 * i + float(rng.normal(0, 15)) for i in range(12)]
    values = rng.lognormal(6.4, 0.35, 3000)
    devices = rng.integers(0, 4, 3000)
    summaries = summarise(values * (1 + 0.15 * devices), devices)
    names = ["CT Nord", "CT Süd", "CT Notaufnahme", "PET/CT"]
    load = {
        (d, h): int(rng.poisson(9 if d <= 5 and 7 <= h <= 17 else 1))
        for d in range(1, 8)
        for h in range(24)
    }
    examples = {
        "timeline": charts.timeline(months, medians, [("UKHSA GB 2022", 660.0)],
                                    "median dlp_mgy_cm, CT Chest/Abdomen/Pelvis", "mGy·cm"),
        "boxplot": charts.boxplot([(names[s.group], s) for s in summaries], "dlp_mgy_cm per device", "mGy·cm"),
        "histogram": charts.histogram(values, "dlp_mgy_cm", "mGy·cm"),
        "load": charts.load_heatmap(load, "examinations by weekday and hour"),
    }  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    for name, svg in examples.items():
        (OUT / f"{name}.svg").write_text(svg, encoding="utf-8")
        cairosvg.svg2png(bytestring=svg.encode(), write_to=str(OUT / f"{name}.png"))
        print(OUT / f"{name}.png")


if __name__ == "__main__":
    main()
