"""Our results beside the paper's: a difference per cell, overlay figures, a verdict per finding.

Input: OUR summary rows, a list of dicts (one per cell), in percent:
  required  method, budget, accuracy, lo, hi     (lo/hi: our 95% interval of the accuracy)
  optional  model, dataset                       (default: Table 1's Llama-3.2-1B on MATH500)
            level                                (1–5: a row of Fig. 4's per-level breakdown)
            pass_rate, pass_rate_lo, pass_rate_hi
                                                 (Fig. 3b's "pass rate": the percentage of ALL
                                                 final rollouts that are correct, the runner's
                                                 `correct_fraction`, not pass@N)
            flops, latency                       (per problem: Table 1's FLOPs and seconds)
            flops_lo, flops_hi, latency_lo, latency_hi
The paper's values come from `papers.data` (Fig. 3, p.7; Fig. 4, p.9; Table 1, p.8).

Verdicts (`verdicts`): each stated finding is turned into a statistic S with a 95% interval
[lo, hi] and a claim "S ≥ threshold" with a declared tolerance (`Tolerances`):
  holds                lo ≥ threshold
  holds-approximately  lo > threshold − tolerance      (shown to be within the tolerance)
  fails                hi < threshold − tolerance      (shown to miss by more than the tolerance)
  inconclusive         otherwise (the interval straddles threshold − tolerance), or no data.
A finding over several cells takes the worst cell's verdict (fails < inconclusive <
holds-approximately < holds). Differences between two methods get the interval
d ± sqrt(h_a² + h_b²) from their own half-widths: the methods' errors are treated as independent,
which is conservative for paired runs (positively correlated errors make the true interval
narrower), so it errs towards "inconclusive". A slope over log2 N is the ordinary least-squares
slope, its standard error propagated from the points' (half-width / 1.96).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from papers import data

Z95 = 1.959963984540054

HOLDS = "holds"
HOLDS_APPROXIMATELY = "holds-approximately"
FAILS = "fails"
INCONCLUSIVE = "inconclusive"
VERDICTS = (FAILS, INCONCLUSIVE, HOLDS_APPROXIMATELY, HOLDS)  # worst first

TABLE1_SETTING = ("llama-3.2-1b", "math500")
# Methods that allocate at the solution level (the paper's baselines); temperature sampling
# allocates nothing and is left out of "the methods converge".
SEARCH_METHODS = ("beam_search", "dvts", "rebase", "dora")
MODERATE_BUDGET = 64  # "moderate N" of Fig. 4's discussion: N ≥ 64


class CompareError(ValueError):
    """Our rows are malformed (the message is one line)."""


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """How far a statistic may fall short of a claim and still "hold approximately".

    accuracy: points of accuracy or pass rate (a DORA deficit this small is a tie).
    slope: points per doubling of N (a gap that shrinks this slowly is "not growing" within it).
    spread: points between methods' spreads on easy and hard levels.
    ratio: relative shortfall of a FLOPs or latency ratio against the paper's.
    """

    accuracy: float = 1.0
    slope: float = 0.25
    spread: float = 1.0
    ratio: float = 0.15


@dataclasses.dataclass(frozen=True)
class Row:
    """One of our cells, normalised (percent)."""

    model: str
    dataset: str
    level: int | None
    method: str
    budget: int
    accuracy: float
    lo: float
    hi: float
    pass_rate: float | None = None
    pass_rate_lo: float | None = None
    pass_rate_hi: float | None = None
    flops: float | None = None
    flops_lo: float | None = None
    flops_hi: float | None = None
    latency: float | None = None
    latency_lo: float | None = None
    latency_hi: float | None = None

    @property
    def acc(self) -> tuple[float, float, float]:
        """(accuracy, lo, hi)."""
        return self.accuracy, self.lo, self.hi

    def metric(self, name: str) -> tuple[float, float, float] | None:
        value = getattr(self, name)
        if value is None:
            return None
        lo, hi = ("lo", "hi") if name == "accuracy" else (f"{name}_lo", f"{name}_hi")
        lo_v, hi_v = getattr(self, lo), getattr(self, hi)
        return value, value if lo_v is None else lo_v, value if hi_v is None else hi_v


@dataclasses.dataclass(frozen=True)
class Difference:
    """Ours − the paper's in one cell; `paper_inside`: the paper's value is in our interval."""

    metric: str
    model: str
    dataset: str
    level: int | None
    method: str
    budget: int
    ours: float
    lo: float
    hi: float
    paper: float
    precision: float
    difference: float
    paper_inside: bool


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A stated finding judged on our rows."""

    id: str
    statement: str
    where: str
    verdict: str
    statistic: str
    value: float
    lo: float
    hi: float
    threshold: float
    tolerance: float
    detail: str


