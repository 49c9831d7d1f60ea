"""Engine wiring of the rules that read more than scores: `oracle` (the world's ground truth)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dora_jax.world as W
from dora_jax import search as S


def test_oracle_follows_the_true_best_slot():
    world = S.SyntheticWorld(W.preset("paper-like"))
    config = S.SearchConfig.make("oracle", 8, max_rounds=12)
    for seed in range(4):
        problem = world.sample_problem(jax.random.key(seed))
        state = S.init_state(jax.random.key(100 + seed), problem, world, config)
        k_expand = state.keys[0][0]
        slots, step = world.expand(k_expand, problem, state.slots, jnp.bool_(False))
        new = S.search_round(state, problem, world, config)
        counts = np.asarray(new.trace.allocation[0])
        survivors = np.asarray(~step.finished)
        if new.done:
            continue
        p = np.where(survivors, np.asarray(world.truth(slots)), -np.inf)
        assert counts.sum() == 8 and np.count_nonzero(counts) == 1
        assert p[np.argmax(counts)] == p.max()


def test_oracle_runs_batched_and_keeps_the_budget():
    world = S.SyntheticWorld(W.preset("paper-like"))
    config = S.SearchConfig.make("oracle", 8, max_rounds=12)
    keys = jax.random.split(jax.random.key(0), 6)
    problems = jax.vmap(world.sample_problem)(keys)
    run = jax.jit(jax.vmap(lambda k, p: S.search(k, p, world, config)))
    result = run(keys, problems)
    alloc = np.asarray(result.trace.allocation)
    assert set(np.unique(alloc.sum(axis=-1))) <= {0, 8}
    assert (np.count_nonzero(alloc, axis=-1) <= 1).all()


@dataclasses.dataclass(frozen=True)
class _NoTruth:
    inner: S.SyntheticWorld

    def __getattr__(self, name):
        if name == "truth":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_oracle_needs_a_world_with_truth():
    world = _NoTruth(S.SyntheticWorld(W.preset("paper-like")))
    config = S.SearchConfig.make("oracle", 8, max_rounds=4)
    problem = world.sample_problem(jax.random.key(0))
    with pytest.raises(ValueError, match="knows the truth"):
        S.search(jax.random.key(1), problem, world, config)


def test_bayes_runs_in_the_engine_and_reads_embeddings():
    world = S.SyntheticWorld(W.preset("paraphrase"))
    config = S.SearchConfig.make("bayes", 16, max_rounds=10, kappa=15.0)
    assert config.rules[0].uses_embeddings and config.rules[0].refills
    keys = jax.random.split(jax.random.key(1), 6)
    problems = jax.vmap(world.sample_problem)(keys)
    result = jax.jit(jax.vmap(lambda k, p: S.search(k, p, world, config)))(keys, problems)
    alloc = np.asarray(result.trace.allocation)
    assert set(np.unique(alloc.sum(axis=-1))) <= {0, 16}
    assert (np.asarray(result.ledger.embed_calls) > 0).all()
    assert (np.asarray(result.num_finished) >= 1).all()
