"""The direction posterior (dora_jax.directions) and the Bayes allocation over it.

Recovery is measured by the adjusted Rand index (ARI) of the MAP assignment against the true
directions; the allocation is checked against the exact direction-aware optimum of
`dora_jax.optimal_allocation` (for hard, certain clusters the two must agree) and against a
brute-force oracle over all allocations of a small budget.

Compilation dominates the run time, so almost every test uses K = 24 candidates (smaller
problems are padded with masked candidates) and the same few jitted functions.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dora_jax
from dora_jax import directions
from dora_jax import world as world_lib

K, E = 24, 32
# ARI of the MAP assignment required on every seed of the clear-cluster test.
MIN_ARI = 0.95


def adjusted_rand_index(a, b) -> float:
    """Hubert–Arabie ARI of two labelings (1 when both are the same partition)."""
    _, a = np.unique(np.asarray(a), return_inverse=True)
    _, b = np.unique(np.asarray(b), return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)

    def pairs(x):
        return (x * (x - 1) / 2).sum()

    index = pairs(table)
    rows, cols, total = pairs(table.sum(1)), pairs(table.sum(0)), len(a) * (len(a) - 1) / 2
    expected = rows * cols / total
    top = (rows + cols) / 2
    return 1.0 if top == expected else float((index - expected) / (top - expected))


def test_adjusted_rand_index_reference_values():
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7]) == 1.0
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
    # The value sklearn.metrics.adjusted_rand_score gives for these labelings.
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(0.24242424)


# --- problems -------------------------------------------------------------------------------


def paraphrases(rng, nodes, ids, within):
    """The world's embedding model: e = (u + s·n)/√(1 + s²), n ⊥ u random, s² = 1/c_w − 1, so
    two copies of one node have cosine c_w in expectation (s.d. ≈ (1 − c_w)/√(E − 1))."""
    u = nodes[ids]
    noise = rng.normal(size=u.shape)
    noise -= (noise * u).sum(1, keepdims=True) * u
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    s = math.sqrt(1 / within - 1)
    return ((u + s * noise) / math.sqrt(1 + s * s)).astype(np.float32)


def clustered(rng, sizes, *, within=0.9):
    """Clusters of the given sizes around random unit centres (cross-cosine ≈ 0 ± 1/√E)."""
    ids = np.repeat(np.arange(len(sizes)), sizes)
    centres = rng.normal(size=(len(sizes), E))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return paraphrases(rng, centres, ids, within), ids


def at_cosine(rng, cosine):
    """Two random unit vectors at exactly the given cosine."""
    a, b = np.linalg.qr(rng.normal(size=(E, 2)))[0].T
    return np.stack([a, cosine * a + math.sqrt(1 - cosine**2) * b])


def random_sizes(rng, k, largest):
    sizes = []
    while sum(sizes) < k:
        sizes.append(int(min(rng.integers(1, largest + 1), k - sum(sizes))))
    return np.array(sizes)


def pad(scores, emb, k=K):
    """Pads a problem to k candidates with masked ones (which take no part)."""
    n = len(scores)
    mask = np.arange(k) < n
    scores = np.concatenate([scores, np.full(k - n, 0.5)]).astype(np.float32)
    emb = np.concatenate([emb, np.zeros((k - n, E))]).astype(np.float32)
    return scores, emb, mask


def hard_problem(rng, sizes):
    """Hard clusters (cosine 0.999 within, ≈ 0 across) with distinct direction scores."""
    emb, ids = clustered(rng, sizes, within=0.999)
    w_dir = rng.permutation(np.linspace(0.05, 0.95, len(sizes)))
    return emb, ids, w_dir[ids].astype(np.float32)


def uncertain_problem(rng):
    """Clusters at within-cosine 0.86 ≈ the merge cosine: a genuinely uncertain posterior."""
    emb, _ = clustered(rng, random_sizes(rng, K, 5), within=0.86)
    scores = np.round(rng.uniform(0.2, 0.8, size=K), 1).astype(np.float32)
    return scores, emb, np.ones(K, bool)


# --- the jitted functions under test (compiled once per shape) --------------------------------


@functools.cache
def posterior_fn():
    return jax.jit(lambda s, e, m: directions.direction_posterior(s, e, mask=m))


@functools.cache
def map_batch_fn():
    def one(scores, emb, mask):
        return directions.map_directions(directions.direction_posterior(scores, emb, mask=mask))

    return jax.jit(jax.vmap(one))


def bayes_rule(key, scores, budget, mask, emb, kappa):
    return directions.bayes_allocation(key, scores, budget, mask=mask, embeddings=emb, kappa=kappa)


@functools.cache
def bayes_fn():
    """With a key: the default S = 16 posterior samples."""
    return jax.jit(bayes_rule)


@functools.cache
def bayes_map_fn():
    """Without a key: the MAP assignment."""
    return jax.jit(functools.partial(bayes_rule, None))


def check_counts(counts, budget, mask):
    counts = np.asarray(counts)
    assert counts.dtype == np.int32
    assert (counts >= 0).all()
    assert (counts[~np.asarray(mask)] == 0).all()
    assert counts.sum() == budget


# --- the direction posterior ----------------------------------------------------------------


def test_recovers_clear_clusters_of_varying_sizes():
    """8 seeds × (direction-shared scores, all scores equal): ARI ≥ MIN_ARI on every one.

    K = 64 candidates in clusters of 1–16 members at within-cosine 0.9, cross ≈ 0."""
    rng = np.random.default_rng(0)
    k, seeds = 64, 8
    embs, truths, scores = [], [], []
    for _ in range(seeds):
        sizes = random_sizes(rng, k, 16)
        emb, ids = clustered(rng, sizes)
        embs.append(emb)
        truths.append(ids)
        scores.append(rng.uniform(0.05, 0.95, size=len(sizes))[ids])
    shared = np.stack(scores).astype(np.float32)
    both = map_batch_fn()(
        np.concatenate([shared, np.full_like(shared, 0.5)]),
        np.concatenate([embs, embs]),
        np.ones((2 * seeds, k), bool),
    )
    aris = [adjusted_rand_index(z, truths[i % seeds]) for i, z in enumerate(np.asarray(both))]
    assert min(aris) >= MIN_ARI, aris


def test_one_direction_is_not_split():
    """24 paraphrases of one step (cosine 0.9) share one direction with probability ≥ 0.99."""
    emb, _ = clustered(np.random.default_rng(1), [K])
    for score in (0.7, 0.5):
        post = posterior_fn()(np.full(K, score, np.float32), emb, np.ones(K, bool))
        assert np.asarray(post.co_assignment).min() >= 0.99


def test_orthogonal_candidates_are_singletons():
    emb = np.linalg.qr(np.random.default_rng(2).normal(size=(E, K)))[0].T.astype(np.float32)
    for scores in (np.full(K, 0.5, np.float32), np.linspace(0.1, 0.9, K, dtype=np.float32)):
        post = posterior_fn()(scores, emb, np.ones(K, bool))
        np.testing.assert_allclose(post.co_assignment, np.eye(K), atol=1e-6)
        assert len(set(np.asarray(directions.map_directions(post)).tolist())) == K


def test_paraphrases_merge_and_distinct_directions_do_not():
    """The defaults on the world's geometry (E = 32): paraphrase pairs at cosine 0.9 merge
    (P ≥ 0.99); directions whose nodes are siblings (cosine 0.95² = 0.9025) seen through
    paraphrase noise at 0.9 (cross-cosine 0.81 ± 0.03, the "paraphrase" preset), with equal
    scores, stay apart: a pair at 0.81 (P ≤ 0.01) and two 12-member directions."""
    rng = np.random.default_rng(3)
    post = posterior_fn()
    emb = np.concatenate([at_cosine(rng, 0.9) for _ in range(K // 2)]).astype(np.float32)
    co = np.asarray(post(np.full(K, 0.5, np.float32), emb, np.ones(K, bool)).co_assignment)
    pair = np.arange(K) // 2
    assert co[pair[:, None] == pair[None, :]].min() > 0.99
    assert co[pair[:, None] != pair[None, :]].max() < 0.01
    ids = np.repeat([0, 1], K // 2)
    for _ in range(3):
        emb = paraphrases(rng, at_cosine(rng, 0.95**2), ids, 0.9)
        pair = at_cosine(rng, 0.9 * 0.95**2)  # the expected cross-cosine of sibling copies
        assert np.asarray(post(*pad(np.full(2, 0.5), pair)).co_assignment)[0, 1] < 0.01
        post_12 = post(np.full(K, 0.5, np.float32), emb, np.ones(K, bool))
        # A member's cosines to the sibling direction scatter (s.d. ≈ 0.03 at E = 32), so a
        # rare member is ambiguous; the directions themselves stay apart.
        assert adjusted_rand_index(directions.map_directions(post_12), ids) == 1.0
        assert np.asarray(post_12.co_assignment)[np.ix_(ids == 0, ids == 1)].mean() < 0.01


def test_posterior_outputs_are_consistent():
    rng = np.random.default_rng(4)
    emb, _ = clustered(rng, [5, 3, 1, 4, 3, 2, 6])
    scores = rng.uniform(0.1, 0.9, size=K).astype(np.float32)
    mask = rng.random(K) < 0.7
    mask[0] = True
    post = posterior_fn()(scores, emb, mask)
    r, co = np.asarray(post.responsibilities), np.asarray(post.co_assignment)
    assert r.shape == (K, K) and co.shape == (K, K)
    np.testing.assert_allclose(r.sum(1), mask.astype(float), atol=1e-5)
    assert (r >= 0).all() and (r[:, ~mask] == 0).all()  # a masked candidate's slot stays empty
    np.testing.assert_allclose(co, co.T, atol=1e-6)
    assert (co >= 0).all() and (co <= 1).all()
    assert (co[~mask] == 0).all() and (co[:, ~mask] == 0).all()
    np.testing.assert_array_equal(np.diag(co), mask.astype(float))
    z = np.asarray(directions.sample_directions(jax.random.key(0), post, 5))
    assert z.shape == (5, K) and z.dtype == np.int32
    assert ((z >= 0) & (z < K)).all()
    np.testing.assert_array_equal(z[:, ~mask], np.tile(np.flatnonzero(~mask), (5, 1)))
    # Clear clusters: the posterior is hard, so every sample is the MAP assignment.
    np.testing.assert_array_equal(z, np.tile(directions.map_directions(post), (5, 1)))


# --- the Bayes allocation -------------------------------------------------------------------


@pytest.mark.parametrize("kappa", [0.1, 1.0, 15.0, 1e3])
def test_hard_clusters_give_the_direction_aware_optimum(kappa):
    """With certain directions every posterior sample is the truth, and the sample-averaged greedy
    must return `optimal_allocation(w̄, N, κ, directions=true ids)`: the same expected failure
    and, as no two directions tie, the same counts."""
    rng = np.random.default_rng(5)
    for budget in (1, 7, 24, 100):
        emb, ids, w = hard_problem(rng, rng.permutation([6, 1, 3, 2, 5, 1, 4, 2]))
        mask = np.ones(K, bool)
        counts = bayes_fn()(
            jax.random.key(budget), w, jnp.int32(budget), mask, emb, jnp.float32(kappa)
        )
        check_counts(counts, budget, mask)
        core = dora_jax.optimal_allocation(w, budget, kappa=kappa, directions=ids)
        fail = functools.partial(dora_jax.expected_failure, w, kappa=kappa, directions=ids)
        np.testing.assert_allclose(fail(counts), fail(core), rtol=1e-6)
        np.testing.assert_array_equal(counts, core)


def test_singletons_give_the_direction_free_optimum():
    rng = np.random.default_rng(6)
    emb = np.linalg.qr(rng.normal(size=(E, K)))[0].T.astype(np.float32)
    for kappa, budget in ((0.5, 5), (5.0, 40), (50.0, 16)):
        w = rng.uniform(0.05, 0.95, size=K).astype(np.float32)
        mask = rng.random(K) < 0.8
        mask[3] = True
        core = dora_jax.optimal_allocation(w, budget, kappa=kappa, mask=mask)
        got = bayes_fn()(jax.random.key(0), w, jnp.int32(budget), mask, emb, jnp.float32(kappa))
        np.testing.assert_array_equal(got, core)
        without = directions.bayes_allocation(
            None, w, jnp.int32(budget), mask=mask, kappa=jnp.float32(kappa)
        )
        np.testing.assert_array_equal(without, core)


def test_greedy_matches_a_brute_force_oracle():
    """6 candidates in hard clusters, N ≤ 6: the allocation attains the minimum of the exact
    expected failure over all C(N + 5, 5) allocations (greedy is exact for a certain partition)."""
    rng = np.random.default_rng(7)
    layouts = [[2, 1, 3], [1, 1, 1, 1, 2], [4, 2], [3, 3], [1, 2, 3], [6]]
    for trial, sizes in enumerate(layouts):
        emb, ids, w = hard_problem(rng, sizes)
        kappa, budget = [0.3, 2.0, 8.0][trial % 3], 3 + trial % 4
        scores, emb, mask = pad(w, emb)
        got = np.asarray(bayes_map_fn()(scores, jnp.int32(budget), mask, emb, jnp.float32(kappa)))
        assert got[6:].sum() == 0

        def fail(b, w=w, ids=ids, kappa=kappa):
            return float(dora_jax.expected_failure(w, b, kappa=kappa, directions=ids))

        best = min(
            fail(np.bincount(c, minlength=6))
            for c in itertools.combinations_with_replacement(range(6), budget)
        )
        assert fail(got[:6]) <= best * (1 + 1e-5)


def test_sample_average_failure_reduces_to_the_core_objective():
    rng = np.random.default_rng(8)
    k = 10
    w = jnp.asarray(rng.uniform(0.05, 0.95, size=k), jnp.float32)
    ids = jnp.asarray(rng.integers(0, 4, size=k), jnp.int32)
    counts = jnp.asarray(rng.integers(0, 5, size=k), jnp.int32)
    mask = jnp.ones(k, bool)
    exact = dora_jax.expected_failure(w, counts, kappa=2.0, directions=ids)
    alone = dora_jax.expected_failure(w, counts, kappa=2.0)
    average = jax.jit(
        lambda z: directions.sample_average_failure(w, counts, z, kappa=2.0, mask=mask)
    )
    np.testing.assert_allclose(average(jnp.stack([ids] * 3)), exact, rtol=1e-6)
    other = jnp.arange(k, dtype=jnp.int32)
    np.testing.assert_allclose(average(jnp.stack([ids, other])), (exact + alone) / 2, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, K),
    budget=st.integers(1, 300),
    seed=st.integers(0, 2**16),
    use_key=st.booleans(),
    kappa=st.sampled_from([0.01, 1.0, 15.0, 1e4]),
)
def test_budget_is_exact_and_masked_candidates_get_nothing(k, budget, seed, use_key, kappa):
    """K ∈ [1, 24] valid-or-masked candidates (padded to 24), random masks, duplicates, a zero
    embedding, scores at 0 and 1, tiny and huge κ: Σ = N, ≥ 0, masked → 0, int32."""
    rng = np.random.default_rng(seed)
    scores = rng.choice([0.0, 0.05, 0.5, 0.5, 0.9, 1.0, rng.uniform()], size=k)
    emb, _ = clustered(rng, random_sizes(rng, k, 4), within=float(rng.choice([0.8, 0.9, 0.999])))
    emb[rng.integers(k)] = 0  # a zero embedding is orthogonal to everything
    if k > 1:
        emb[1] = emb[0]  # an exact duplicate
    scores, emb, mask = pad(scores, emb)
    mask &= rng.random(K) < 0.7
    mask[seed % k] = True
    args = (scores, jnp.int32(budget), mask, emb, jnp.float32(kappa))
    counts = bayes_fn()(jax.random.key(seed), *args) if use_key else bayes_map_fn()(*args)
    check_counts(counts, budget, mask)


def test_one_candidate_and_all_masked():
    one = bayes_map_fn()(
        np.array([0.3], np.float32), jnp.int32(5), np.ones(1, bool), np.ones((1, E)), 1.0
    )
    np.testing.assert_array_equal(one, [5])
    scores, emb, _ = uncertain_problem(np.random.default_rng(9))
    got = bayes_map_fn()(scores, jnp.int32(8), np.zeros(K, bool), emb, jnp.float32(1.0))
    np.testing.assert_array_equal(got, np.zeros(K, np.int32))


def test_deterministic_per_key():
    scores, emb, mask = uncertain_problem(np.random.default_rng(10))
    post = posterior_fn()(scores, emb, mask)
    assert np.asarray(post.responsibilities).max(axis=1).min() < 0.99  # not a hard posterior
    args = (scores, jnp.int32(48), mask, emb, jnp.float32(3.0))
    a = bayes_fn()(jax.random.key(1), *args)
    np.testing.assert_array_equal(a, bayes_fn()(jax.random.key(1), *args))
    np.testing.assert_array_equal(bayes_map_fn()(*args), bayes_map_fn()(*args))
    check_counts(a, 48, mask)


def test_vmap_over_problems_equals_a_loop_of_single_calls():
    rng = np.random.default_rng(11)
    problems = [uncertain_problem(rng) for _ in range(4)]
    scores, emb, mask = (np.stack(x) for x in zip(*problems, strict=True))
    keys = jax.random.split(jax.random.key(2), 4)
    budgets = jnp.asarray([5, 24, 48, 100], jnp.int32)
    kappas = jnp.asarray([0.5, 1.0, 15.0, 100.0], jnp.float32)
    out = np.asarray(jax.jit(jax.vmap(bayes_rule))(keys, scores, budgets, mask, emb, kappas))
    for i in range(4):
        single = bayes_fn()(keys[i], scores[i], budgets[i], mask[i], emb[i], kappas[i])
        np.testing.assert_array_equal(out[i], single)


def test_traced_budget_and_kappa_do_not_recompile():
    scores, emb, mask = uncertain_problem(np.random.default_rng(12))
    rule = bayes_fn()
    rule(jax.random.key(0), scores, jnp.int32(2), mask, emb, jnp.float32(0.1))
    compiled = rule._cache_size()
    by_kappa = {}
    for budget, kappa in ((3, 0.2), (48, 0.05), (48, 1e3), (77, 40.0)):
        got = rule(jax.random.key(5), scores, jnp.int32(budget), mask, emb, jnp.float32(kappa))
        check_counts(got, budget, mask)
        by_kappa[budget, kappa] = np.asarray(got)
    assert rule._cache_size() == compiled
    # κ is really used: a trusted PRM concentrates the budget (Prop. 1).
    assert (by_kappa[48, 1e3] > 0).sum() < (by_kappa[48, 0.05] > 0).sum()


def test_permutation_equivariant_without_a_key():
    rng = np.random.default_rng(13)
    for _ in range(3):
        emb, _ = clustered(rng, random_sizes(rng, K, 5))
        scores = rng.uniform(0.05, 0.95, size=K).astype(np.float32)  # distinct: no ties
        perm = rng.permutation(K)
        mask = np.ones(K, bool)
        base = np.asarray(bayes_map_fn()(scores, jnp.int32(37), mask, emb, jnp.float32(2.0)))
        moved = bayes_map_fn()(scores[perm], jnp.int32(37), mask, emb[perm], jnp.float32(2.0))
        np.testing.assert_array_equal(moved, base[perm])


# --- the synthetic world --------------------------------------------------------------------


def world_candidates(config, steps, key, num=256):
    """The K = num active candidates of one world problem after `steps` steps without
    reallocation: scores, embeddings and true direction ids."""
    problem = world_lib.sample_problem(key, config)
    slots = world_lib.init_slots(problem, config, num)
    expand = jax.jit(world_lib.expand, static_argnums=3)
    for _ in range(steps):
        key, sub = jax.random.split(key)
        slots, _ = expand(sub, problem, slots, config)
    key, sub = jax.random.split(key)
    observe = jax.jit(
        lambda k, p, s: (world_lib.score(k, p, s, config), world_lib.embed(k, p, s, config))
    )
    return (*observe(sub, problem, slots), world_lib.direction_id(slots))


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["paraphrase", "paper-like"])
def test_world_directions_are_recovered(preset):
    """K = 256 copies after 1–3 steps, 6 problems: median ARI ≥ 0.95, worst ≥ 0.85.

    The merge cosine is set from the world's geometry, c₀ = c_w(1 + ρ_pc²)/2 (midway between
    paraphrases and siblings): 0.856 for "paraphrase" (≈ the default), 0.949 for "paper-like",
    whose siblings (cosine 0.90) the default c₀ = 0.855 cannot tell from paraphrases."""
    config = world_lib.preset(preset)
    c0 = config.within_cosine * (1 + config.parent_child_cosine**2) / 2
    post = jax.jit(
        lambda s, e: directions.map_directions(
            directions.direction_posterior(s, e, mask=jnp.ones(256, bool), merge_cosine=c0)
        )
    )
    aris = []
    for seed in range(6):
        scores, emb, truth = world_candidates(config, 1 + seed % 3, jax.random.key(seed))
        aris.append(adjusted_rand_index(post(scores, emb), truth))
    assert np.median(aris) >= 0.95 and min(aris) >= 0.85, aris
