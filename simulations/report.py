"""Records → summary rows with 95% intervals, one table, the summary file: the one reporting path
of `dora simulate` and `dora bench` (and any later report over the same records).

Records come at two grains, and both are read here without conversion:

- `dora simulate`: one record per (method, N, seed) holding the P problems' 0/1 outcomes in
  `per_problem_accuracy` (an array, or the "0101…" string of results.jsonl) and per-seed means of
  the other metrics; each seed draws its own P problems.
- `dora bench`: one record per (problem, method, N, seed) with a `problem` id and 0/1 metrics;
  every seed runs the same problems (seeds vary the search only).

The interval (one method for every report): a 95% percentile *cluster bootstrap over problems*.
A cluster is one distinct problem with all its outcomes: for bench the problem id (its seeds
together), for simulate (seed, index) since every seed draws fresh problems. `DRAWS` resamples of
the clusters, with replacement, give the pooled mean's distribution; the interval is its 2.5% and
97.5% quantiles. Problems are the population the accuracy speaks for, so they are resampled; the
search's randomness (seeds) enters through each cluster's outcomes. Two alternatives were
rejected: resampling per-seed means (1 to 5 seeds give a degenerate interval from 1 to 5 numbers)
and the normal approximation (at accuracies near 0 or 1 and small P it leaves [0, 1]). A paired
difference between two methods resamples the per-cluster differences (the same problems and
search keys for both), so the problem-to-problem spread cancels. The bootstrap's generator is
seeded explicitly (`seed`, default 0) and restarted per group, so a group's interval does not
depend on which other groups a report holds, and two methods over the same clusters see the same
draws.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backends.files import atomic_write

DRAWS = 2000
CHUNK = 250  # draws per vectorised step (bounds memory at CHUNK × clusters indices)
INTERVAL = (
    f"95% percentile cluster bootstrap over problems ({DRAWS} draws; a problem's seeds "
    "resampled together)"
)
# Means reported beside accuracy (pooled over problems × seeds, no interval).
METRICS = ("majority_accuracy", "best_of_n_accuracy", "pass_at_n")


def _outcomes(record: dict[str, Any]) -> tuple[list[Any], np.ndarray]:
    """(cluster keys, 0/1 accuracy outcomes [n]) of one record, at either grain."""
    if "problem" in record:
        return [record["problem"]], np.asarray([record["accuracy"]], np.float64)
    values = per_problem_bits(record)
    return [(record["seed"], i) for i in range(len(values))], values


def per_problem_bits(record: dict[str, Any]) -> np.ndarray:
    """A run record's 0/1 per-problem accuracy (an array, or results.jsonl's "0101…"), float64."""
    bits = record["per_problem_accuracy"]
    if isinstance(bits, str):
        return np.asarray([int(c) for c in bits], np.float64)
    return np.asarray(bits, np.float64)


def _clusters(records: Iterable[dict[str, Any]]) -> dict[Any, list[float]]:
    """Accuracy outcomes per cluster (a distinct problem), in first-seen order."""
    out: dict[Any, list[float]] = {}
    for r in records:
        keys, values = _outcomes(r)
        for key, value in zip(keys, values, strict=True):
            out.setdefault(key, []).append(float(value))
    return out


def bootstrap_interval(
    sums: np.ndarray, counts: np.ndarray, *, seed: int = 0, draws: int = DRAWS
) -> tuple[float, float]:
    """The 95% percentile interval of Σ sums / Σ counts over clusters resampled with replacement.

    Args:
      sums: [C] each cluster's sum of outcomes.
      counts: [C] each cluster's number of outcomes (> 0).
      seed: the generator's seed (the draws depend on it and on C only).
      draws: bootstrap resamples.

    Returns:
      (low, high); both the point mean when there is a single cluster.
    """
    sums, counts = np.asarray(sums, np.float64), np.asarray(counts, np.float64)
    if len(sums) < 2:
        mean = float(sums.sum() / counts.sum())
        return mean, mean
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, draws, CHUNK):
        picks = rng.integers(0, len(sums), size=(min(CHUNK, draws - start), len(sums)))
        stats.append(sums[picks].sum(axis=1) / counts[picks].sum(axis=1))
    low, high = np.quantile(np.concatenate(stats), [0.025, 0.975])
    return float(low), float(high)


def _interval(clusters: dict[Any, list[float]], *, seed: int, draws: int):
    sums = np.asarray([sum(v) for v in clusters.values()])
    counts = np.asarray([len(v) for v in clusters.values()])
    return float(sums.sum() / counts.sum()), bootstrap_interval(
        sums, counts, seed=seed, draws=draws
    )


def _groups(records: Iterable[dict[str, Any]], *fields: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(tuple(r[f] for f in fields), []).append(r)
    return out


def _weight(record: dict[str, Any]) -> int:
    """How many problems a record's means stand for (1 at the bench's per-problem grain)."""
    bits = record.get("per_problem_accuracy")
    return 1 if bits is None else len(bits)


def _pooled(records: Sequence[dict[str, Any]], value) -> float:
    weights = np.asarray([_weight(r) for r in records], np.float64)
    return float(np.dot(weights, [value(r) for r in records]) / weights.sum())


def summarize(
    records: Iterable[dict[str, Any]], *, seed: int = 0, draws: int = DRAWS
) -> list[dict[str, Any]]:
    """One row per (method, N), in first-seen order.

    Each row: method, budget, seeds, problems (distinct per seed), accuracy with
    `accuracy_ci95` = [low, high] (the cluster bootstrap above), the pooled means of
    majority_accuracy, best_of_n_accuracy and pass_at_n, and mean rollouts and FLOPs per problem.
    """
    rows = []
    for (method, budget), rs in _groups(records, "method", "budget").items():
        seeds = sorted({r["seed"] for r in rs})
        accuracy, ci = _interval(_clusters(rs), seed=seed, draws=draws)
        row: dict[str, Any] = {
            "method": method,
            "budget": budget,
            "seeds": len(seeds),
            "problems": sum(_weight(r) for r in rs) // len(seeds),
            "accuracy": accuracy,
            "accuracy_ci95": list(ci),
        }
        for metric in METRICS:
            row[metric] = _pooled(rs, lambda r, m=metric: r[m])
        row["rollouts"] = _pooled(rs, lambda r: r["rollouts"])
        row["flops"] = _pooled(rs, lambda r: r["flops"]["total"])
        rows.append(row)
    return rows


def by_level(
    records: Iterable[dict[str, Any]], *, seed: int = 0, draws: int = DRAWS
) -> list[dict[str, Any]]:
    """Accuracy per difficulty level (MATH's 1–5) per (method, N): rows of method, budget,
    level, n (distinct problems), accuracy and accuracy_ci95; records without a level are left
    out (the simulator's, AIME's)."""
    leveled = [r for r in records if r.get("level") is not None]
    rows = []
    for (method, budget, level), rs in sorted(
        _groups(leveled, "method", "budget", "level").items(),
        key=lambda item: (item[0][1], item[0][2]),
    ):
        clusters = _clusters(rs)
        accuracy, ci = _interval(clusters, seed=seed, draws=draws)
        rows.append(
            {
                "method": method,
                "budget": budget,
                "level": level,
                "n": len(clusters),
                "accuracy": accuracy,
                "accuracy_ci95": list(ci),
            }
        )
    return rows


def paired_differences(
    records: Iterable[dict[str, Any]], reference: str, *, seed: int = 0, draws: int = DRAWS
) -> list[dict[str, Any]]:
    """method − reference accuracy per N over the problems both ran, with a paired 95% interval.

    Rows: method, budget, difference, ci95 = [low, high], problems (clusters paired).
    """
    groups = _groups(records, "method", "budget")
    out = []
    for (method, budget), rs in groups.items():
        if method == reference or (reference, budget) not in groups:
            continue
        mine, theirs = _clusters(rs), _clusters(groups[(reference, budget)])
        shared = [k for k in mine if k in theirs and len(mine[k]) == len(theirs[k])]
        if not shared:
            continue
        counts = np.asarray([len(mine[k]) for k in shared], np.float64)
        sums = np.asarray([sum(mine[k]) - sum(theirs[k]) for k in shared])
        low, high = bootstrap_interval(sums, counts, seed=seed, draws=draws)
        out.append(
            {
                "method": method,
                "budget": budget,
                "difference": float(sums.sum() / counts.sum()),
                "ci95": [low, high],
                "problems": len(shared),
            }
        )
    return out


def flops_unit(values: Sequence[float]) -> tuple[float, str]:
    """(scale, name): the largest of PFLOPs, TFLOPs, GFLOPs in which the smallest value is ≥ 0.1."""
    low = min(values, default=0.0)
    for scale, name in ((1e15, "PFLOPs"), (1e12, "TFLOPs"), (1e9, "GFLOPs")):
        if low >= 0.1 * scale:
            return scale, name
    return 1.0, "FLOPs"


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Plain text: one line per (method, N), grouped by method, N ascending; accuracy with its
    95% interval, majority vote, pass@N, rollouts and FLOPs per problem."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    ordered = sorted(rows, key=lambda r: (methods.index(r["method"]), r["budget"]))
    scale, unit = flops_unit([r["flops"] for r in rows])
    width = max([22, *(len(m) + 2 for m in methods)])
    lines = [
        f"{'method':<{width}}{'N':>5}{'accuracy % (95% CI)':>22}{'majority %':>12}"
        f"{'pass@N %':>10}{'rollouts':>10}{unit:>10}"
    ]
    for r in ordered:
        low, high = r["accuracy_ci95"]
        accuracy = f"{100 * r['accuracy']:.1f} ({100 * low:.1f}–{100 * high:.1f})"
        lines.append(
            f"{r['method']:<{width}}{r['budget']:>5}{accuracy:>22}"
            f"{100 * r['majority_accuracy']:>12.1f}{100 * r['pass_at_n']:>10.1f}"
            f"{r['rollouts']:>10.0f}{r['flops'] / scale:>10.3g}"
        )
    lines.append(f"CI: {INTERVAL}")
    return "\n".join(lines)


def differences_table(differences: Sequence[dict[str, Any]], reference: str) -> str:
    """Plain text: each method's paired accuracy difference against `reference`, per N."""
    lines = [
        f"paired difference vs {reference} (accuracy points; 95% CI: the same problems resampled "
        "for both)"
    ]
    for d in differences:
        low, high = d["ci95"]
        lines.append(
            f"  {d['method']:<22} N={d['budget']:<4} {100 * d['difference']:+6.2f} "
            f"({100 * low:+.2f} to {100 * high:+.2f})"
        )
    return "\n".join(lines)


def write(
    out: Path,
    rows: list[dict[str, Any]],
    records: Sequence[dict[str, Any]],
    *,
    title: str,
    plots: bool,
    meta: dict[str, Any] | None = None,
) -> list[Path]:
    """Writes `out/summary.json` (meta, the interval method, rows, accuracy by level) and the
    plots (`simulations.plots.NAMES`), each atomically; plots not drawn this time (all of them
    when `plots` is False) are removed, so a reused folder never shows a stale figure.
    Returns the plot paths written."""
    from simulations import plots as plots_lib

    levels = by_level(records)
    summary = {**(meta or {}), "interval": INTERVAL, "rows": rows}
    if levels:
        summary["by_level"] = levels
    atomic_write(out / "summary.json", json.dumps(summary, indent=1))
    if not plots:
        plots_lib.remove(out)
        return []
    return plots_lib.write(out, rows, levels, title=title)