# --- rows ---------------------------------------------------------------------------------


def _number(row: Mapping[str, Any], key: str, index: int) -> float:
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise CompareError(f"row {index}: {key} {value!r} is not a number")
    value = float(value)
    if not math.isfinite(value):
        raise CompareError(f"row {index}: {key} {value!r} is not finite")
    return value


def normalize(
    rows: Iterable[Mapping[str, Any]],
    *,
    model: str = TABLE1_SETTING[0],
    dataset: str = TABLE1_SETTING[1],
) -> list[Row]:
    """Checks our rows and fills `model`/`dataset` defaults; one-line `CompareError` if bad."""
    out: list[Row] = []
    seen: set[tuple] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise CompareError(f"row {index}: not a mapping but {type(row).__name__}")
        missing = [k for k in ("method", "budget", "accuracy", "lo", "hi") if k not in row]
        if missing:
            raise CompareError(f"row {index}: missing {', '.join(missing)}")
        budget = row["budget"]
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
            raise CompareError(f"row {index}: budget {budget!r} is not an integer >= 1")
        level = row.get("level")
        if level is not None and level not in data.LEVELS:
            raise CompareError(f"row {index}: level {level!r} is not one of 1..5")
        fields: dict[str, Any] = {
            "model": str(row.get("model") or model),
            "dataset": str(row.get("dataset") or dataset),
            "level": None if level is None else int(level),
            "method": str(row["method"]),
            "budget": int(budget),
        }
        for key in ("accuracy", "lo", "hi"):
            fields[key] = _number(row, key, index)
        for group in ("pass_rate", "flops", "latency"):
            keys = (group, f"{group}_lo", f"{group}_hi")
            present = [k for k in keys if row.get(k) is not None]
            if present and group not in present:
                raise CompareError(f"row {index}: {', '.join(present)} without {group}")
            if group == "pass_rate" and present and len(present) != 3:
                raise CompareError(f"row {index}: pass_rate needs pass_rate_lo and pass_rate_hi")
            for k in present:
                fields[k] = _number(row, k, index)
        for name, lo_key, hi_key in (
            ("accuracy", "lo", "hi"),
            ("pass_rate", "pass_rate_lo", "pass_rate_hi"),
        ):
            value = fields.get(name)
            if value is None:
                continue
            if not 0 <= value <= 100:
                raise CompareError(f"row {index}: {name} {value} is not a percentage in [0, 100]")
            if not fields[lo_key] <= value <= fields[hi_key]:
                raise CompareError(
                    f"row {index}: {name} {value} is not inside [{fields[lo_key]}, "
                    f"{fields[hi_key]}]"
                )
        r = Row(**fields)
        key = (r.model, r.dataset, r.level, r.method, r.budget)
        if key in seen:
            raise CompareError(f"row {index}: cell {key} appears twice")
        seen.add(key)
        out.append(r)
    if not out:
        raise CompareError("no rows")
    return out


