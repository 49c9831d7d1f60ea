"""One-step diagnosis of the `learned` rule on real search states (issue 15).

States: one world's problems searched with DORA with N slots for `--rounds` rounds
(`simulations.train`'s state maker, so the truth — each candidate's node and its PRM score — is
known). On every state with two or more survivors, each method's allocation of N: dora, learned
(κ hidden and given), bayes and the direction-blind optimum (`optimal`) with the world's κ, and
the exact Eq. 7 optimum with the TRUE directions. Printed per method: the one-step expected
failure E Π_d (1 − p_d)^{B_d} with the true directions and κ (Eqs. 5–7; lower is better), the
candidates and true directions given rollouts, and the share of N on the state's largest
direction. A method can be near the optimum in the first column and still spread its rollouts
over copies of one direction (the last column), which the multi-round search pays for.

Run: `python -m simulations.learned_diagnose [--world paraphrase] [--budget 16] [--problems 200]
[--rounds 6] [--checkpoint shipped] [--seed 123]`.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

from dora_jax import directions as directions_lib
from dora_jax import learned, rules
from dora_jax.optimal import optimal_counts
from simulations import train

__all__ = ["allocations", "main"]


def allocations(key, states, budget: int, kappa: float, checkpoint: str) -> dict[str, np.ndarray]:
    """Each method's Int[M, K] allocation of `budget` on the states (module doc)."""
    scores, emb, valid, dirs, w = states
    m = scores.shape[0]
    n = jnp.full((m,), budget, jnp.int32)
    kap = jnp.float32(kappa)

    def net(known: float | None):
        def one(s, n_, v, e):
            return learned.learned(
                None, s, n_, mask=v, embeddings=e, checkpoint=checkpoint, kappa=known
            )

        return jax.jit(jax.vmap(one))(scores, n, valid, emb)

    def bayes(k, s, n_, v, e):
        return directions_lib.bayes_allocation(k, s, n_, mask=v, embeddings=e, kappa=kap)

    def dora(s, n_, v, e):
        return rules.dora(None, s, n_, mask=v, embeddings=e)

    def alone(s, n_, v):
        return optimal_counts(s, n_, kap, v, jnp.arange(s.shape[0]))

    def true_dirs(w_, n_, v, d):
        return optimal_counts(w_, n_, kap, v, d)

    out = {
        "dora": jax.jit(jax.vmap(dora))(scores, n, valid, emb),
        "learned (κ hidden)": net(None),
        "learned (κ given)": net(kappa),
        "bayes": jax.jit(jax.vmap(bayes))(jax.random.split(key, m), scores, n, valid, emb),
        "optimal (no directions)": jax.jit(jax.vmap(alone))(scores, n, valid),
        "optimum, true directions": jax.jit(jax.vmap(true_dirs))(w, n, valid, dirs),
    }
    return {name: np.asarray(c) for name, c in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", default="paraphrase")
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--checkpoint", default=learned.SHIPPED)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args(argv)
    worlds = {**train.TRAINING_WORLDS, **train.HELD_OUT_WORLDS}
    if args.world not in worlds:
        print(f"unknown world {args.world!r}; choose from {', '.join(worlds)}", file=sys.stderr)
        return 2
    if min(args.budget - 1, args.problems, args.rounds, args.seed + 1) < 1:
        print("--budget must be >= 2, --problems and --rounds >= 1, --seed >= 0", file=sys.stderr)
        return 2
    try:
        learned.load_checkpoint(args.checkpoint)
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return 2
    config = worlds[args.world]
    k_states, k_bayes = jax.random.split(jax.random.key(args.seed))
    found = train._world_states(k_states, config, args.budget, args.problems, args.rounds)
    flat = [np.asarray(x).reshape(-1, *x.shape[2:]) for x in found]
    keep = flat[2].sum(axis=1) >= 2
    scores, emb, valid, dirs, w = (jnp.asarray(x[keep]) for x in flat)
    counts = allocations(
        k_bayes, (scores, emb, valid, dirs, w), args.budget, config.kappa, args.checkpoint
    )
    kappa = jnp.float32(config.kappa)

    def failure(c, w_, d, v):
        return train.direction_failure(c.astype(jnp.float32), 1.0, w_, d, v, kappa)

    fail = jax.jit(jax.vmap(failure))
    d_np, v_np = np.asarray(dirs), np.asarray(valid)
    m = int(keep.sum())
    per_state = [len(set(d_np[i][v_np[i]])) for i in range(m)]
    print(
        f"{args.world}, N = {args.budget}, κ = {config.kappa}: {m} states of a {args.budget}-slot "
        f"DORA search ({args.problems} problems, rounds 0–{args.rounds - 1}); "
        f"{v_np.sum(axis=1).mean():.1f} candidates on {np.mean(per_state):.1f} true directions "
        "per state"
    )
    head = ("E failure", "candidates", "directions", "top share")
    print(f"{'method':26s} " + " ".join(f"{h:>11s}" for h in head))
    for name, c in counts.items():
        f = float(jnp.mean(fail(jnp.asarray(c), w, dirs, valid)))
        used = (c > 0).sum(axis=1).mean()
        used_dirs = np.mean([len(set(d_np[i][c[i] > 0])) for i in range(m)])
        top = np.mean([np.bincount(d_np[i], weights=c[i]).max() / args.budget for i in range(m)])
        print(f"{name:26s} {f:11.4f} {used:11.2f} {used_dirs:11.2f} {top:11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
