"""Calibration records from any `World`: Monte Carlo rollouts below scored partial solutions.

A *record* is one partial solution (a candidate) with its PRM score w, from which m rollouts
were run to the end, c of them correct — the data the κ-calibration model reads (Math-Shepherd
style labels). `probe` makes such records from a world that implements the engine's `World`
protocol: K copies of the root take `depth` steps (each on its own, as temperature sampling),
the surviving candidates are scored, and each is continued by m rollouts in one forced final
round (`expand(..., final=True)`: every copy writes its own completion to EOS).

What the records mean in the synthetic world (dora_jax.world): a completion below node v is
correct with probability exactly p(v) (the martingale; minus truncation at the token cap), and
in `prm_mode="beta"` p(v) | w(v) ~ Beta(κw, κ(1 − w)) holds exactly. The m rollouts of one
candidate are independent given p(v) when the world has no redundancy (α = ∞: every copy opens
its own child), so c ~ BetaBinomial(m, κw, κ(1 − w)) exactly; with finite α, copies that pick
the same child share its p and c is over-dispersed — a calibration then measures an *effective*
κ below the world's. Candidates that sit on the same node (copies of one partial solution) are
kept once (the first), so records of one problem are distinct nodes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray


class Records(NamedTuple):
    """Calibration records of one problem (leading axis K; add [P] with vmap)."""

    score: Float[Array, " K"]  # PRM score w of the candidate
    rollouts: Int[Array, " K"]  # m: rollouts run from it to the end
    correct: Int[Array, " K"]  # c: of which correct
    mask: Bool[Array, " K"]  # a distinct, unfinished candidate
    truth: Float[Array, " K"]  # the true p where the world knows it (NaN otherwise)


def probe(
    key: PRNGKeyArray,
    problem: Any,
    world: Any,
    *,
    candidates: int,
    depth: int,
    rollouts: int,
) -> Records:
    """Records for one problem: K candidates at `depth` steps, m rollouts each.

    Args:
      key: the probe's randomness.
      problem: a problem of `world`.
      world: a `dora_jax.search.World` (e.g. `SyntheticWorld(config)`); static.
      candidates: K ≥ 1 copies of the root stepped `depth` times.
      depth: steps before scoring (≥ 1; 0 scores the root: one record).
      rollouts: m ≥ 1 completions per candidate.

    Returns:
      Records with leading axis K; `mask` drops candidates that finished before `depth` and
      repeated nodes.
    """
    for name, value, low in (("candidates", candidates, 1), ("depth", depth, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not isinstance(rollouts, int) or isinstance(rollouts, bool) or rollouts < 1:
        raise ValueError(f"rollouts must be an integer >= 1, got {rollouts!r}")
    k = candidates
    keys = jax.random.split(key, depth + 2)
    slots = world.init(problem, k)
    alive = jnp.ones((k,), bool)
    ids = jnp.zeros((k,), jnp.int32)

    def step(t, carry):
        slots, alive, _ = carry
        slots, out = world.expand(keys[t], problem, slots, jnp.bool_(False))
        return slots, alive & ~out.finished, out.direction.astype(jnp.int32)

    slots, alive, ids = jax.lax.fori_loop(0, depth, step, (slots, alive, ids))
    # Keep the first candidate on each node.
    same = (ids[:, None] == ids[None, :]) & alive[None, :]
    earlier = jnp.arange(k)[None, :] < jnp.arange(k)[:, None]
    mask = alive & ~jnp.any(same & earlier, axis=1)

    score = world.score(keys[depth], problem, slots).astype(jnp.float32)
    copies = jax.tree.map(lambda x: jnp.repeat(x, rollouts, axis=0), slots)
    _, out = world.expand(keys[depth + 1], problem, copies, jnp.bool_(True))
    correct = (out.correct & out.finished).reshape(k, rollouts).sum(axis=1).astype(jnp.int32)
    truth = (
        world.truth(slots).astype(jnp.float32)
        if hasattr(world, "truth")
        else jnp.full((k,), jnp.nan, jnp.float32)
    )
    return Records(
        score=jnp.where(mask, score, 0.5),
        rollouts=jnp.where(mask, rollouts, 0).astype(jnp.int32),
        correct=jnp.where(mask, correct, 0),
        mask=mask,
        truth=jnp.where(mask, truth, jnp.nan),
    )
