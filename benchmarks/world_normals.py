"""Benchmark: the world's vectors with each normal computed once (`world._once`), before vs after.

"before" is the same code with `world._once` the identity, so XLA fuses the counter hash and the
inverse-CDF polynomial of every normal into each fusion that reads it (the pairwise sums of
`_orthogonal_unit`); "after" is the code as it is. Each variant is compiled on its own; the runs
alternate (before, after, before, ...) and the medians over --repeats are reported, with the load
average around them. On a shared machine the process CPU time (all XLA threads) is steadier than
the wall time; both speedups are printed.

  allocation   one `jax.jit(jax.vmap(dora))` call over P problems of K candidates (clustered
               embeddings, E = 32, ~75% kept), µs per problem, K ∈ --ks: DORA's own per-call
               cost (the world is not involved, so before = after: a control for the timing);
  world        `embed` and `expand` on P × N mid-search slots (after 3 REBASE rounds), ns/slot;
  search       the whole DORA search (`jax.jit(jax.vmap(search))`, P problems, N rollouts):
               compile seconds and rollout-steps/s (rollout-steps from its ledger).

The floor of a whole search (random words the law consumes) is `benchmarks/floor.py --rules dora`.

    python benchmarks/world_normals.py                    # K ∈ {16, 64, 256}, P = 2000, N = 64
    python benchmarks/world_normals.py --slots 2048 --problems 20 --budget 16 --repeats 1  # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from dora_jax import world as world_lib
from dora_jax.registry import RULES
from dora_jax.search import SearchConfig, SyntheticWorld, init_state, search, search_round

VARIANTS = ("before", "after")


@contextlib.contextmanager
def variant(name: str):
    """Module settings of a variant while its functions are traced."""
    once = world_lib._once
    if name == "before":
        world_lib._once = lambda z, u: z
    try:
        yield
    finally:
        world_lib._once = once


def _compile(name: str, fn, *args):
    with variant(name):
        start = time.perf_counter()
        # A fresh function per variant: jit's trace cache is keyed on the function object.
        compiled = jax.jit(lambda *a: fn(*a)).lower(*args).compile()
        return compiled, time.perf_counter() - start


def _allocation_inputs(key, problems: int, k: int, e: int):
    k_score, k_center, k_member, k_noise, k_keep = jax.random.split(key, 5)
    scores = jax.random.uniform(k_score, (problems, k))
    centers = jax.random.normal(k_center, (problems, 8, e))
    members = jax.random.randint(k_member, (problems, k), 0, 8)
    emb = jnp.take_along_axis(centers, members[..., None], axis=1)
    emb = emb + 0.05 * jax.random.normal(k_noise, emb.shape)
    mask = jax.random.uniform(k_keep, (problems, k)) < 0.75
    return scores, emb, mask.at[:, 0].set(True)


def _cases(args):
    """name → (unit count for the rate, {variant: (compiled, compile s)}, inputs)."""
    cases = {}
    for k in args.ks if "allocate" in args.parts else ():
        p = max(1, args.slots // k)
        inputs = _allocation_inputs(jax.random.key(args.seed), p, k, args.embedding_dim)

        def dora(s, e, m, k=k):
            return RULES["dora"].allocate(None, s, k, mask=m, embeddings=e)

        fns = {v: _compile(v, jax.vmap(dora), *inputs) for v in VARIANTS}
        cases[f"allocate dora K={k} (µs/problem)"] = (p / 1e6, fns, inputs)

    config = world_lib.preset(args.preset)
    world = SyntheticWorld(config)
    p, n = args.problems, args.budget
    keys = jax.random.split(jax.random.key(args.seed), (p, 2))
    problems = jax.jit(jax.vmap(world.sample_problem))(keys[:, 0])
    rebase = SearchConfig.make("rebase", n)

    def advance(key, problem):
        state = init_state(key, problem, world, rebase)
        for _ in range(3):
            state = search_round(state, problem, world, rebase)
        return state

    slots = jax.jit(jax.vmap(advance))(keys[:, 1], problems).slots
    part_keys = jax.random.split(jax.random.key(args.seed + 1), p)
    for part in ("embed", "expand") if "world" in args.parts else ():
        part_fn = getattr(world_lib, part)
        fn = jax.vmap(lambda key, s, f=part_fn: f(key, None, s, config))
        fns = {v: _compile(v, fn, part_keys, slots) for v in VARIANTS}
        cases[f"world {part} P={p} N={n} (ns/slot)"] = (p * n / 1e9, fns, (part_keys, slots))

    if "search" not in args.parts:
        return cases
    dora_config = SearchConfig.make("dora", n)
    fn = jax.vmap(lambda key, problem: search(key, problem, world, dora_config))
    fns = {v: _compile(v, fn, keys[:, 1], problems) for v in VARIANTS}
    cases[f"search dora P={p} N={n} (steps/s)"] = (None, fns, (keys[:, 1], problems))
    return cases


def main(args: argparse.Namespace) -> dict:
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}; medians of {args.repeats} "
        "interleaved runs (before, after, ...)"
    )
    cases = _cases(args)
    times = {name: {v: [] for v in VARIANTS} for name in cases}
    cpu = {name: {v: [] for v in VARIANTS} for name in cases}
    outputs = {}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name, (_, fns, inputs) in cases.items():
            for v in VARIANTS:
                start, start_cpu = time.perf_counter(), time.process_time()
                out = jax.block_until_ready(fns[v][0](*inputs))
                times[name][v].append(time.perf_counter() - start)
                cpu[name][v].append(time.process_time() - start_cpu)
                outputs[name, v] = out
    load_after = os.getloadavg()[0]

    print(
        f"{'case':<40}{'before':>12}{'after':>12}{'speedup':>9}{'cpu speedup':>12}"
        f"{'compile s b/a':>16}  same"
    )
    report, notes = {}, []
    for name, (unit, fns, _) in cases.items():
        t = {v: statistics.median(times[name][v]) for v in VARIANTS}
        if unit is None:  # a search: rollout-steps/s
            steps = {v: int(jnp.sum(outputs[name, v].ledger.rollouts)) for v in VARIANTS}
            value = {v: steps[v] / t[v] for v in VARIANTS}
            acc = {v: np.asarray(outputs[name, v].accuracy, np.float64) for v in VARIANTS}
            equal = float(np.mean(acc["before"] == acc["after"]))
            same = bool(equal == 1.0)
            row = [f"{value[v]:>12,.0f}" for v in VARIANTS]
            notes.append(
                f"{name}: accuracy {acc['before'].mean():.4f} before, {acc['after'].mean():.4f} "
                f"after; the same outcome on {equal:.1%} of the problems"
            )
        else:
            value = {v: t[v] / unit for v in VARIANTS}
            a, b = (jax.tree.leaves(outputs[name, v]) for v in VARIANTS)
            same = all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
            row = [f"{value[v]:>12.1f}" for v in VARIANTS]
        speedup = t["before"] / t["after"]
        cpu_speedup = statistics.median(cpu[name]["before"]) / statistics.median(cpu[name]["after"])
        compile_s = f"{fns['before'][1]:.1f} / {fns['after'][1]:.1f}"
        print(
            f"{name:<40}{row[0]}{row[1]}{speedup:>8.2f}x{cpu_speedup:>11.2f}x"
            f"{compile_s:>16}  {same}"
        )
        report[name] = {
            "before": value["before"],
            "after": value["after"],
            "cpu_speedup": cpu_speedup,
            "same": same,
        }
    for note in notes:
        print(note)
    print(f"load average {load_before:.1f} before, {load_after:.1f} after the timed runs")
    print(
        "same: the outputs of the two variants are equal (allocation counts; embed/expand: every "
        "leaf bit for bit; search: every problem's accuracy)"
    )
    return report


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="allocate,world,search", help="what to time")
    parser.add_argument("--ks", default="16,64,256", help="candidate counts K for the allocation")
    parser.add_argument("--slots", type=int, default=128_000, help="P·K of each allocation call")
    parser.add_argument("--problems", type=int, default=2000, help="P of the world and search")
    parser.add_argument("--budget", type=int, default=64, help="N of the world and search")
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--preset", default="paper-like")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        args.ks = [int(x) for x in args.ks.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--ks must be comma-separated integers, got {args.ks!r}")
    for name in ("slots", "problems", "budget", "embedding_dim", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    args.parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    unknown = sorted(args.parts - {"allocate", "world", "search"})
    if unknown or not args.parts:
        parser.error(f"--parts takes allocate, world, search; got {sorted(args.parts)}")
    if not args.ks or min(args.ks) < 1:
        parser.error("--ks must list positive integers")
    return args


if __name__ == "__main__":
    main(parse())
