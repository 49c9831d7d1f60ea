"""Benchmark: trace + compile seconds of one search program, `jax.vmap(search)` vs `search_pool`.

Each repeat builds a fresh `jax.jit` for each engine path and times `.lower(...).compile()`
(tracing, lowering and XLA's compilation), interleaved (vmap, pool, vmap, pool, ...), after
`jax.clear_caches()` so no repeat reuses a trace; medians over --repeats. The floor here is the
vmap path: the pool adds its refill and output scatter to the same round.

    python benchmarks/compile_time.py                       # REBASE, N = 64, P = 2000
    python benchmarks/compile_time.py --rule dora --repeats 1
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import jax

from dora_jax import world as world_lib
from dora_jax.registry import RULES
from dora_jax.search import SearchConfig, SyntheticWorld, search, search_pool


def _program(path: str, world, config, lanes: int):
    if path == "pool":
        return jax.jit(lambda k, p: search_pool(k, p, world, config, lanes=lanes))
    return jax.jit(jax.vmap(lambda k, p: search(k, p, world, config)))


def main(args: argparse.Namespace) -> dict[str, float]:
    world = SyntheticWorld(world_lib.preset(args.preset))
    config = SearchConfig.make(args.rule, args.budget)
    keys = jax.random.split(jax.random.key(0), args.problems)
    problems = jax.vmap(world.sample_problem)(keys)
    lanes = max(1, math.ceil(args.problems / 8))
    seconds: dict[str, list[float]] = {"vmap": [], "pool": []}
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        for path in seconds:
            jax.clear_caches()
            start = time.perf_counter()
            _program(path, world, config, lanes).lower(keys, problems).compile()
            seconds[path].append(time.perf_counter() - start)
    medians = {path: statistics.median(s) for path, s in seconds.items()}
    print(
        f"{args.rule}, N = {args.budget}, P = {args.problems} (pool: {lanes} lanes), trace + "
        f"compile, medians of {args.repeats} interleaved, load {load:.1f}→"
        f"{os.getloadavg()[0]:.1f}: vmap {medians['vmap']:.1f} s, pool {medians['pool']:.1f} s "
        f"({medians['pool'] - medians['vmap']:+.1f} s)"
    )
    return medians


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", default="rebase", choices=sorted(RULES))
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", default="paper-like")
    args = parser.parse_args(argv)
    if min(args.budget, args.problems, args.repeats) < 1:
        parser.error("--budget, --problems and --repeats must be >= 1")
    return args


if __name__ == "__main__":
    main(parse())
