"""Benchmark: the compiled search engine vs the slow NumPy/Python reference doing the same work.

Both run the paper's Algorithm 1 on the same synthetic problems with the same keys (they produce
identical results: tests/test_search.py). Throughput is simulated rollouts (steps generated) per
second, measured in one run; the reference runs on the first few problems only (it is slow), and
its rate is compared per rollout.

    python benchmarks/search_throughput.py                      # P = 1000, N = 64, rebase + dora
    python benchmarks/search_throughput.py --problems 16 --reference-problems 1 --budget 8
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import time

import jax
import jax.numpy as jnp

from dora_jax import world as world_lib
from dora_jax.search import Rule, SearchConfig, SyntheticWorld, search

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _reference():
    spec = importlib.util.spec_from_file_location(
        "reference_search", ROOT / "tests" / "reference_search.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(args: argparse.Namespace) -> list[dict]:
    config = world_lib.preset(args.preset)
    world = SyntheticWorld(config)
    keys = jax.random.split(jax.random.key(args.seed), (args.problems, 2))
    problems = jax.jit(jax.vmap(world.sample_problem))(keys[:, 0])
    search_keys = keys[:, 1]
    reference = _reference()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} device(s)): "
        f"world {args.preset}, N = {args.budget}, engine on {args.problems} problems, "
        f"reference on {args.reference_problems}"
    )
    print(
        f"{'rule':<10}{'compile s':>10}{'engine rollouts/s':>19}{'reference rollouts/s':>22}"
        f"{'ratio':>9}"
    )
    rows = []
    for method in args.methods.split(","):
        search_config = SearchConfig(args.budget, (Rule.make(method),))
        fn = jax.jit(jax.vmap(lambda k, p, c=search_config: search(k, p, world, c)))
        start = time.perf_counter()
        compiled = fn.lower(search_keys, problems).compile()
        compile_s = time.perf_counter() - start
        jax.block_until_ready(compiled(search_keys, problems))
        start = time.perf_counter()
        result = jax.block_until_ready(compiled(search_keys, problems))
        engine_s = time.perf_counter() - start
        engine_rate = int(jnp.sum(result.ledger.rollouts)) / engine_s

        # The reference: one warm-up problem (its jitted world calls compile), then timed ones.
        one = jax.tree.map(lambda x: x[0], problems)
        reference.reference_search(search_keys[0], one, config, method, args.budget)
        rollouts, start = 0, time.perf_counter()
        for i in range(args.reference_problems):
            problem = jax.tree.map(lambda x, i=i: x[i], problems)
            out = reference.reference_search(search_keys[i], problem, config, method, args.budget)
            rollouts += out["ledger"]["rollouts"]
        reference_rate = rollouts / (time.perf_counter() - start)
        ratio = engine_rate / reference_rate
        print(
            f"{method:<10}{compile_s:>10.1f}{engine_rate:>19,.0f}{reference_rate:>22,.0f}"
            f"{ratio:>8,.0f}×"
        )
        rows.append({"method": method, "engine": engine_rate, "reference": reference_rate})
    return rows


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper-like")
    parser.add_argument("--methods", default="rebase,dora")
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--problems", type=int, default=1000)
    parser.add_argument("--reference-problems", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.budget, args.problems, args.reference_problems) < 1:
        parser.error("--budget, --problems and --reference-problems must be >= 1")
    if args.reference_problems > args.problems:
        parser.error("--reference-problems cannot exceed --problems")
    try:
        world_lib.preset(args.preset)
    except ValueError as error:
        parser.error(str(error))
    return args


if __name__ == "__main__":
    main(parse())
