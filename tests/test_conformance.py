"""One conformance suite for every allocation rule.

Every rule in the registry (`dora_jax.RULES`) runs with its defaults; VARIANTS adds
non-default hyperparameters worth checking (a new rule joins by its registration alone, and may
add a line here). Each rule must: jit; vmap over problems; return
non-negative int32 counts that sum to exactly N with 0 on masked candidates; be deterministic per
key; be permutation-equivariant (up to the documented lowest-index tie-breaking); not recompile on
a second call with new values (new scores, mask, embeddings, budget); survive degenerate inputs.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dora_jax

VARIANTS = [
    ("beam_search", {"beam_width": 3}),
    ("rebase", {"rounding": "round_half_even_then_cycle"}),
    ("dora", {"similarity_temperature": 0.1}),
    ("dora", {"prefilter": "rebase_round", "rounding": "round_half_even_then_cycle"}),
    ("optimal", {"kappa": 0.01, "temperature": 0.1}),
    ("optimal", {"kappa": 1e4}),
    ("bayes", {"kappa": 15.0}),
    ("bayes", {"kappa": 0.5, "merge_cosine": 0.95, "num_samples": 4}),
]


def _cases(registry, variants):
    """Each registered rule with its defaults, then the variants (in registry order)."""
    return [
        case
        for name in registry
        for case in [(name, {}), *((m, hp) for m, hp in variants if m == name)]
    ]


RULES = _cases(dora_jax.RULES, VARIANTS)
IDS = [m + "".join(f"-{k}={v}" for k, v in hp.items()) for m, hp in RULES]
K, E = 12, 6


def test_the_suite_covers_every_registered_rule():
    assert {m for m, _ in RULES} == set(dora_jax.RULES) == set(dora_jax.METHODS)
    assert {m for m, _ in VARIANTS} <= set(dora_jax.RULES)  # no stale variant
    # Control: a rule registered later joins the cases by its registration alone.
    fresh = {**dora_jax.RULES, "fresh": dora_jax.rule_info("oracle")}
    assert ("fresh", {}) in _cases(fresh, VARIANTS)


def _problem(rng: np.random.Generator, k: int = K, *, dirs: int = 4):
    """Scores in (0, 1) (valid for every rule), clustered embeddings, a mask with ≥ 1 valid."""
    scores = rng.uniform(0.05, 0.95, size=k).astype(np.float32)
    centers = rng.normal(size=(dirs, E))
    members = rng.integers(0, dirs, size=k)
    emb = (centers[members] + 0.01 * rng.normal(size=(k, E))).astype(np.float32)
    mask = rng.random(k) < 0.75
    mask[rng.integers(k)] = True
    return scores, emb, mask


def _rule(method, hp):
    return functools.partial(dora_jax.allocate, method, **hp)


def _check_counts(counts, budget, mask):
    counts = np.asarray(counts)
    assert counts.dtype == np.int32
    assert (counts >= 0).all()
    assert (counts[~np.asarray(mask)] == 0).all()
    assert counts.sum() == budget


@pytest.mark.parametrize(("method", "hp"), RULES, ids=IDS)
def test_budget_mask_and_jit_agree_with_eager(method, hp):
    rng = np.random.default_rng(0)
    rule = _rule(method, hp)
    jitted = jax.jit(lambda s, n, m, e: rule(s, n, mask=m, embeddings=e))
    for budget in (1, 2, 7, 16, 64, 257):
        scores, emb, mask = _problem(rng)
        eager = rule(scores, budget, mask=mask, embeddings=emb)
        _check_counts(eager, budget, mask)
        np.testing.assert_array_equal(jitted(scores, jnp.int32(budget), mask, emb), eager)


@pytest.mark.parametrize(("method", "hp"), RULES, ids=IDS)
def test_vmap_over_problems_matches_one_at_a_time(method, hp):
    rng = np.random.default_rng(1)
    rule = _rule(method, hp)
    problems = [_problem(rng) for _ in range(5)]
    scores, emb, mask = (np.stack(x) for x in zip(*problems, strict=True))
    batched = jax.jit(jax.vmap(lambda s, m, e: rule(s, 32, mask=m, embeddings=e)))
    out = batched(scores, mask, emb)
    for i in range(5):
        np.testing.assert_array_equal(out[i], rule(scores[i], 32, mask=mask[i], embeddings=emb[i]))


@pytest.mark.parametrize(("method", "hp"), RULES, ids=IDS)
def test_no_recompilation_for_new_values(method, hp):
    rng = np.random.default_rng(2)
    traces = []

    def counted(s, n, m, e):
        traces.append(1)
        return dora_jax.allocate(method, s, n, mask=m, embeddings=e, **hp)

    jitted = jax.jit(counted)
    for budget in (16, 33, 64):
        scores, emb, mask = _problem(rng)
        jitted(scores, jnp.int32(budget), mask, emb)
    assert len(traces) == 1


@pytest.mark.parametrize(("method", "hp"), RULES, ids=IDS)
def test_deterministic_per_key(method, hp):
    rule = _rule(method, hp)
    scores = jnp.full((K,), 0.5, jnp.float32)  # all tied: the key decides every tie
    emb = jnp.eye(K, E, dtype=jnp.float32)
    a = rule(scores, 7, key=jax.random.key(3), embeddings=emb)
    b = rule(scores, 7, key=jax.random.key(3), embeddings=emb)
    np.testing.assert_array_equal(a, b)
    _check_counts(a, 7, np.ones(K, bool))


@pytest.mark.parametrize(("method", "hp"), RULES, ids=IDS)
def test_permutation_equivariant(method, hp):
    """allocate(x[π])= allocate(x)[π] when no ties arise (distinct scores and remainders).

    Temperature sampling with N not divisible by K_v has tied shares by construction (the
    lowest indices get the extras), so there only the multiset of counts is permutation-invariant.
    DVTS's groups are positional, so they are permuted with the candidates. The reference
    code's round-then-cycle repair is order-dependent by construction (the cycled list starts at
    the lowest index), so for it only the pre-rounding shares are checked.
    """
    rng = np.random.default_rng(4)
    for trial in range(6):
        scores, emb, mask = _problem(rng)
        perm = rng.permutation(K)
        extra = dict(hp)
        permuted = dict(hp)
        if method == "dvts":
            groups = rng.integers(0, K, size=K).astype(np.int32)
            extra["groups"], permuted["groups"] = groups, groups[perm]
        budget = 16 + trial
        base = np.asarray(
            dora_jax.allocate(method, scores, budget, mask=mask, embeddings=emb, **extra)
        )
        moved = np.asarray(
            dora_jax.allocate(
                method, scores[perm], budget, mask=mask[perm], embeddings=emb[perm], **permuted
            )
        )
        if hp.get("rounding") == "round_half_even_then_cycle":
            needs_n = {"budget": budget} if method == "dora" else {}
            shares = functools.partial(dora_jax.allocation_weights, method, **needs_n)
            np.testing.assert_allclose(
                shares(scores[perm], mask=mask[perm], embeddings=emb[perm], **permuted),
                np.asarray(shares(scores, mask=mask, embeddings=emb, **extra))[perm],
                rtol=1e-5,
                atol=1e-7,
            )
        elif method == "temperature_sampling":
            np.testing.assert_array_equal(np.sort(moved), np.sort(base[perm]))
        else:
            np.testing.assert_array_equal(moved, base[perm])


@pytest.mark.parametrize(("method", "hp"), RULES, ids=IDS)
def test_degenerate_inputs(method, hp):
    rule = _rule(method, hp)
    one = rule(jnp.array([0.3], jnp.float32), 5, embeddings=jnp.ones((1, E), jnp.float32))
    np.testing.assert_array_equal(one, [5])  # K = 1
    scores, emb, mask = _problem(np.random.default_rng(5))
    _check_counts(rule(scores, 1, mask=mask, embeddings=emb), 1, mask)  # N = 1
    equal = jnp.full((K,), 0.5, jnp.float32)
    _check_counts(rule(equal, 24, embeddings=emb), 24, np.ones(K, bool))  # all scores equal
    huge = jnp.full((K,), 0.01, jnp.float32).at[5].set(0.999)
    counts = np.asarray(rule(huge, 24, embeddings=emb))  # one dominant score
    _check_counts(counts, 24, np.ones(K, bool))
    if method in ("rebase", "dora"):
        assert counts[5] == 24
    if method == "beam_search":
        assert counts[5] == hp.get("beam_width", 4) + (24 % (24 // hp.get("beam_width", 4)) > 0)


@pytest.mark.parametrize("method", ["rebase", "dora"])
def test_small_temperature_is_argmax_without_overflow(method):
    scores = jnp.array([0.2, 0.9, 0.5, 0.89], jnp.float32)
    emb = jnp.eye(4, E, dtype=jnp.float32)
    for temperature in (1e-3, 1e-6, 1e-30):
        counts = dora_jax.allocate(method, scores, 13, embeddings=emb, temperature=temperature)
        np.testing.assert_array_equal(counts, [0, 13, 0, 0])
    tiny_ts = dora_jax.allocate("dora", scores, 13, embeddings=emb, similarity_temperature=1e-30)
    _check_counts(tiny_ts, 13, np.ones(4, bool))


@pytest.mark.parametrize(("method", "hp"), RULES, ids=IDS)
def test_nan_score_under_jit_is_masked(method, hp):
    """Eagerly a NaN raises; under jit it cannot, and the candidate gets no share (documented)."""
    scores, emb, mask = _problem(np.random.default_rng(6))
    mask[:] = True
    nan_scores = scores.copy()
    nan_scores[3] = np.nan
    rule = _rule(method, hp)
    with pytest.raises(ValueError, match="NaN"):
        rule(nan_scores, 16, embeddings=emb)
    jitted = jax.jit(lambda s, e: rule(s, 16, embeddings=e))
    masked = mask.copy()
    masked[3] = False
    np.testing.assert_array_equal(
        jitted(nan_scores, emb), rule(scores, 16, mask=masked, embeddings=emb)
    )


@pytest.mark.parametrize(("method", "hp"), RULES, ids=IDS)
def test_all_masked_under_jit_gives_zeros(method, hp):
    scores, emb, _ = _problem(np.random.default_rng(7))
    none = np.zeros(K, bool)
    with pytest.raises(ValueError, match="masked"):
        dora_jax.allocate(method, scores, 8, mask=none, embeddings=emb, **hp)
    jitted = jax.jit(lambda s, m, e: dora_jax.allocate(method, s, 8, mask=m, embeddings=e, **hp))
    np.testing.assert_array_equal(jitted(scores, none, emb), np.zeros(K, np.int32))


# --- property-based invariants -----------------------------------------------------------


def _jitted(method, hp):
    return jax.jit(lambda s, n, m, e: dora_jax.allocate(method, s, n, mask=m, embeddings=e, **hp))


_JITTED = {name: _jitted(method, hp) for name, (method, hp) in zip(IDS, RULES, strict=True)}


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(
        st.sampled_from([0.05, 0.1, 0.5, 0.5, 0.7, 0.9, 0.9, 0.99]) | st.floats(0.0, 1.0),
        min_size=K,
        max_size=K,
    ),
    valid=st.lists(st.booleans(), min_size=K, max_size=K),
    budget=st.integers(1, 300),
    seed=st.integers(0, 2**16),
)
def test_invariants_hold_for_arbitrary_inputs(scores, valid, budget, seed):
    """Σ = N, ≥ 0, masked → 0 for ties, zeros, ones and any budget; every rule."""
    scores = np.asarray(scores, np.float32)
    mask = np.asarray(valid)
    mask[seed % K] = True
    emb = np.random.default_rng(seed).normal(size=(K, E)).astype(np.float32)
    emb[1] = emb[0]  # an exact duplicate
    for fn in _JITTED.values():
        _check_counts(fn(scores, jnp.int32(budget), mask, emb), budget, mask)


def test_random_tie_breaking_is_uniform():
    """With a key, tied candidates get the extra rollouts uniformly at random.

    K = 4 equal scores, N = 5: one candidate gets 2. Over n = 4000 keys each candidate's count of
    "got 2" is Binomial(n, 1/4); we allow k = 5 standard errors (two-sided false-failure rate
    ≈ 5.7e-7 per candidate, < 3e-6 for the test).
    """
    n, k_se = 4000, 5.0
    keys = jax.random.split(jax.random.key(0), n)
    rule = jax.jit(
        jax.vmap(lambda key: dora_jax.allocate("rebase", jnp.full((4,), 0.5), 5, key=key))
    )
    counts = np.asarray(rule(keys))
    assert (counts.sum(axis=1) == 5).all()
    hits = (counts == 2).sum(axis=0)
    se = np.sqrt(n * 0.25 * 0.75)
    assert (np.abs(hits - n / 4) < k_se * se).all(), hits


def test_dvts_groups_with_absent_ids_keep_the_budget():
    """Group ids need not be contiguous (the engine's subtrees die): Σ = N still."""
    rng = np.random.default_rng(8)
    for _ in range(20):
        scores, _, mask = _problem(rng)
        groups = rng.choice([1, 5, 6, 11], size=K).astype(np.int32)
        for budget in (4, 9, 64):
            counts = dora_jax.allocate("dvts", scores, budget, mask=mask, groups=groups)
            _check_counts(counts, budget, mask)
            leaders = np.flatnonzero(np.asarray(counts))
            assert len(set(groups[leaders])) == len(leaders)  # one leader per group
