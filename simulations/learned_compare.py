"""Named methods (e.g. `learned` checkpoints) against one reference, paired, on chosen seeds.

Two uses (issue 15): choosing a training setting on a VALIDATION set — training-distribution
worlds on seeds kept apart from the final evaluation's (`--first-seed`, e.g. 1000; the
evaluation `simulations.learned_eval` uses seeds 0, 1, …) — and adding problem-seeds to the
evaluation cells an earlier run left undecided, with only the methods those cells compare.

Every method runs on the same problems and search keys per seed (`simulations.runner`), so
differences are paired per problem-seed. Per (world, N): accuracy and method − reference with
the 95% cluster bootstrap of `simulations.report.paired_differences`. Pooled over every cell:
the mean of the per-problem differences, its interval from the same bootstrap with a cluster =
one (world, seed, problem) across all its N (a problem's runs at several N are not independent).

The selection rule (`verdict`), declared before the imitation-weight sweep was run: a method
replaces the reference only if its pooled difference has a 95% interval above 0 and no cell's
interval lies below 0; among several such, the one with the largest pooled difference.
Otherwise the reference is kept ("no clear winner"). The sweep's validation set, declared with
it: the training worlds paper-like, paraphrase and hard-corner at N ∈ {16, 64}, 100 problems ×
seeds 1000 and 1001 (the evaluation uses seeds 0 and 1; training draws its problems from its own
key), every arm trained with `dora train`'s settings but the weight (800 steps, seed 0),
reference the shipped weight 0.5.

Run: `python -m simulations.learned_compare --method NAME=SPEC ... --reference NAME
[--worlds W,...] [--budgets 16,64] [--problems P] [--seeds S] [--first-seed F]`; SPEC is a
rule name (`dora`, `bayes`) or `learned:PATH` (that checkpoint, κ unknown; PATH may name a
packaged checkpoint, `shipped` or `imitation`). `bayes` and `optimal` get the world's κ.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dora_jax import learned
from dora_jax import world as world_lib
from simulations import report, runner
from simulations.spec import ExperimentSpec, SpecError, parse_rule
from simulations.train import HELD_OUT_WORLDS, TRAINING_WORLDS

WORLDS: dict[str, world_lib.WorldConfig] = {**TRAINING_WORLDS, **HELD_OUT_WORLDS}


def rule_of(spec: str, config: world_lib.WorldConfig) -> Any:
    """The runner's method item for SPEC (module doc)."""
    if spec.startswith("learned:"):
        return {"method": "learned", "checkpoint": spec.split(":", 1)[1]}
    if spec in ("bayes", "optimal"):
        return {"method": spec, "kappa": float(config.kappa)}
    return spec


def run_world(
    world: str,
    methods: dict[str, str],
    budgets: tuple[int, ...],
    problems: int,
    seeds: int,
    first_seed: int,
    max_rounds: int,
) -> list[dict[str, Any]]:
    """Runner records of every method on one world, `method` set to the method's NAME."""
    config = WORLDS[world]
    rules = [parse_rule(rule_of(s, config)) for s in methods.values()]
    spec = ExperimentSpec(
        world=config,
        world_name=world,
        rules=tuple(rules),
        budgets=budgets,
        problems=problems,
        seeds=seeds,
        max_rounds=max_rounds,
    )
    names = {rule.label: name for rule, name in zip(rules, methods, strict=True)}
    records = runner.run(spec, first_seed=first_seed)
    for r in records:
        r["method"] = names[r["method"]]
    return records


def cells(records: list[dict[str, Any]], reference: str) -> list[dict[str, Any]]:
    """Per (world, method, N): accuracy and method − reference with its 95% interval."""
    out = []
    for world in dict.fromkeys(r["world"] for r in records):
        mine = [r for r in records if r["world"] == world]
        accuracy = {(s["method"], s["budget"]): s["accuracy"] for s in report.summarize(mine)}
        for d in report.paired_differences(mine, reference):
            out.append(
                {
                    "world": world,
                    **d,
                    "accuracy": accuracy[(d["method"], d["budget"])],
                    "reference_accuracy": accuracy[(reference, d["budget"])],
                }
            )
    return out


def pooled(records: list[dict[str, Any]], method: str, reference: str) -> dict[str, Any]:
    """method − reference over every cell, clusters = (world, seed, problem) (module doc)."""
    sums: dict[tuple, float] = {}
    counts: dict[tuple, int] = {}
    by_key = {(r["world"], r["method"], r["budget"], r["seed"]): r for r in records}
    for (world, name, budget, seed), r in by_key.items():
        if name != method or (world, reference, budget, seed) not in by_key:
            continue
        a = report.per_problem_bits(r)
        b = report.per_problem_bits(by_key[(world, reference, budget, seed)])
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            k = (world, seed, i)
            sums[k] = sums.get(k, 0.0) + x - y
            counts[k] = counts.get(k, 0) + 1
    keys = sorted(sums)
    s = np.asarray([sums[k] for k in keys])
    c = np.asarray([counts[k] for k in keys], np.float64)
    low, high = report.bootstrap_interval(s, c)
    return {"method": method, "difference": float(s.sum() / c.sum()), "ci95": [low, high]}


