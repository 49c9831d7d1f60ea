"""Microbenchmark: batch-invariant sums over E, by cumsum or by a pairwise tree (the world's).

XLA's reduce adds in a batch-shape-dependent order, so the world's sums over the embedding axis
(`_sum_last`) must add in a fixed order. A cumulative sum (reduce_window) does; so does a fixed
pairwise tree of slice-adds, which is elementwise-only and vectorizes (the world's choice). This
times the world's `_orthogonal_unit` against the same function with cumsum sums on P × N slots
and checks that both give one problem's rows bit for bit alone and inside the batch.

    python benchmarks/sum_order.py [--problems 2000] [--budget 64] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

# --- the world's private part (to move with the counter hash at merge) ----------------------
from dora_jax.world import _orthogonal_unit


def cumsum_sum(x):
    """Σ over the last axis in index order, from a cumulative sum."""
    return jnp.cumsum(x, axis=-1)[..., -1]


def orthogonal_unit_cumsum(z, u):
    x = z - cumsum_sum(z * u)[..., None] * u
    return x / jnp.sqrt(cumsum_sum(x * x))[..., None]


def main(args: argparse.Namespace) -> None:
    k1, k2 = jax.random.split(jax.random.key(0))
    shape = (args.problems, args.budget, args.embed_dim)
    z = jax.random.normal(k1, shape)
    u = jax.random.normal(k2, shape)
    u = u / jnp.linalg.norm(u, axis=-1, keepdims=True)
    variants = {"cumsum": orthogonal_unit_cumsum, "pairwise tree (world)": _orthogonal_unit}
    batched = {name: jax.jit(jax.vmap(f)) for name, f in variants.items()}
    for f in batched.values():
        jax.block_until_ready(f(z, u))
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, f in batched.items():
            start = time.perf_counter()
            jax.block_until_ready(f(z, u))
            times[name].append(time.perf_counter() - start)
    slots = args.problems * args.budget
    i = args.problems // 2
    for name, f in variants.items():
        alone = jax.jit(f)(z[i], u[i])
        same = bool(jnp.all(alone == batched[name](z, u)[i]))
        print(
            f"{name:<24}{1e9 * statistics.median(times[name]) / slots:8.1f} ns/slot   "
            f"batch-invariant: {same}"
        )


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    if min(args.problems, args.budget, args.repeats) < 1:
        parser.error("--problems, --budget and --repeats must be >= 1")
    if args.embed_dim < 2:
        parser.error("--embed-dim must be >= 2")
    return args


if __name__ == "__main__":
    main(parse())