def paper_rows(*, with_table1: bool = True) -> list[dict[str, Any]]:
    """The paper's own Fig. 3 and Fig. 4 values as rows (interval = value ± reading precision);
    with Table 1's FLOPs and latency on REBASE@256 and DORA@64 of its setting. Judging these
    checks the paper's numbers as printed, not its run-to-run uncertainty."""
    pass_rate = {
        (r.model, r.dataset, r.method, r.budget): r for r in data.fig3() if r.metric == "pass_rate"
    }
    table = data.table1_dict()
    out = []
    for r in data.fig3() + data.fig4():
        if r.metric != "accuracy":
            continue
        row: dict[str, Any] = {
            "model": r.model,
            "dataset": r.dataset,
            "level": r.level,
            "method": r.method,
            "budget": r.budget,
            "accuracy": r.value,
            "lo": max(0.0, r.value - r.precision),
            "hi": min(100.0, r.value + r.precision),
        }
        if r.level is None:
            p = pass_rate[(r.model, r.dataset, r.method, r.budget)]
            row["pass_rate"] = p.value
            row["pass_rate_lo"] = max(0.0, p.value - p.precision)
            row["pass_rate_hi"] = min(100.0, p.value + p.precision)
            in_table = table.get(r.method, {}).get("rollouts") == r.budget
            if with_table1 and (r.model, r.dataset) == TABLE1_SETTING and in_table:
                row["flops"] = table[r.method]["total_flops"]
                row["latency"] = table[r.method]["latency"]
        out.append(row)
    return out


# --- (a) differences -------------------------------------------------------------------------


def differences(rows: Iterable[Mapping[str, Any]], **defaults: str) -> list[Difference]:
    """Ours − the paper's per cell (accuracy, and pass rate where our rows have it).

    Rows with a level are compared with Fig. 4, the others with Fig. 3. Cells the paper does not
    report (another method, budget, model or dataset) are left out.
    """
    ours = normalize(rows, **defaults)
    fig3 = {(r.metric, r.model, r.dataset, None, r.method, r.budget): r for r in data.fig3()}
    fig4 = {(r.metric, r.model, r.dataset, r.level, r.method, r.budget): r for r in data.fig4()}
    paper = fig3 | fig4
    out = []
    for r in ours:
        for metric in data.METRICS:
            mine = r.metric(metric)
            ref = paper.get((metric, r.model, r.dataset, r.level, r.method, r.budget))
            if mine is None or ref is None:
                continue
            value, lo, hi = mine
            out.append(
                Difference(
                    metric=metric,
                    model=r.model,
                    dataset=r.dataset,
                    level=r.level,
                    method=r.method,
                    budget=r.budget,
                    ours=value,
                    lo=lo,
                    hi=hi,
                    paper=ref.value,
                    precision=ref.precision,
                    difference=value - ref.value,
                    paper_inside=lo <= ref.value <= hi,
                )
            )
    return out


def format_differences(diffs: Sequence[Difference]) -> str:
    """A plain-text table, one line per cell."""
    head = (
        f"{'metric':<10}{'model':<14}{'dataset':<10}{'lvl':>4} {'method':<21}{'N':>4}"
        f"{'ours':>8}{'95% interval':>17}{'paper':>8}{'±':>6}{'ours−paper':>11}  inside"
    )
    lines = [head]
    for d in diffs:
        level = "" if d.level is None else str(d.level)
        lines.append(
            f"{d.metric:<10}{d.model:<14}{d.dataset:<10}{level:>4} {d.method:<21}{d.budget:>4}"
            f"{d.ours:>8.2f}  [{d.lo:>6.2f}, {d.hi:>6.2f}]{d.paper:>8.2f}{d.precision:>6.2f}"
            f"{d.difference:>+11.2f}  {'yes' if d.paper_inside else 'no'}"
        )
    inside = sum(d.paper_inside for d in diffs)
    lines.append(f"the paper's value is inside our 95% interval in {inside} of {len(diffs)} cells")
    return "\n".join(lines)


# --- (b) overlays ---------------------------------------------------------------------------


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)
    return path