def verdict(pools: list[dict[str, Any]], per_cell: list[dict[str, Any]], reference: str) -> str:
    """The declared selection rule (module doc): the chosen method's name, or the reference."""
    winners = [
        p
        for p in pools
        if p["ci95"][0] > 0
        and not any(c["ci95"][1] < 0 for c in per_cell if c["method"] == p["method"])
    ]
    if not winners:
        return reference
    return max(winners, key=lambda p: p["difference"])["method"]


def _pair(item: str) -> tuple[str, str]:
    name, sep, spec = item.partition("=")
    if not sep or not name or not spec:
        raise ValueError(f"--method takes NAME=SPEC, got {item!r}")
    checkpoint = spec.split(":", 1)[1] if spec.startswith("learned:") else None
    if checkpoint is not None and not learned.resolve_checkpoint(checkpoint).is_file():
        raise ValueError(f"checkpoint not found: {checkpoint}")
    return name, spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", action="append", required=True, help="NAME=SPEC (repeat)")
    parser.add_argument(
        "--reference",
        action="append",
        required=True,
        help="a NAME differences are taken to (repeat for several; --select uses the first)",
    )
    parser.add_argument("--worlds", default="paper-like,paraphrase")
    parser.add_argument("--budgets", default="16,64")
    parser.add_argument("--problems", type=int, default=100, help="problems per seed")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=1000, help="seeds first … first+S−1")
    parser.add_argument("--max-rounds", type=int, default=40)
    parser.add_argument("--select", action="store_true", help="apply the selection rule")
    parser.add_argument("--out", type=Path, default=None, help="write the records (JSON lines)")
    parser.add_argument(
        "--records",
        type=Path,
        action="append",
        default=None,
        help="read records written by --out instead of running (repeat: e.g. one per world)",
    )
    args = parser.parse_args(argv)
    try:
        methods = dict(_pair(m) for m in args.method)
        budgets = tuple(int(b) for b in args.budgets.split(","))
        worlds = args.worlds.split(",")
        bad = [w for w in worlds if w not in WORLDS]
        if bad:
            raise ValueError(f"unknown world {bad[0]!r}; choose from {', '.join(WORLDS)}")
        missing = [r for r in args.reference if r not in methods]
        if missing:
            raise ValueError(f"--reference {missing[0]!r} is not a --method NAME")
        if min(args.problems, args.seeds, args.max_rounds, *budgets) < 1 or args.first_seed < 0:
            raise ValueError("--problems, --seeds, --max-rounds, --budgets >= 1, --first-seed >= 0")
        for w in worlds:  # a bad SPEC is one line before any search
            for s in methods.values():
                parse_rule(rule_of(s, WORLDS[w]))
    except (ValueError, SpecError) as error:
        print(str(error), file=sys.stderr)
        return 2
    records: list[dict[str, Any]] = []
    for path in args.records or []:
        records += [json.loads(line) for line in path.read_text().splitlines() if line]
    for world in [] if args.records else worlds:
        start = time.perf_counter()
        records += run_world(
            world, methods, budgets, args.problems, args.seeds, args.first_seed, args.max_rounds
        )
        print(
            f"{world}: {args.problems} problems × seeds {args.first_seed}…"
            f"{args.first_seed + args.seeds - 1}, {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    if args.out is not None:
        args.out.write_text("".join(json.dumps(runner.public_record(r)) + "\n" for r in records))
    for i, reference in enumerate(args.reference):
        per_cell = cells(records, reference)
        head = f"| world | N | problem-seeds | method | accuracy | {reference} | difference [95%] |"
        print(head)
        print("|---|---|---|---|---|---|---|")
        for c in per_cell:
            low, high = c["ci95"]
            print(
                f"| {c['world']} | {c['budget']} | {c['problems']} | {c['method']} | "
                f"{100 * c['accuracy']:.2f} | {100 * c['reference_accuracy']:.2f} | "
                f"{100 * c['difference']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}] |"
            )
        pools = [pooled(records, m, reference) for m in methods if m != reference]
        for p in pools:
            low, high = p["ci95"]
            print(
                f"pooled {p['method']} − {reference}: {100 * p['difference']:+.2f} "
                f"[{100 * low:+.2f}, {100 * high:+.2f}] points"
            )
        if args.select and i == 0:
            print(f"selected (declared rule): {verdict(pools, per_cell, reference)}")
    print(f"difference in points; {report.INTERVAL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
