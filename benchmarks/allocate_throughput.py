"""Benchmark: one jitted, vmapped `allocate` over P problems × K candidates, per method.

Prints, for each rule, the compile time and the best-of-R wall time of one batched call (and
checks that every row sums to N). Performance claims live here, not in timed tests.

    python benchmarks/allocate_throughput.py                       # 10,000 × 64, N = 64
    python benchmarks/allocate_throughput.py --problems 100 --repeats 1   # smoke
    python benchmarks/allocate_throughput.py --problems 200 --k 256 --budget 256 \
        --rules dora,bayes,learned          # the per-call cost of README's learned section
    python benchmarks/allocate_throughput.py --problems 200 --k 256 --budget 256 \
        --rules dora,learned --rounds 4      # the same, interleaved: the ratio
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import dora_jax

RULES = {
    "temperature_sampling": {},
    "beam_search": {},
    "dvts": {},
    "rebase": {},
    "dora": {},
    "dora(reference)": {"prefilter": "rebase_round", "rounding": "round_half_even_then_cycle"},
    "optimal": {"kappa": 1.0},
    "bayes": {},
    "learned": {},
}


def _inputs(key, problems: int, k: int, e: int):
    k_score, k_center, k_member, k_noise = jax.random.split(key, 4)
    scores = jax.random.uniform(k_score, (problems, k))
    centers = jax.random.normal(k_center, (problems, 8, e))
    members = jax.random.randint(k_member, (problems, k), 0, 8)
    emb = jnp.take_along_axis(centers, members[..., None], axis=1)
    emb = emb + 0.05 * jax.random.normal(k_noise, emb.shape)
    return scores, emb


def _timed(fn, *args, repeats: int):
    """(compile s, best call wall s, best call CPU s): CPU is the process's user + sys over all
    its threads, the fairer measure on a shared machine (a busy neighbour stretches wall time)."""
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    best, best_cpu = np.inf, np.inf
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return first - best, best, best_cpu


def main(args: argparse.Namespace) -> list[dict]:
    scores, emb = _inputs(jax.random.key(args.seed), args.problems, args.k, args.embedding_dim)
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}: P = {args.problems} problems, "
        f"K = {args.k}, N = {args.budget}, E = {args.embedding_dim}, best of {args.repeats}"
        + (f" per round, {args.rounds} interleaved rounds" if args.rounds > 1 else "")
    )
    batched, compile_s, call_s, cpu_s = {}, {}, {}, {}
    for name, hp in RULES.items():
        if args.rules is not None and name not in args.rules:
            continue
        method = name.split("(")[0]
        rule = functools.partial(dora_jax.allocate, method, **hp)
        batched[name] = jax.jit(
            jax.vmap(lambda s, e, rule=rule: rule(s, args.budget, embeddings=e))
        )
        compile_s[name], call_s[name], cpu_s[name] = _timed(
            batched[name], scores, emb, repeats=args.repeats
        )
        counts = np.asarray(batched[name](scores, emb))
        assert (counts.sum(axis=1) == args.budget).all(), name
    # Later rounds visit the rules in turn, so a slow spell of a shared machine hits them all.
    for _ in range(args.rounds - 1):
        for name, fn in batched.items():
            _, wall, cpu = _timed(fn, scores, emb, repeats=args.repeats)
            call_s[name], cpu_s[name] = min(call_s[name], wall), min(cpu_s[name], cpu)
    print(
        f"{'rule':<22}{'compile s':>10}{'call ms':>10}{'cpu ms':>10}{'µs/problem':>12}"
        f"{'problems/s':>14}"
    )
    rows = []
    for name in batched:
        per = call_s[name] / args.problems
        print(
            f"{name:<22}{compile_s[name]:>10.2f}{call_s[name] * 1e3:>10.1f}"
            f"{cpu_s[name] * 1e3:>10.1f}{per * 1e6:>12.2f}{1 / per:>14,.0f}"
        )
        rows.append(
            {
                "rule": name,
                "compile_s": compile_s[name],
                "call_s": call_s[name],
                "cpu_s": cpu_s[name],
            }
        )
    if len(rows) > 1:
        first = rows[0]
        print(
            "call time / "
            + first["rule"]
            + ": "
            + ", ".join(f"{r['rule']} {r['call_s'] / first['call_s']:.2f}" for r in rows[1:])
        )
        print(
            "cpu time / "
            + first["rule"]
            + ": "
            + ", ".join(f"{r['rule']} {r['cpu_s'] / first['cpu_s']:.2f}" for r in rows[1:])
        )
    print(
        "load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
    )
    return rows


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (best over)")
    parser.add_argument("--rules", default=None, help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    if args.rules is not None:
        args.rules = [x.strip() for x in args.rules.split(",") if x.strip()]
        unknown = sorted(set(args.rules) - set(RULES))
        if unknown:
            parser.error(f"unknown rule {unknown[0]!r}; choose from {', '.join(RULES)}")
    for name in ("problems", "k", "budget", "embedding_dim", "repeats", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


if __name__ == "__main__":
    main(parse())
