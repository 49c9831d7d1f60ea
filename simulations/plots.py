"""The one plotting module of the reports: accuracy against N, against FLOPs, and by level.

Every figure shows 95% intervals (the cluster bootstrap of `simulations.report`) and says so in
its legend: shaded bands where a method has two or more budgets, error bars where it has one.
PNGs are written atomically (`backends.files.atomic_write`); `write` removes the figures it did
not draw, so a reused output folder never shows a stale one.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backends.files import atomic_write
from simulations.report import flops_unit

BUDGET_PLOT = "accuracy_vs_budget.png"
FLOPS_PLOT = "accuracy_vs_flops.png"
LEVEL_PLOT = "accuracy_by_level.png"
NAMES = (BUDGET_PLOT, FLOPS_PLOT, LEVEL_PLOT)
Y_LABEL = "accuracy (PRM-weighted vote), %"
BAND_LABEL = "95% interval (bootstrap over problems)"
SIZE = (6.4, 4.2)  # inches
DPI = 120
BAND_ALPHA = 0.15
DODGE = 0.06  # log2 units between methods' error bars at one x, so they do not hide each other
MAX_TICKS = 6


def remove(out: Path) -> None:
    """Removes every plot this module writes from `out`."""
    for name in NAMES:
        (out / name).unlink(missing_ok=True)


def preload() -> None:
    """Imports matplotlib (Agg) and pyplot on a background thread, so that `write` finds them
    loaded: a caller starts it while its compiled work runs (XLA runs without the GIL), taking
    the import (~0.6 s CPU) off the serial end of a run."""

    def load() -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot

    threading.Thread(target=load, name="plots-preload", daemon=True).start()


def write(
    out: Path,
    rows: Sequence[dict[str, Any]],
    levels: Sequence[dict[str, Any]] = (),
    *,
    title: str,
) -> list[Path]:
    """Accuracy vs N and vs FLOPs from summary rows; accuracy by level (at the largest N) from
    `report.by_level` rows when there are any. Returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    figures = [
        (BUDGET_PLOT, versus_figure(rows, "budget", title)),
        (FLOPS_PLOT, versus_figure(rows, "flops", title)),
    ]
    if levels:
        figures.append((LEVEL_PLOT, level_figure(levels, title)))
    remove(out)
    paths = []
    for name, fig in figures:
        paths.append(_save(fig, out / name))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
    return path


def _percent(row: dict[str, Any]) -> tuple[float, float, float]:
    low, high = row["accuracy_ci95"]
    return 100 * row["accuracy"], 100 * low, 100 * high


def versus_figure(rows: Sequence[dict[str, Any]], xkey: str, title: str):
    """Accuracy against N (log2 axis, ticks at the budgets) or FLOPs per problem (log10)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    scale, unit = flops_unit([r["flops"] for r in rows]) if xkey == "flops" else (1.0, "")
    for j, method in enumerate(methods):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["budget"])
        x = np.asarray([r[xkey] for r in rs], float) / scale
        y, low, high = (np.asarray(v) for v in zip(*map(_percent, rs), strict=True))
        if len(rs) >= 2:
            (line,) = ax.plot(x, y, marker="o", label=method)
            ax.fill_between(x, low, high, alpha=BAND_ALPHA, color=line.get_color())
        else:
            shift = 2 ** (DODGE * (j - (len(methods) - 1) / 2))
            ax.errorbar(x * shift, y, yerr=[y - low, high - y], fmt="o", capsize=4, label=method)
    ax.set_xscale("log", base=2 if xkey == "budget" else 10)
    values = sorted({r[xkey] / scale for r in rows})
    ticks = values if xkey == "budget" else _log_ticks(min(values), max(values))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(values) == 1:  # one x: a symmetric window around it, not matplotlib's default
        ax.set_xlim(values[0] / 1.5, values[0] * 1.5)
    xlabel = (
        "rollout budget N" if xkey == "budget" else f"{unit} per problem (policy + PRM + embedder)"
    )
    ax.set(xlabel=xlabel, ylabel=Y_LABEL, title=title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    points = [sum(r["method"] == m for r in rows) for m in methods]
    if max(points) >= 2:
        handles.append(Patch(color="grey", alpha=2 * BAND_ALPHA))
        labels.append(f"shaded: {BAND_LABEL}")
    if min(points) == 1:
        handles.append(Line2D([], [], color="grey", marker="|", linestyle="none", markersize=10))
        labels.append(f"bars: {BAND_LABEL}")
    ax.legend(handles, labels, fontsize=8)
    return fig


def _log_ticks(low: float, high: float) -> list[float]:
    """At most MAX_TICKS round ticks (1, 2, 5 × 10^k; 1–9 × 10^k where that gives too few)
    spanning [low, high], so that labels on a log axis never crowd."""
    if low <= 0:
        return [high]
    first, last = math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1
    for steps in ((1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10.0**e for e in range(first, last + 1) for m in steps]
        inside = [t for t in ticks if low / 1.05 <= t <= high * 1.05]
        if len(inside) >= 2:
            break
    if len(inside) < 2:  # a narrow range: its two ends, rounded to 2 significant digits
        inside = sorted({float(f"{low:.2g}"), float(f"{high:.2g}")})
    stride = math.ceil(len(inside) / MAX_TICKS)
    return inside[::stride]


def level_figure(levels: Sequence[dict[str, Any]], title: str):
    """Bars per difficulty level (one per method) at the largest N, with 95% error bars and the
    number of problems of each level under its label."""
    import matplotlib.pyplot as plt

    top = max(r["budget"] for r in levels)
    rows = [r for r in levels if r["budget"] == top]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    names = sorted({r["level"] for r in rows})
    count = {r["level"]: r["n"] for r in rows}
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    for j, method in enumerate(methods):
        cell = {r["level"]: r for r in rows if r["method"] == method}
        at = [i for i, level in enumerate(names) if level in cell]
        y, low, high = (
            np.asarray(v) for v in zip(*(_percent(cell[names[i]]) for i in at), strict=True)
        )
        ax.bar(
            np.asarray(at) + (j - (len(methods) - 1) / 2) * width,
            y,
            width,
            yerr=[y - low, high - y],
            capsize=3,
            label=method,
        )
    ax.set_xticks(range(len(names)), [f"level {lv}\n(n={count[lv]})" for lv in names])
    # Headroom above 100% holds the legend, so that it never hides a bar.
    ax.set(ylabel=Y_LABEL, title=f"{title}, N = {top}", ylim=(0, 135), yticks=range(0, 101, 20))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(
        fontsize=8,
        title=f"bars: {BAND_LABEL}",
        title_fontsize=7,
        loc="upper center",
        ncol=min(len(methods), 4),
    )
    return fig