def _draw(ax, ours: list[Row], paper: list[data.FigureValue], metric: str) -> None:
    colors = {m: f"C{i}" for i, m in enumerate(data.METHODS)}
    methods = list(dict.fromkeys([r.method for r in ours] + [p.method for p in paper]))
    extra = iter(range(len(data.METHODS), 10 + len(methods)))
    for method in methods:
        color = colors.get(method) or f"C{next(extra) % 10}"
        mine = sorted((r for r in ours if r.method == method), key=lambda r: r.budget)
        cells = [r.metric(metric) for r in mine]
        pts = [(r.budget, *c) for r, c in zip(mine, cells, strict=True) if c is not None]
        if pts:
            x, y, lo, hi = map(np.asarray, zip(*pts, strict=True))
            ax.plot(x, y, "-o", color=color, ms=3.5, lw=1.6, label=f"{method} (ours)")
            ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
        ref = sorted((p for p in paper if p.method == method), key=lambda p: p.budget)
        if ref:
            x = np.asarray([p.budget for p in ref])
            y = np.asarray([p.value for p in ref])
            e = np.asarray([p.precision for p in ref])
            ax.plot(x, y, "--x", color=color, ms=4, lw=1.1, alpha=0.9, label=f"{method} (paper)")
            ax.fill_between(x, y - e, y + e, color=color, alpha=0.35, lw=0)
    ax.set_xscale("log", base=2)
    budgets = sorted({r.budget for r in ours} | {p.budget for p in paper})
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.grid(alpha=0.3)


def overlay(rows: Iterable[Mapping[str, Any]], out_dir: Path | str, **defaults: str) -> list[Path]:
    """Fig. 3 overlays: per (model, dataset) in our rows and metric we have, our curves (solid,
    95% bands) over the paper's (dashed, ± its reading precision). Returns the PNG paths,
    `overlay_<metric>_<model>_<dataset>.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = [r for r in normalize(rows, **defaults) if r.level is None]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for model, dataset in dict.fromkeys((r.model, r.dataset) for r in ours):
        cell = [r for r in ours if (r.model, r.dataset) == (model, dataset)]
        for metric in data.METRICS:
            if all(r.metric(metric) is None for r in cell):
                continue
            paper = [
                p for p in data.fig3() if (p.metric, p.model, p.dataset) == (metric, model, dataset)
            ]
            fig, ax = plt.subplots(figsize=(8.6, 4.6), dpi=110)
            _draw(ax, cell, paper, metric)
            panel = "Fig. 3a" if metric == "accuracy" else "Fig. 3b"
            ax.set_title(
                f"{panel}: {model}, {dataset}\nours (solid, 95% band) vs the paper (dashed)"
            )
            ax.set_xlabel("rollout budget N")
            ax.set_ylabel(f"{metric.replace('_', ' ')}, %")
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            fig.tight_layout()
            paths.append(_save(fig, out_dir / f"overlay_{metric}_{model}_{dataset}.png"))
            plt.close(fig)
    return paths


def overlay_levels(
    rows: Iterable[Mapping[str, Any]], out_dir: Path | str, **defaults: str
) -> list[Path]:
    """Fig. 4 overlays: per model with level rows, one panel per difficulty level (ours solid
    with 95% bands, the paper's dashed). Returns `overlay_levels_<model>.png` paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = [r for r in normalize(rows, **defaults) if r.level is not None]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in dict.fromkeys(r.model for r in ours):
        fig, axes = plt.subplots(1, len(data.LEVELS), figsize=(17, 4.4), dpi=100)
        for ax, level in zip(axes, data.LEVELS, strict=True):
            mine = [r for r in ours if (r.model, r.level) == (model, level)]
            paper = [p for p in data.fig4() if (p.model, p.level) == (model, level)]
            _draw(ax, mine, paper, "accuracy")
            ax.set_title(f"level {level}")
            ax.set_xlabel("N")
        axes[0].set_ylabel("MATH500 accuracy, %")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=8, ncol=5, loc="lower center")
        fig.suptitle(f"Fig. 4: {model} by difficulty level — ours (solid, 95%) vs paper (dashed)")
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        paths.append(_save(fig, out_dir / f"overlay_levels_{model}.png"))
        plt.close(fig)
    return paths


