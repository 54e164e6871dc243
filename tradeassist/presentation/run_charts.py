"""A run's two charts, drawn with matplotlib: static images, no JavaScript.

* ``allocation_chart``: each sleeve's weight now, after the proposed trades, and its target;
* ``drift_chart``: each sleeve's drift from target now and after, with its band.

Both take the rationale's ``sleeves`` (and ``bands``) as stored: decimals as text. The run
report shows them as SVG (a few kilobytes, sharp at any size, text kept as text); an email
carries them as PNG, which every mail client shows. The output is deterministic: no creation
date, no random ids (a fixed ``svg.hashsalt``), so the same run draws the same bytes.

matplotlib is imported when a chart is drawn (Agg, no display), not when this module is.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

ImageFormat = Literal["svg", "png"]

NOW, AFTER, TARGET, BAND = "#7f8c8d", "#2e86c1", "#27ae60", "#c0392b"


def number(value: Any) -> float:
    """A stored decimal as a float for drawing (never for money); 0 when it is not a number."""
    try:
        return float(Decimal(str(value)))
    except (ArithmeticError, ValueError):
        return 0.0


def band_of(target: Any, bands: Mapping[str, Any]) -> float:
    """How far a sleeve may drift (in weight) before it breaches: the tighter of the absolute
    band and the relative band times the target."""
    absolute, relative = number(bands.get("absolute")), number(bands.get("relative"))
    weight = number(target)
    limits = [absolute] if absolute else []
    if relative and weight > 0:
        limits.append(relative * weight)
    return min(limits) if limits else 0.0


def _figure() -> Any:
    from matplotlib.figure import Figure  # heavy: imported when drawing

    figure = Figure(figsize=(6.4, 3.0))
    figure.set_layout_engine("constrained")
    return figure


def _image(figure: Any, kind: ImageFormat) -> bytes:
    import matplotlib  # heavy: imported when drawing
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    out = io.BytesIO()
    if kind == "svg":
        # Text as text (small, searchable), ids from a fixed salt (the same bytes every time).
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tradeassist"}):
            figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    else:
        figure.savefig(out, format="png", dpi=100, metadata={"Software": None})
    return out.getvalue()


def _finish(axes: Any, codes: list[str], title: str, ylabel: str) -> None:
    axes.set_xticks(list(range(len(codes))), codes)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=11)
    axes.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=3)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def allocation_chart(sleeves: Mapping[str, Mapping[str, Any]], kind: ImageFormat = "svg") -> bytes:
    """Weight now and after the proposed trades, against the target, per sleeve."""
    codes = list(sleeves)
    figure = _figure()
    axes = figure.add_subplot()
    width = 0.27
    for offset, key, label, colour in (
        (-width, "weight_before", "now", NOW),
        (0.0, "weight_after", "after the trades", AFTER),
        (width, "target", "target", TARGET),
    ):
        values = [100 * number(sleeves[c].get(key)) for c in codes]
        axes.bar([p + offset for p in range(len(codes))], values, width, label=label, color=colour)
    _finish(axes, codes, "Allocation by sleeve", "% of the portfolio")
    return _image(figure, kind)


def drift_chart(
    sleeves: Mapping[str, Mapping[str, Any]], bands: Mapping[str, Any], kind: ImageFormat = "svg"
) -> bytes:
    """Drift (weight - target) now and after the trades, with each sleeve's band (dashed)."""
    codes = list(sleeves)
    figure = _figure()
    axes = figure.add_subplot()
    width = 0.35
    positions = list(range(len(codes)))
    before = [100 * number(sleeves[c].get("drift_before")) for c in codes]
    after = [100 * number(sleeves[c].get("drift_after")) for c in codes]
    axes.bar([p - width / 2 for p in positions], before, width, label="now", color=NOW)
    axes.bar([p + width / 2 for p in positions], after, width, label="after the trades", color=AFTER)
    for p, code in zip(positions, codes, strict=True):
        band = 100 * band_of(sleeves[code].get("target"), bands)
        if band:
            axes.hlines([band, -band], p - 0.45, p + 0.45, colors=BAND, linestyles="dashed", linewidth=1)
    axes.plot([], [], color=BAND, linestyle="dashed", linewidth=1, label="band")
    axes.axhline(0, color="black", linewidth=0.6)
    _finish(axes, codes, "Drift from target, with the bands", "percentage points")
    return _image(figure, kind)
