"""The /stats charts as PNG images: weekly sales, NPS by month, and the quadrant map.

Drawn with matplotlib's object API and the Agg renderer (no pyplot, no display, no global
state), so a chart can be drawn in a worker thread while the bot keeps answering. Every word on
a chart comes from the caller, who reads it from the language's templates. A chart with nothing
to show is not drawn: the caller says "not enough data yet" instead.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from bot.domain.insights import MonthPoint, WeekPoint

SIZE_INCHES = (8.0, 4.5)
DPI = 110
SALES_COLOUR = "#7b2d43"  # wine
BUYERS_COLOUR = "#d9a441"
GOOD, BAD = "#3d8c5a", "#b23b3b"
# Quadrants as drawn: (column, row) with relationship left to right, satisfaction bottom up.
QUADRANT_CELLS = {
    "terrorist": (0, 0),
    "hostage": (1, 0),
    "mercenary": (0, 1),
    "apostle": (1, 1),
}


def weekly_sales(weeks: list[WeekPoint], words: Mapping[str, str]) -> bytes | None:
    if not any(week.sales for week in weeks):
        return None
    figure = _figure()
    axes = figure.add_subplot()
    positions = range(len(weeks))
    axes.bar(positions, [w.sales for w in weeks], color=SALES_COLOUR, label=words["sales"])
    axes.plot(
        positions,
        [w.buyers for w in weeks],
        color=BUYERS_COLOUR,
        marker="o",
        linewidth=2,
        label=words["buyers"],
    )
    axes.set_xticks(list(positions), [w.starts.strftime("%d/%m") for w in weeks], rotation=45)
    axes.set_xlabel(words["week_of"])
    axes.set_title(words["weekly_title"])
    axes.legend(loc="upper left")
    axes.grid(axis="y", alpha=0.3)
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(figure)


def nps_by_month(months: list[MonthPoint], words: Mapping[str, str]) -> bytes | None:
    """Months without answers stay empty, so the time axis stays true."""
    if not any(month.answers for month in months):
        return None
    figure = _figure()
    axes = figure.add_subplot()
    scores = [month.nps if month.nps is not None else 0 for month in months]
    positions = range(len(months))
    axes.bar(positions, scores, width=0.6, color=[GOOD if s >= 0 else BAD for s in scores])
    for position, score, month in zip(positions, scores, months, strict=True):
        if not month.answers:
            continue
        axes.annotate(
            f"{score:+d}\n{words['answers']}: {month.answers}",
            (position, score),
            xytext=(0, 6 if score >= 0 else -28),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylim(-110, 125)
    axes.set_xticks(list(positions), [month.month for month in months], rotation=45)
    axes.set_title(words["nps_title"])
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def quadrant_map(counts: Mapping[str, int], words: Mapping[str, str]) -> bytes | None:
    total = sum(counts.values())
    if total == 0:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    largest = max(counts.values())
    for quadrant, (column, row) in QUADRANT_CELLS.items():
        count = counts.get(quadrant, 0)
        colour = GOOD if row == 1 else BAD
        axes.add_patch(_cell(column, row, colour, 0.15 + 0.6 * count / largest))
        axes.text(
            column + 0.5,
            row + 0.5,
            f"{words[quadrant]}\n{count} ({round(100 * count / total)}%)",
            ha="center",
            va="center",
            fontsize=13,
        )
    axes.set_xlim(0, 2)
    axes.set_ylim(0, 2)
    axes.set_xticks([0.5, 1.5], [words["weak"], words["strong"]])
    axes.set_yticks([0.5, 1.5], [words["dissatisfied"], words["satisfied"]])
    axes.set_xlabel(words["relationship"])
    axes.set_ylabel(words["satisfaction"])
    axes.set_title(words["map_title"])
    return _png(figure)


def _cell(column: int, row: int, colour: str, alpha: float) -> Rectangle:
    return Rectangle((column, row), 1, 1, facecolor=colour, alpha=alpha, edgecolor="white")


def _figure() -> Figure:
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="tight")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