# --- (c) verdicts ---------------------------------------------------------------------------


def judge(value: float, lo: float, hi: float, threshold: float, tolerance: float) -> str:
    """The verdict word for the claim "statistic ≥ threshold" (module docstring)."""
    if lo >= threshold:
        return HOLDS
    if lo > threshold - tolerance:
        return HOLDS_APPROXIMATELY
    if hi < threshold - tolerance:
        return FAILS
    return INCONCLUSIVE


def _worst(words: Iterable[str]) -> str:
    words = list(words)
    return min(words, key=VERDICTS.index) if words else INCONCLUSIVE


def _counts(words: Sequence[str]) -> str:
    return ", ".join(f"{w} {words.count(w)}" for w in reversed(VERDICTS) if words.count(w))


def _difference(a: tuple[float, float, float], b: tuple[float, float, float]):
    """a − b with the interval of independent errors (module docstring)."""
    d = a[0] - b[0]
    below = math.hypot(a[0] - a[1], b[2] - b[0])
    above = math.hypot(a[2] - a[0], b[0] - b[1])
    return d, d - below, d + above


def _slope(budgets: Sequence[int], values: Sequence[tuple[float, float, float]]):
    """OLS slope of values over log2 N and its standard error (from half-width / Z95)."""
    x = np.log2(np.asarray(budgets, float))
    y = np.asarray([v[0] for v in values])
    se = np.asarray([(v[2] - v[1]) / 2 / Z95 for v in values])
    c = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
    return float(c @ y), float(math.sqrt(np.sum(c**2 * se**2)))


def _cells(rows: Sequence[Row], keys: tuple[str, ...]) -> dict[tuple, list[Row]]:
    out: dict[tuple, list[Row]] = {}
    for r in rows:
        out.setdefault(tuple(getattr(r, k) for k in keys), []).append(r)
    return out


def _verdict(finding: data.Finding, **fields: Any) -> Verdict:
    return Verdict(id=finding.id, statement=finding.statement, where=finding.where, **fields)


def _no_data(finding: data.Finding, why: str) -> Verdict:
    nan = float("nan")
    return _verdict(
        finding,
        verdict=INCONCLUSIVE,
        statistic="",
        value=nan,
        lo=nan,
        hi=nan,
        threshold=nan,
        tolerance=nan,
        detail=why,
    )


def _best_everywhere(finding, rows: Sequence[Row], metric: str, tol: float) -> Verdict:
    words, worst = [], None
    for key, cell in sorted(_cells(rows, ("model", "dataset", "budget")).items()):
        by = {r.method: v for r in cell if (v := r.metric(metric)) is not None}
        if "dora" not in by or len(by) < 2:
            continue
        best = max((m for m in by if m != "dora"), key=lambda m: by[m][0])
        d = _difference(by["dora"], by[best])
        word = judge(*d, 0.0, tol)
        words.append(word)
        if worst is None or (VERDICTS.index(word), d[0]) < (VERDICTS.index(worst[0]), worst[1][0]):
            worst = (word, d, key, best)
    if worst is None:
        return _no_data(finding, f"no cell with DORA and another method's {metric}")
    _, (d, lo, hi), key, best = worst
    return _verdict(
        finding,
        verdict=_worst(words),
        statistic=f"DORA − best other {metric} (points), worst cell",
        value=d,
        lo=lo,
        hi=hi,
        threshold=0.0,
        tolerance=tol,
        detail=f"{len(words)} cells: {_counts(words)}; worst {key} vs {best}",
    )


