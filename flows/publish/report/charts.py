"""The report's charts as PNG images, drawn with matplotlib's Agg canvas from plain series.

No pyplot: each chart is its own Figure, so drawing holds no global state and works in any
thread or process. DejaVu Sans (matplotlib ships it) has every Vietnamese glyph. A value that
is not a number (a hidden figure, none) draws no bar.

matplotlib is imported by the first chart drawn, not with this module: the nightly flow hands
the report to a parse process, and its own process, which starts every command, never draws.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FONT = "DejaVu Sans"
#: Bar colours, one per series (print well in grey too).
COLOURS = ("#1f4e79", "#c55a11", "#548235", "#7f6000", "#7030a0", "#2e75b6", "#a5a5a5")
DPI = 150
#: Bars one horizontal chart holds: at the report's width, thirty fill a portrait page.
MAX_BARS = 30
#: Inches per bar, and the chart's height for its axis and margins.
_BAR_INCHES, _FRAME_INCHES = 0.45, 1.0
#: The tallest chart, in inches: with its caption it fits the text area of an A4 page.
_MAX_INCHES = 9.0

Value = float | int | str | None


def _number(value: Value) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _figure(width: float, height: float) -> Figure:
    """A new Figure of that size in inches."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    # The layout is done (tight_layout): no layout engine, so that saving does not lay out
    # every text once more before drawing it.
    fig.set_layout_engine(None)
    out = io.BytesIO()
    # No software stamp: the same figures give the same bytes.
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def grouped_bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Value]]],
    *,
    target: float | None = None,
    ylabel: str = "Tỷ lệ hài lòng (%)",
    ymax: float = 100.0,
) -> bytes:
    """Vertical bars: one group per category, one bar per series, with a dashed target line."""
    fig = _figure(6.3, 3.4)
    ax = fig.add_subplot()
    n = max(len(series), 1)
    width = 0.8 / n
    for i, (label, values) in enumerate(series):
        xs, hs = [], []
        for j, v in enumerate(values):
            h = _number(v)
            if h is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                hs.append(h)
        ax.bar(xs, hs, width=width, label=label, color=COLOURS[i % len(COLOURS)])
    if target is not None:
        ax.axhline(
            target, color="#c00000", linestyle="--", linewidth=1, label=f"Mục tiêu {target:g}%"
        )
    ax.set_xticks(range(len(categories)), list(categories), fontfamily=FONT, fontsize=8)
    ax.set_ylim(0, ymax)
    ax.set_ylabel(ylabel, fontfamily=FONT, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", linewidth=0.3)
    ax.set_axisbelow(True)
    ax.legend(prop={"family": FONT, "size": 7}, loc="lower right", framealpha=0.9)
    fig.tight_layout()
    return _png(fig)


def horizontal_bars(
    labels: Sequence[str],
    values: Sequence[Value],
    *,
    target: float | None = None,
    xlabel: str = "%",
    xmax: float = 100.0,
) -> bytes:
    """Horizontal bars, the first label on top, each bar with its value, and a target line;
    never taller than a page (``MAX_BARS`` bars at most: split longer series)."""
    height = min(_BAR_INCHES * len(labels) + _FRAME_INCHES, _MAX_INCHES)
    fig = _figure(6.3, height)
    ax = fig.add_subplot()
    ys = list(range(len(labels)))[::-1]
    bars = [(y, h) for y, h in zip(ys, map(_number, values), strict=True) if h is not None]
    if bars:  # an empty barh would still move the axes' limits
        ax.barh(
            [y for y, _ in bars],
            [h for _, h in bars],
            color=[
                COLOURS[1] if target is not None and h < target else COLOURS[0] for _, h in bars
            ],
            height=0.6,
        )
    for y, h in bars:
        ax.text(h + xmax * 0.01, y, f"{h:.1f}".replace(".", ","), va="center", fontsize=7)
    if target is not None:
        ax.axvline(target, color="#c00000", linestyle="--", linewidth=1)
    ax.set_yticks(ys, list(labels), fontfamily=FONT, fontsize=8)
    ax.set_xlim(0, xmax * 1.08)
    ax.set_xlabel(xlabel, fontfamily=FONT, fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", linewidth=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    return _png(fig)
