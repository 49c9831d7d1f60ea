"""Accuracy–FLOPs frontiers of fixed-N and adaptive searches (dora_jax.adaptive), paired.

One compiled pooled search per world serves every point: the fixed-N engine (stopping off, cap 1:
`search_pooled` is then `vmap(search)` bit for bit) and every adaptive setting, for DORA and
REBASE (the rule index, N and the settings are runtime arguments). For a seed, every point runs on
the same problems with the same search keys, so differences are paired per problem.

Comparisons against the fixed-N frontier of the same rule (linear in log FLOPs between the two
fixed points that bracket the adaptive point):
- accuracy gained at equal budget: acc(adaptive) − acc_fixed(FLOPs(adaptive));
- budget saved at equal accuracy: 1 − FLOPs(adaptive) / FLOPs_fixed(acc(adaptive)).
95% intervals: a paired percentile bootstrap over problems (every point resampled together).

Worlds: "levels" is the paper-like world with problems drawn in MATH500's five levels (sizes
43 : 90 : 105 : 128 : 134, §4.1 / Fig. 4), level ℓ's p(root) ~ Beta with mean LEVEL_MEANS[ℓ]
(assumed, decreasing like Fig. 4's accuracies; not fitted). p(root) enters the world only through
`sample_problem`, so one compiled search serves every level.

A total budget against the per-round pool (`--totals`, levels world): the per-round pool's
frontier (θ swept, cap fixed) against total-budget points (θ fixed, R rollouts per problem swept)
of the same rule, compared as above (accuracy gained at the per-round frontier's FLOPs, FLOPs saved
at its accuracy, paired bootstrap 95%).

Run: `python -m simulations.adaptive_eval [--problems P] [--out docs/adaptive_frontier.png]`,
`python -m simulations.adaptive_eval --totals [--problems P] [--json docs/adaptive_total.json]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
import warnings
from typing import Any

import numpy as np

from dora_jax.adaptive import Adaptive
from dora_jax.montecarlo import (
    FRONTIER_METHODS,
    FRONTIER_WORLDS,
    Point,
    frontier_batch,
    frontier_search,
    level_problems,
    run_point,
)

__all__ = ["Point", "evaluate", "evaluate_totals", "level_problems", "main", "plot", "run_point"]

METHODS = FRONTIER_METHODS
WORLDS = FRONTIER_WORLDS
BOOTSTRAP = 2000
# The batch and the compiled search of a point (the same machinery as `adaptive-pareto`'s).
batch = frontier_batch
compiled = frontier_search


def _interp(x, xs, ys):
    """Linear interpolation (xs ascending), extrapolated linearly beyond the ends."""
    xs, ys = np.asarray(xs), np.asarray(ys)
    i = int(np.clip(np.searchsorted(xs, x) - 1, 0, len(xs) - 2))
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    return ys[i] + t * (ys[i + 1] - ys[i]), i, t


def compare(fixed: list[dict], adaptive: dict, rng) -> dict[str, Any]:
    """Accuracy gained at equal FLOPs and FLOPs saved at equal accuracy, with paired bootstrap
    95% intervals (fixed: the rule's fixed-N points in increasing N)."""

    def stats(idx):
        f_fixed = [np.log(f["flops"][idx].mean()) for f in fixed]
        a_fixed = [f["accuracy"][idx].mean() for f in fixed]
        f_a, a_a = np.log(adaptive["flops"][idx].mean()), adaptive["accuracy"][idx].mean()
        acc_at, _, _ = _interp(f_a, f_fixed, a_fixed)
        order = np.argsort(a_fixed, kind="stable")
        if len(set(np.round(np.asarray(a_fixed)[order], 12))) < len(order):
            log_f_at = np.nan
        else:
            log_f_at, _, _ = _interp(a_a, np.asarray(a_fixed)[order], np.asarray(f_fixed)[order])
        return a_a - acc_at, 1.0 - math.exp(f_a - log_f_at)

    p = adaptive["accuracy"].size
    gain, saved = stats(np.arange(p))
    draws = np.asarray([stats(rng.integers(0, p, p)) for _ in range(BOOTSTRAP)])
    with warnings.catch_warnings():
        # FLOPs saved is undefined (NaN) in a draw whose frontier ties in accuracy; in every
        # draw (tiny batches) its interval is NaN too, which is the answer, not a fault.
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        lo, hi = np.nanpercentile(draws, [2.5, 97.5], axis=0)
    return {
        "accuracy_gain": float(gain),
        "accuracy_gain_ci": [float(lo[0]), float(hi[0])],
        "flops_saved": float(saved),
        "flops_saved_ci": [float(lo[1]), float(hi[1])],
    }


def evaluate(
    problems_count: int, *, seed: int = 0, slots: int = 32, max_rounds: int = 24, worlds=WORLDS
) -> dict[str, Any]:
    fixed_budgets = (4, 8, 16)
    adaptive_points = [
        Adaptive(threshold=0.9, cap=1),
        Adaptive(threshold=0.9, cap=2),
    ]
    out: dict[str, Any] = {}
    rng = np.random.default_rng(seed)
    for name in worlds:
        start = time.perf_counter()
        config, problems, keys, levels = batch(name, seed, problems_count)
        fn = compiled(config, slots, max_rounds)
        rows: dict[str, Any] = {}
        for method in METHODS:
            fixed = [run_point(fn, problems, keys, Point(method, n)) for n in fixed_budgets]
            for n, f in zip(fixed_budgets, fixed, strict=True):
                rows[Point(method, n).label] = _row(f, levels)
            for budget in (8, 16):
                for a in adaptive_points:
                    if a.slots(budget) > slots:
                        continue
                    point = Point(method, budget, a)
                    got = run_point(fn, problems, keys, point)
                    rows[point.label] = {**_row(got, levels), **compare(fixed, got, rng)}
        out[name] = {"points": rows, "wall_s": time.perf_counter() - start}
    return out


TOTAL_THRESHOLD = 0.9
TOTAL_BUDGETS = (4, 8, 16)  # N of the per-round pool's frontier and of the fixed-N frontier
TOTALS = (40, 56, 72)  # R, rollouts per problem at N = 8 (fixed N = 8 spends ~75 in "levels")


def evaluate_totals(
    problems_count: int,
    *,
    seed: int = 0,
    budget: int = 8,
    cap: int = 2,
    slots: int = 32,
    max_rounds: int = 24,
    methods=METHODS,
) -> dict[str, Any]:
    """The total budget against the per-round pool in the levels world (module docstring): the
    per-round pool's frontier is θ = TOTAL_THRESHOLD, cap `cap` at N = 4, 8, 16; each total point
    (N = `budget`, the same θ and cap, R in TOTALS, with and without the last round to EOS) is
    compared with it and with the fixed-N frontier, at equal FLOPs."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    config, problems, keys, levels = batch("levels", seed, problems_count)
    fn = compiled(config, slots, max_rounds)
    rows: dict[str, Any] = {}
    for method in methods:
        fixed = [run_point(fn, problems, keys, Point(method, n)) for n in TOTAL_BUDGETS]
        pooled = []
        for n, got in zip(TOTAL_BUDGETS, fixed, strict=True):
            rows[Point(method, n).label] = _row(got, levels)
            point = Point(method, n, Adaptive(threshold=TOTAL_THRESHOLD, cap=cap))
            pooled.append(run_point(fn, problems, keys, point))
            rows[point.label] = {**_row(pooled[-1], levels), **compare(fixed, pooled[-1], rng)}
        for total, finish in itertools.product(TOTALS, (True, False)):
            a = Adaptive(threshold=TOTAL_THRESHOLD, cap=cap, total=total, finish=finish)
            point = Point(method, budget, a)
            got = run_point(fn, problems, keys, point)
            rows[point.label] = {
                **_row(got, levels),
                "ended_by_total": float((got["reason"] == 5).mean()),
                "against_per_round_pool": compare(pooled, got, rng),
                "against_fixed": compare(fixed, got, rng),
            }
    return {"levels": {"points": rows, "wall_s": time.perf_counter() - start}}


def _row(got: dict, levels) -> dict[str, Any]:
    row = {
        "accuracy": float(got["accuracy"].mean()),
        "flops": float(got["flops"].mean()),
        "rollouts": float(got["rollouts"].mean()),
        "stopped_early": float(np.isin(got["reason"], (3, 4)).mean()),
    }
    if levels is not None:
        row["per_level"] = {
            int(level): {
                "accuracy": float(got["accuracy"][levels == level].mean()),
                "rollouts": float(got["rollouts"][levels == level].mean()),
            }
            for level in np.unique(levels)
        }
    return row


def plot(found: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(found), figsize=(4.2 * len(found), 3.4), dpi=80)
    for ax, (name, world) in zip(np.atleast_1d(axes), found.items(), strict=True):
        for method, color in zip(METHODS, ("tab:red", "tab:blue"), strict=True):
            for kind, style in (("fixed", "o-"), ("cap=1", "s--"), ("cap=2", "^:")):
                pts = [
                    (r["flops"] / 1e12, 100 * r["accuracy"])
                    for label, r in world["points"].items()
                    if label.startswith(method + " ") and kind in label
                ]
                if pts:
                    x, y = zip(*sorted(pts), strict=True)
                    name_kind = "fixed N" if kind == "fixed" else f"adaptive θ=0.9 {kind}"
                    ax.plot(x, y, style, color=color, ms=4, label=f"{method} {name_kind}")
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("mean TFLOPs per problem")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("accuracy %")
    np.atleast_1d(axes)[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="PNG of the frontiers")
    parser.add_argument("--json", default=None, help="write the numbers here")
    parser.add_argument(
        "--totals", action="store_true", help="the total budget against the per-round pool"
    )
    args = parser.parse_args(argv)
    if args.problems < 2:
        print("adaptive_eval: error: --problems must be >= 2", file=sys.stderr)
        return 2
    if args.totals and args.out:
        print("adaptive_eval: error: --out plots the frontiers, not --totals", file=sys.stderr)
        return 2
    found = (evaluate_totals if args.totals else evaluate)(args.problems, seed=args.seed)
    text = json.dumps(found, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(text)
    if args.out:
        plot(found, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
