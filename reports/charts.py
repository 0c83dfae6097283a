"""The reports' charts, each an inline SVG string (see :mod:`reports.svg`).

Labels that come from data (op names, run names) are drawn with
``parse_math=False``: a ``$`` in one must never start mathtext.
"""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator

from .svg import SVG_RC, figure_to_svg

BAD, GOOD, NEUTRAL, MUTED = "#c0392b", "#2e7d32", "#8e9aaf", "#d5dae1"
_STYLE = {**SVG_RC, "font.size": 8, "axes.spines.top": False, "axes.spines.right": False}


def ops_chart(rows: list[dict[str, Any]], *, by_examples: bool) -> str | None:
    """Horizontal bars per op (examples, or findings when examples are unknown),
    ops with findings in red."""
    measure = "examples" if by_examples else "findings"
    rows = [row for row in rows if row[measure]]
    if not rows:
        return None
    rows = sorted(rows, key=lambda row: (-row[measure], row["op"]))[::-1]  # barh draws bottom-up
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(6.0, 0.7 + 0.2 * len(rows)), layout="constrained")
        ax = fig.add_subplot()
        positions = range(len(rows))
        colors = [BAD if row["findings"] else NEUTRAL for row in rows]
        bars = ax.barh(positions, [row[measure] for row in rows], color=colors, height=0.7)
        ax.set_yticks(positions, [row["op"] for row in rows], parse_math=False)
        if by_examples:
            labels = [f"{row['findings']} finding" + ("s" if row["findings"] != 1 else "")
                      if row["findings"] else "" for row in rows]
            ax.bar_label(bars, labels, padding=3, color=BAD, parse_math=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"{measure} per op" + (" (red: ops with findings)" if by_examples else ""))
        ax.margins(x=0.15 if by_examples else 0.05, y=0.5 / len(rows))
        return figure_to_svg(fig)


def outcomes_chart(rows: list[tuple[str, int, int, int]]) -> str | None:
    """Stacked horizontal bars per feature: passed, failed, skipped tests."""
    rows = [row for row in rows if sum(row[1:])][::-1]
    if not rows:
        return None
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(6.0, 0.9 + 0.25 * len(rows)), layout="constrained")
        ax = fig.add_subplot()
        positions = range(len(rows))
        left = [0] * len(rows)
        for column, label, color in ((1, "passed", GOOD), (2, "failed", BAD), (3, "skipped", MUTED)):
            widths = [row[column] for row in rows]
            ax.barh(positions, widths, left=left, color=color, height=0.7, label=label)
            left = [a + b for a, b in zip(left, widths)]
        ax.set_yticks(positions, [row[0] for row in rows], parse_math=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("tests per feature")
        ax.legend(loc="lower right", frameon=False, ncols=3, bbox_to_anchor=(1, 1))
        return figure_to_svg(fig)


def history_chart(runs: Sequence[dict[str, Any]]) -> str | None:
    """Three panels over the runs, oldest left: examples, findings, and
    findings new (up, red) and fixed (down, green) since the run before.

    Each run is a dict with ``name``, ``examples`` (None when unknown),
    ``findings``, ``new``, ``fixed`` and ``interrupted``.
    """
    if not runs:
        return None
    x = list(range(len(runs)))
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(7.0, 5.4), layout="constrained")
        top, middle, bottom = fig.subplots(3, 1, sharex=True)

        examples = [run["examples"] or 0 for run in runs]
        colors = [BAD if run["interrupted"] else NEUTRAL for run in runs]
        top.bar(x, examples, color=colors, width=0.7)
        top.set_ylabel("examples")
        top.set_title("examples per run (red: interrupted)", loc="left", fontsize=8)

        middle.plot(x, [run["findings"] for run in runs], marker="o", color=BAD, linewidth=1.2)
        middle.set_ylabel("findings")
        middle.set_ylim(0, max([run["findings"] for run in runs] + [1]) * 1.2)
        middle.set_title("distinct findings per run", loc="left", fontsize=8)

        new_bars = bottom.bar(x, [run["new"] for run in runs], color=BAD, width=0.7, label="new")
        fixed_bars = bottom.bar(x, [-run["fixed"] for run in runs], color=GOOD, width=0.7, label="fixed")
        bottom.bar_label(new_bars, [str(run["new"] or "") for run in runs], padding=1, color=BAD)
        bottom.bar_label(fixed_bars, [str(run["fixed"] or "") for run in runs], padding=1, color=GOOD)
        bottom.axhline(0, color="#5b6573", linewidth=0.6)
        bottom.set_ylabel("signatures")
        bottom.set_title("new (up) and fixed (down) since the previous run", loc="left", fontsize=8)
        low = max([run["fixed"] for run in runs] + [1])
        high = max([run["new"] for run in runs] + [1])
        bottom.set_ylim(-low * 1.35, high * 1.35)
        bottom.yaxis.set_major_formatter(lambda value, _: f"{abs(value):g}")

        for ax in (top, middle, bottom):
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        # At most ~12 run names on the axis; the table below names them all.
        step = max(1, -(-len(runs) // 12))
        ticks = x[::step]
        bottom.xaxis.set_major_locator(FixedLocator(ticks))
        bottom.set_xticks(ticks, [runs[i]["name"] for i in ticks], parse_math=False,
                          rotation=30, ha="right")
        bottom.set_xlim(-0.6, len(runs) - 0.4)
        return figure_to_svg(fig)
