"""Microbenchmark for an issue-12 proposal: batch-invariant sums over E without cumsum.

The world takes its sums over the embedding axis from a cumulative sum (`_sum_last`) because
XLA's reduce adds in a batch-shape-dependent order. A fixed pairwise tree of slice-adds (E a
power of 2) is also elementwise-only, hence batch invariant, and vectorizes. This times the
world's `_orthogonal_unit` against the tree version on P × N slots and checks that both give
one problem's rows bit for bit alone and inside the batch.

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


def tree_sum(x):
    """Σ over the last axis (a power of 2) in a fixed pairwise order."""
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    return x[..., 0]


def orthogonal_unit_tree(z, u):
    x = z - tree_sum(z * u)[..., None] * u
    return x / jnp.sqrt(tree_sum(x * x))[..., None]


def main(args: argparse.Namespace) -> None:
    k1, k2 = jax.random.split(jax.random.key(0))
    shape = (args.problems, args.budget, args.embed_dim)
    z = jax.random.normal(k1, shape)
    u = jax.random.normal(k2, shape)
    u = u / jnp.linalg.norm(u, axis=-1, keepdims=True)
    variants = {"cumsum (world)": _orthogonal_unit, "pairwise tree": orthogonal_unit_tree}
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
            f"{name:<16}{1e9 * statistics.median(times[name]) / slots:8.1f} ns/slot   "
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
    if args.embed_dim < 2 or args.embed_dim & (args.embed_dim - 1):
        parser.error("--embed-dim must be a power of 2, >= 2")
    return args


if __name__ == "__main__":
    main(parse())