def _gap_slope(finding, rows: Sequence[Row], keys: tuple[str, ...], tol: float, what: str):
    slopes, ses, names = [], [], []
    for key, cell in sorted(_cells(rows, keys).items(), key=lambda kv: str(kv[0])):
        dora = {r.budget: r.acc for r in cell if r.method == "dora"}
        rebase = {r.budget: r.acc for r in cell if r.method == "rebase"}
        budgets = sorted(set(dora) & set(rebase))
        if len(budgets) < 3:
            continue
        gaps = [_difference(dora[n], rebase[n]) for n in budgets]
        slope, se = _slope(budgets, gaps)
        slopes.append(slope)
        ses.append(se)
        names.append(f"{'/'.join(map(str, key))} {slope:+.2f}")
    if not slopes:
        return _no_data(finding, f"no {what} cell with DORA and REBASE at 3 or more budgets")
    mean = float(np.mean(slopes))
    half = Z95 * math.sqrt(sum(s**2 for s in ses)) / len(ses)
    return _verdict(
        finding,
        verdict=judge(mean, mean - half, mean + half, 0.0, tol),
        statistic="slope of the DORA − REBASE accuracy gap over log2 N (points per doubling), "
        f"mean over {len(slopes)} {what} cells",
        value=mean,
        lo=mean - half,
        hi=mean + half,
        threshold=0.0,
        tolerance=tol,
        detail="per cell: " + "; ".join(names),
    )


def _spread(cell: Sequence[Row]) -> tuple[float, float] | None:
    values = [r.acc for r in cell if r.method in SEARCH_METHODS]
    if len(values) < 2:
        return None
    top = max(values, key=lambda v: v[0])
    bottom = min(values, key=lambda v: v[0])
    se = math.hypot((top[2] - top[1]) / 2 / Z95, (bottom[2] - bottom[1]) / 2 / Z95)
    return top[0] - bottom[0], se


def _easy_levels_converge(finding, rows: Sequence[Row], tol: float) -> Verdict:
    groups: dict[str, list[tuple[float, float]]] = {"easy": [], "hard": []}
    for (_, level, budget), cell in _cells(rows, ("model", "level", "budget")).items():
        spread = _spread(cell)
        if spread is None or budget < MODERATE_BUDGET:
            continue
        groups["easy" if level <= 2 else "hard"].append(spread)
    if not groups["easy"] or not groups["hard"]:
        return _no_data(finding, f"needs level rows on levels 1–2 and 3–5 at N ≥ {MODERATE_BUDGET}")
    means = {k: float(np.mean([s for s, _ in v])) for k, v in groups.items()}
    ses = {k: math.sqrt(sum(se**2 for _, se in v)) / len(v) for k, v in groups.items()}
    value = means["hard"] - means["easy"]
    half = Z95 * math.hypot(ses["hard"], ses["easy"])
    return _verdict(
        finding,
        verdict=judge(value, value - half, value + half, 0.0, tol),
        statistic=f"spread of {', '.join(SEARCH_METHODS)} (best − worst, points) on levels 3–5 "
        f"minus on levels 1–2, mean over N ≥ {MODERATE_BUDGET}",
        value=value,
        lo=value - half,
        hi=value + half,
        threshold=0.0,
        tolerance=tol,
        detail=f"levels 1–2: {means['easy']:.2f}, levels 3–5: {means['hard']:.2f} "
        f"({len(groups['easy'])} and {len(groups['hard'])} cells)",
    )


def _table1_cells(rows: Sequence[Row]) -> dict[str, Row] | None:
    cell = {
        r.method: r
        for r in rows
        if r.level is None
        and (r.model, r.dataset) == TABLE1_SETTING
        and (r.method, r.budget) in (("dora", 64), ("rebase", 256))
    }
    return cell if len(cell) == 2 else None


