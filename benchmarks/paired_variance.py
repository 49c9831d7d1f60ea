"""Common random numbers, measured: the variance of a DORA − REBASE accuracy difference when both
methods draw the same samples vs when each draws its own.

On the toy backend (backends.toy), each problem's search under seed s draws sample j of a prefix
as the j-th draw of a seed that hashes the prefix and the problem's round keys (backends.
host_world), so REBASE and DORA run with the same seed share every sample of every prefix both
reach ("shared"). Running DORA under another seed (s + OFFSET) gives it samples independent of
REBASE's ("independent": what two separate runs, one per method, give). Per problem the
difference d = acc_DORA − acc_REBASE; the estimate of the mean difference has variance
var(d) / (problems × seeds), so var_independent / var_shared is how many times more problems an
independent-samples comparison needs for the same precision.

Control: REBASE against itself. Shared, d is 0 on every problem (the same samples, the same
search); independent, var(d) > 0: the part of the variance that common samples remove.

    python benchmarks/paired_variance.py                      # 200 MATH500 problems, N = 8, 2 seeds
    python benchmarks/paired_variance.py --problems 20 --seeds 1
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from backends import datasets
from backends.host_world import HostWorld
from backends.toy import ToyBackend
from dora_jax.search import Rule, SearchConfig, search_batch
from simulations.bench import problem_key

OFFSET = 1000  # the independent run's seed: s + OFFSET (never one of the shared seeds)
BOOTSTRAP = 2000  # resamples of problems for the ratio's interval


def _accuracy(world: HostWorld, problems, config: SearchConfig, rule: int, seed: int):
    """Per-problem (accuracy of the PRM-weighted vote, share of finished solutions right)."""
    world.reset()
    keys = jnp.stack([problem_key(seed, p.id) for p in problems])
    result = search_batch(keys, world.problem_ids(), world, config, rule=rule)
    world.reset()
    return np.asarray(result.accuracy, float), np.asarray(result.correct_fraction, float)


def _stats(d: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(d.mean()),
        "var": float(d.var(ddof=1)),
        "se": float(d.std(ddof=1) / np.sqrt(len(d))),
    }


def main(args: argparse.Namespace) -> dict:
    problems = datasets.load_dataset(args.dataset, limit=args.problems)
    world = HostWorld(ToyBackend.for_problems(problems), problems)
    config = SearchConfig(args.budget, (Rule.make("rebase"), Rule.make("dora")), args.max_rounds)
    runs: dict[tuple[str, str], list[np.ndarray]] = {}
    for seed in range(args.seeds):
        rebase = _accuracy(world, problems, config, 0, seed)
        pairs = {
            ("dora-rebase", "shared"): _accuracy(world, problems, config, 1, seed),
            ("dora-rebase", "independent"): _accuracy(world, problems, config, 1, seed + OFFSET),
            ("rebase-rebase", "shared"): _accuracy(world, problems, config, 0, seed),
            ("rebase-rebase", "independent"): _accuracy(world, problems, config, 0, seed + OFFSET),
        }
        for name, other in pairs.items():
            for metric in (0, 1):
                runs.setdefault((*name, str(metric)), []).append(other[metric] - rebase[metric])
    n = len(problems) * args.seeds
    print(
        f"toy backend, {args.dataset}: {len(problems)} problems × {args.seeds} seed(s) = {n} "
        f"paired differences per design, N = {args.budget}, T_max = {args.max_rounds}"
    )
    print(f"{'difference':<15}{'metric':<18}{'design':<13}{'mean':>8}{'SE':>8}{'var(d)':>9}")
    out: dict = {"problems": len(problems), "seeds": args.seeds, "budget": args.budget, "rows": []}
    rng = np.random.default_rng(args.seed)
    for name in ("dora-rebase", "rebase-rebase"):
        for metric, label in (("0", "accuracy"), ("1", "correct fraction")):
            d = {
                design: np.concatenate(runs[(name, design, metric)])
                for design in ("shared", "independent")
            }
            for design, values in d.items():
                s = _stats(values)
                out["rows"].append({"difference": name, "metric": label, "design": design, **s})
                print(
                    f"{name:<15}{label:<18}{design:<13}{s['mean']:>8.3f}{s['se']:>8.3f}{s['var']:>9.4f}"
                )
            if d["shared"].var() > 0:
                # Variance ratio with a bootstrap over problems (pairs resampled together).
                idx = rng.integers(0, n, (BOOTSTRAP, n))
                with np.errstate(divide="ignore", invalid="ignore"):  # a resample's var 0: ∞
                    ratios = d["independent"][idx].var(axis=1, ddof=1) / d["shared"][idx].var(
                        axis=1, ddof=1
                    )
                ratio = d["independent"].var(ddof=1) / d["shared"].var(ddof=1)
                low, high = np.nanpercentile(ratios, [2.5, 97.5], method="nearest")  # 0/0 dropped
                out["rows"][-1]["ratio"] = {"value": ratio, "ci95": [low, high]}
                print(
                    f"{'':<15}{label:<18}var(independent) / var(shared) = {ratio:.2f} "
                    f"(95% bootstrap {low:.2f}–{high:.2f})"
                )
    if args.json:
        print(json.dumps(out))
    return out


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="math500")
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--max-rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    jax.config.update("jax_platforms", "cpu")
    main(parse())
