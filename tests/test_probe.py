"""Calibration records from the synthetic world (dora_jax.probe).

Statistical checks use a dispersion ratio that is 1 under the paper's model: for a record
(w, m, c), E[(c − m·w)² | w] = m·w(1 − w)·(1 + (m − 1)/(κ + 1)) when p | w ~ Beta(κw, κ(1 − w))
and c | p ~ Binomial(m, p); the ratio Σ(c − m·w)² / Σ m·w(1 − w)(1 + (m − 1)/(κ + 1)) over
records. Tolerance: 4 standard errors (delta method; two-sided false-failure rate ≈ 6e-5 per
assertion under a normal approximation).
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

import dora_jax.world as W
from dora_jax import search as S
from dora_jax.probe import probe

P, K, DEPTH, M = 300, 16, 2, 8


@functools.cache
def _records(preset: str, seed: int = 0):
    world = S.SyntheticWorld(W.preset(preset))
    keys = jax.random.split(jax.random.key(seed), P)
    problems = jax.vmap(world.sample_problem)(keys)
    run = jax.jit(jax.vmap(lambda k, p: probe(k, p, world, candidates=K, depth=DEPTH, rollouts=M)))
    return jax.tree.map(np.asarray, run(jax.random.split(jax.random.key(seed + 1), P), problems))


def _dispersion(records, kappa):
    m = records.mask
    w, c, n = records.score[m].astype(np.float64), records.correct[m], records.rollouts[m]
    x = (c - n * w) ** 2
    y = n * w * (1 - w) * (1 + (n - 1) / (kappa + 1))
    ratio = x.sum() / y.sum()  # a ratio of sums: scores near 0 or 1 do not blow it up
    se = np.std(x - ratio * y, ddof=1) / (np.sqrt(x.size) * y.mean())  # delta method
    return ratio, se, (c - n * w) / n


def test_records_are_exactly_the_papers_model_without_redundancy():
    r = _records("independent")
    assert r.mask.sum() > 0.9 * P * K  # α = ∞: every candidate is its own node
    assert (r.correct <= r.rollouts).all() and (r.rollouts[r.mask] == M).all()
    mean, se, resid = _dispersion(r, W.preset("independent").kappa)
    assert abs(mean - 1) < 4 * se, (mean, se)
    # E[c/m − w] = 0 up to truncation at the token cap (which only lowers c)
    assert abs(resid.mean()) < 4 * resid.std(ddof=1) / np.sqrt(resid.size) + 0.01


def test_redundancy_over_disperses_the_records():
    """With α = 3 copies share children, so c is over-dispersed: κ_eff < κ (documented)."""
    r = _records("paper-like")
    mean, se, _ = _dispersion(r, W.preset("paper-like").kappa)
    assert mean - 1 > 4 * se, (mean, se)


def test_repeated_nodes_are_kept_once_and_masked_records_are_neutral():
    r = _records("redundant")
    world = W.preset("redundant")
    assert world.alpha < np.inf
    kept = r.mask.sum(axis=1)
    assert (kept < K).any()  # α = 1: copies of one node exist and are dropped
    assert (r.rollouts[~r.mask] == 0).all() and (r.correct[~r.mask] == 0).all()
    assert np.isnan(r.truth[~r.mask]).all() and not np.isnan(r.truth[r.mask]).any()


def test_same_key_same_records():
    world = S.SyntheticWorld(W.preset("paper-like"))
    problem = world.sample_problem(jax.random.key(5))
    run = jax.jit(lambda k: probe(k, problem, world, candidates=8, depth=1, rollouts=4))
    a, b = run(jax.random.key(9)), run(jax.random.key(9))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(candidates=0, depth=1, rollouts=4), "candidates"),
        (dict(candidates=4, depth=-1, rollouts=4), "depth"),
        (dict(candidates=4, depth=1, rollouts=0), "rollouts"),
    ],
)
def test_bad_arguments(kwargs, match):
    world = S.SyntheticWorld(W.preset("paper-like"))
    problem = world.sample_problem(jax.random.key(0))
    with pytest.raises(ValueError, match=match):
        probe(jax.random.key(0), problem, world, **kwargs)