def _dora64_beats_rebase256(finding, rows: Sequence[Row], tol: float) -> Verdict:
    cell = _table1_cells(rows)
    if cell is None:
        return _no_data(finding, f"needs DORA@64 and REBASE@256 rows of {TABLE1_SETTING}")
    d, lo, hi = _difference(cell["dora"].acc, cell["rebase"].acc)
    return _verdict(
        finding,
        verdict=judge(d, lo, hi, 0.0, tol),
        statistic="DORA@64 − REBASE@256 accuracy (points)",
        value=d,
        lo=lo,
        hi=hi,
        threshold=0.0,
        tolerance=tol,
        detail=f"{cell['dora'].accuracy:.2f} vs {cell['rebase'].accuracy:.2f} "
        "(Table 1 prints 68.7 vs 67.4; Fig. 3a shows 67.24 vs 67.60)",
    )


def _ratio(finding, rows: Sequence[Row], name: str, paper: float, tol: float) -> Verdict:
    cell = _table1_cells(rows)
    if cell is None or any(cell[m].metric(name) is None for m in cell):
        return _no_data(finding, f"needs {name} on DORA@64 and REBASE@256 of {TABLE1_SETTING}")
    rebase, dora = cell["rebase"].metric(name), cell["dora"].metric(name)
    assert rebase is not None and dora is not None
    if min(dora[1], dora[0]) <= 0:
        raise CompareError(f"DORA@64's {name} must be positive, got {dora}")
    value, lo, hi = rebase[0] / dora[0], rebase[1] / dora[2], rebase[2] / dora[1]
    return _verdict(
        finding,
        verdict=judge(value, lo, hi, paper, tol * paper),
        statistic=f"REBASE@256 / DORA@64 {name}",
        value=value,
        lo=lo,
        hi=hi,
        threshold=paper,
        tolerance=tol * paper,
        detail=f"ours {value:.2f}× vs the paper's {paper:.2f}× (Table 1)",
    )


def verdicts(
    rows: Iterable[Mapping[str, Any]],
    *,
    tolerances: Tolerances = Tolerances(),
    **defaults: str,
) -> list[Verdict]:
    """A verdict per stated finding (`papers.data.findings()`), computed from OUR rows."""
    ours = normalize(rows, **defaults)
    fig3_rows = [r for r in ours if r.level is None]
    level_rows = [r for r in ours if r.level is not None and r.level >= 3]
    t = tolerances
    checks = {
        "dora_best_accuracy": lambda f: _best_everywhere(f, fig3_rows, "accuracy", t.accuracy),
        "dora_best_pass_rate": lambda f: _best_everywhere(f, fig3_rows, "pass_rate", t.accuracy),
        "gap_grows_with_n": lambda f: _gap_slope(
            f, fig3_rows, ("model", "dataset"), t.slope, "model × dataset"
        ),
        "easy_levels_converge": lambda f: _easy_levels_converge(
            f, [r for r in ours if r.level is not None], t.spread
        ),
        "hard_levels_gap_grows": lambda f: _gap_slope(
            f, level_rows, ("model", "level"), t.slope, "model × level (3–5)"
        ),
        "dora64_beats_rebase256": lambda f: _dora64_beats_rebase256(f, fig3_rows, t.accuracy),
        "flops_ratio": lambda f: _ratio(f, fig3_rows, "flops", data.PAPER_FLOPS_RATIO, t.ratio),
        "latency_ratio": lambda f: _ratio(
            f, fig3_rows, "latency", data.PAPER_LATENCY_RATIO, t.ratio
        ),
    }
    out = []
    for finding in data.findings():
        if finding.id not in checks:
            raise CompareError(f"finding {finding.id!r} has no check")
        out.append(checks[finding.id](finding))
    return out


def format_verdicts(found: Sequence[Verdict]) -> str:
    """One block per finding: verdict, statistic with its interval, where the paper says it."""
    lines = []
    for v in found:
        lines.append(f"[{v.verdict}] {v.id}: {v.statement} ({v.where})")
        if v.statistic:
            lines.append(
                f"    {v.statistic} = {v.value:.3g} [{v.lo:.3g}, {v.hi:.3g}]; claim ≥ "
                f"{v.threshold:.3g}, tolerance {v.tolerance:.3g}"
            )
        lines.append(f"    {v.detail}")
    return "\n".join(lines)
