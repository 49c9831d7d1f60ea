"""The public API: its surface, the paper's worked examples, bad input, and Theorem 1's content."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dora_jax


def test_public_api_is_pinned():
    assert dora_jax.__all__ == [
        "MAX_BUDGET",
        "METHODS",
        "RULES",
        "RuleInfo",
        "allocate",
        "allocation_weights",
        "apportion",
        "expected_failure",
        "log_expected_failure",
        "optimal_allocation",
        "register_rule",
        "rule_info",
    ]
    assert tuple(dora_jax.RULES) == dora_jax.METHODS
    assert dora_jax.MAX_BUDGET == 2**20
    assert dora_jax.METHODS == (
        "temperature_sampling",
        "beam_search",
        "dvts",
        "rebase",
        "dora",
        "optimal",
        "oracle",
        "bayes",
        "learned",
    )


def test_oracle_puts_everything_on_the_true_best():
    p = jnp.asarray([0.2, 0.7, 0.7, 0.9, 0.1], jnp.float32)
    np.testing.assert_array_equal(dora_jax.allocate("oracle", p, 16), [0, 0, 0, 16, 0])
    mask = jnp.asarray([True, True, True, False, True])
    # ties go to the lower index; masked candidates never get anything
    np.testing.assert_array_equal(dora_jax.allocate("oracle", p, 16, mask=mask), [0, 16, 0, 0, 0])
    counts = dora_jax.allocate("oracle", p, 16, mask=mask, key=jax.random.key(3))
    assert int(counts.sum()) == 16 and set(np.flatnonzero(np.asarray(counts))) <= {1, 2}


# --- the paper's own cases ---------------------------------------------------------------


def _three_directions():
    """The paper's §3.2 example: R = 0.9 (5 copies), 0.9 (1), 0.7 (2); one-hot embeddings."""
    scores = jnp.array([0.9] * 6 + [0.7] * 2, jnp.float32)
    members = np.array([0] * 5 + [1] + [2] * 2)
    return scores, jnp.asarray(np.eye(3, 3, dtype=np.float32)[members]), members


def _direction_totals(x, members):
    return np.bincount(members, weights=np.asarray(x, np.float64))


def test_section_2_4_direction_shares():
    scores, emb, members = _three_directions()
    rebase = _direction_totals(dora_jax.allocation_weights("rebase", scores), members)
    np.testing.assert_allclose(rebase, [0.797, 0.159, 0.043], atol=6e-4)
    for ts in (0.01, 0.1):
        dora = dora_jax.allocation_weights(
            "dora", scores, embeddings=emb, similarity_temperature=ts
        )
        np.testing.assert_allclose(
            _direction_totals(dora, members), [0.468, 0.468, 0.063], atol=6e-4
        )


def test_figure_2_toy_example():
    """Fig. 2: four solutions with score 0.95, three in direction A: DORA gives A and B 0.5."""
    scores = jnp.full((4,), 0.95, jnp.float32)
    sim = np.full((4, 4), 0.1)
    sim[:3, :3] = 1.0
    np.fill_diagonal(sim, 1.0)
    emb = jnp.asarray(np.linalg.cholesky(sim + 1e-9 * np.eye(4)), jnp.float32)  # rows: cos = sim
    w = np.asarray(dora_jax.allocation_weights("dora", scores, embeddings=emb))
    np.testing.assert_allclose(w, [1 / 6, 1 / 6, 1 / 6, 1 / 2], atol=1e-4)
    np.testing.assert_array_equal(
        dora_jax.allocate("dora", scores, 12, embeddings=emb), [2, 2, 2, 6]
    )


def test_equations_2_and_3_in_the_papers_case():
    """K = N = 16, M = 4: beam search gives the top 4 four each; DVTS the best of each block."""
    scores = jnp.asarray(np.random.default_rng(0).permutation(16) / 16, jnp.float32)
    beams = np.asarray(dora_jax.allocate("beam_search", scores, 16))
    top = np.argsort(-np.asarray(scores))[:4]
    assert set(np.flatnonzero(beams)) == set(top) and (beams[top] == 4).all()
    dvts = np.asarray(dora_jax.allocate("dvts", scores, 16))
    for g in range(4):
        block = np.asarray(scores)[4 * g : 4 * g + 4]
        expect = np.zeros(4, int)
        expect[np.argmax(block)] = 4
        np.testing.assert_array_equal(dvts[4 * g : 4 * g + 4], expect)
    np.testing.assert_array_equal(dora_jax.allocate("temperature_sampling", scores, 16), [1] * 16)


# --- Theorem 1 vs Prop. 2, as a property ----------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=2, max_size=4),
    levels=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
    which=st.integers(0, 3),
)
def test_duplicating_inside_a_direction_keeps_dora_direction_totals(sizes, levels, which):
    """Hard clusters, equal scores within a direction: adding a copy to direction j leaves DORA's
    direction totals unchanged (Theorem 1), while REBASE's total for j grows (Prop. 2)."""
    which = which % len(sizes)

    def build(sz):
        # Padded to a fixed K = 20 with a mask so that one compiled kernel serves every example.
        members = np.repeat(np.arange(len(sz)), sz)
        pad = 20 - len(members)
        scores = np.concatenate([np.asarray(levels)[members], np.zeros(pad)])
        emb = np.concatenate([np.eye(4)[members], np.zeros((pad, 4))])
        mask = np.arange(20) < len(members)
        full = np.concatenate([members, np.full(pad, 4)])
        return jnp.asarray(scores, jnp.float32), jnp.asarray(emb, jnp.float32), mask, full

    before, after = list(sizes), list(sizes)
    after[which] += 1
    totals = {}
    for name, sz in (("before", before), ("after", after)):
        scores, emb, mask, members = build(sz)
        totals[name] = {
            m: _direction_totals(
                dora_jax.allocation_weights(m, scores, embeddings=emb, mask=mask), members
            )[: len(sz)]
            for m in ("dora", "rebase")
        }
    np.testing.assert_allclose(totals["after"]["dora"], totals["before"]["dora"], atol=1e-5)
    assert totals["after"]["rebase"][which] > totals["before"]["rebase"][which]


# --- apportionment --------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    weights=st.lists(st.floats(0.0, 10.0, allow_subnormal=False), min_size=1, max_size=10).filter(
        lambda w: np.asarray(w, np.float32).sum() > 0
    ),
    budget=st.integers(1, 500),
)
def test_hamilton_has_the_quota_property(weights, budget):
    k = len(weights)
    padded = np.zeros(10, np.float32)
    padded[:k] = weights
    counts = np.asarray(dora_jax.apportion(padded, budget, mask=np.arange(10) < k))[:k]
    quota = budget * np.asarray(weights) / np.sum(weights)
    assert counts.sum() == budget
    assert (counts >= np.floor(quota - 1e-4)).all() and (counts <= np.ceil(quota + 1e-4)).all()


def test_round_then_cycle_reproduces_the_reference_repair():
    """The reference expands round(N·w), then cycles/truncates the list to N."""
    cycle = {"rounding": "round_half_even_then_cycle"}
    # round(5·[.3, .3, .4]) = [2, 2, 2] invents a rollout: [0,0,1,1,2,2] is cut to [0,0,1,1,2].
    w = jnp.array([0.3, 0.3, 0.4])
    np.testing.assert_array_equal(dora_jax.apportion(w, 5, **cycle), [2, 2, 1])
    np.testing.assert_array_equal(dora_jax.apportion(w, 5), [2, 1, 2])  # largest remainders
    # round(4·[.35, .35, .3]) = [1, 1, 1] loses one: [0, 1, 2] is cycled to [0, 1, 2, 0].
    w = jnp.array([0.35, 0.35, 0.3])
    np.testing.assert_array_equal(dora_jax.apportion(w, 4, **cycle), [2, 1, 1])
    # Every share rounds to 0 (the reference divides by zero): falls back to Hamilton.
    w = jnp.full((10,), 0.1)
    np.testing.assert_array_equal(dora_jax.apportion(w, 3, **cycle), [1, 1, 1] + [0] * 7)


def test_rebase_round_prefilter_drops_candidates_below_half_a_rollout():
    scores = jnp.array([0.9, 0.88, 0.5, 0.3], jnp.float32)
    emb = jnp.eye(4, dtype=jnp.float32)
    kept = dora_jax.allocation_weights(
        "dora", scores, embeddings=emb, prefilter="rebase_round", budget=8
    )
    assert np.asarray(kept)[2:].sum() == 0  # N·w < 0.5 for the last two
    plain = dora_jax.allocation_weights("dora", scores, embeddings=emb)
    assert (np.asarray(plain) > 0).all()


# --- the optimum ---------------------------------------------------------------------------


def test_prop1_limits():
    w = jnp.array([0.3, 0.6, 0.55, 0.1, 0.59])
    np.testing.assert_array_equal(dora_jax.optimal_allocation(w, 12, kappa=1e7), [0, 12, 0, 0, 0])
    small = np.asarray(dora_jax.optimal_allocation(w, 3, kappa=1e-7))
    np.testing.assert_array_equal(small, [0, 1, 1, 0, 1])  # one each to the top 3


def test_direction_aware_optimum_spreads_evenly_within_a_direction():
    w = jnp.array([0.5, 0.5, 0.5, 0.2])
    dirs = jnp.array([0, 0, 0, 3])
    counts = np.asarray(dora_jax.optimal_allocation(w, 8, kappa=1e6, directions=dirs))
    np.testing.assert_array_equal(counts, [3, 3, 2, 0])
    one_p = dora_jax.expected_failure(w, counts, kappa=1e6, directions=dirs)
    np.testing.assert_allclose(one_p, 0.5**8, rtol=1e-3)


def test_expected_failure_with_a_sure_candidate_is_zero():
    assert (
        float(dora_jax.expected_failure(jnp.array([1.0, 0.3]), jnp.array([1, 0]), kappa=2.0)) == 0
    )
    assert float(dora_jax.expected_failure(jnp.array([1.0, 0.3]), jnp.array([0, 2]), kappa=2.0)) > 0


def test_optimal_is_exact_in_float32_on_a_tied_case():
    """Ties are broken by index exactly as a one-at-a-time greedy would; Σ = N in float32."""
    w = jnp.full((5,), 0.2, jnp.float32)
    for n in range(1, 23):
        counts = np.asarray(dora_jax.optimal_allocation(w, n, kappa=3.0))
        assert counts.sum() == n and counts.max() - counts.min() <= 1
        assert (np.diff(counts) <= 0).all()


# --- bad input: one clear ValueError each ---------------------------------------------------

R = jnp.array([0.9, 0.5, 0.1], jnp.float32)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dora_jax.allocate("nope", R, 4), "unknown method"),
        (lambda: dora_jax.allocate("rebase", R, 0), "budget must be >= 1"),
        (lambda: dora_jax.allocate("rebase", R, 2.5), "integer"),
        (lambda: dora_jax.allocate("rebase", R, 10**11), "MAX_BUDGET"),
        (lambda: dora_jax.allocate("rebase", R, 1e11), "MAX_BUDGET"),
        (lambda: dora_jax.allocate("rebase", R, np.int64(2**31)), "MAX_BUDGET"),
        (lambda: dora_jax.allocate("rebase", R, 10**400), "MAX_BUDGET"),
        (lambda: dora_jax.allocate("dora", R.at[0].set(1.5), 4), r"\[0, 1\]"),
        (lambda: dora_jax.allocate("rebase", R.at[2].set(-0.1), 4), r"\[0, 1\]"),
        (lambda: dora_jax.allocation_weights("dora", R.at[0].set(1.5)), r"\[0, 1\]"),
        (lambda: dora_jax.allocate("rebase", R, 4, temperature=0.0), "temperature"),
        (lambda: dora_jax.allocate("rebase", R, 4, temperature=-1.0), "temperature"),
        (lambda: dora_jax.allocate("dora", R, 4, similarity_temperature=0.0), "similarity"),
        (lambda: dora_jax.allocate("optimal", R, 4, kappa=0.0), "kappa"),
        (lambda: dora_jax.allocate("optimal", R * 3, 4), r"\[0, 1\]"),
        (lambda: dora_jax.allocate("rebase", R.at[1].set(jnp.nan), 4), "NaN"),
        (lambda: dora_jax.allocate("rebase", R.at[1].set(jnp.inf), 4), "inf"),
        (lambda: dora_jax.allocate("rebase", R, 4, mask=jnp.ones(2, bool)), "mask must have"),
        (lambda: dora_jax.allocate("rebase", R, 4, mask=jnp.zeros(3, bool)), "masked"),
        (lambda: dora_jax.allocate("dora", R, 4, embeddings=jnp.ones((2, 4))), "embeddings"),
        (lambda: dora_jax.allocate("dora", R, 4, embeddings=jnp.ones(3)), "embeddings"),
        (lambda: dora_jax.allocate("rebase", R[None], 4), "shape"),
        (lambda: dora_jax.allocate("rebase", R, 4, kappa=1.0), "no hyperparameter"),
        (lambda: dora_jax.allocate("rebase", R, 4, rounding="round"), "unknown rounding"),
        (lambda: dora_jax.allocate("dora", R, 4, prefilter="top_p"), "unknown prefilter"),
        (lambda: dora_jax.allocate("beam_search", R, 4, beam_width=0), "beam_width"),
        (lambda: dora_jax.allocate("dvts", R, 4, groups=jnp.array([0, 1])), "groups"),
        (lambda: dora_jax.allocate("dvts", R, 4, groups=jnp.array([0, 1, 7])), "groups"),
        (lambda: dora_jax.allocation_weights("beam_search", R), "no continuous weights"),
        (lambda: dora_jax.allocation_weights("dora", R, prefilter="rebase_round"), "budget"),
        (lambda: dora_jax.optimal_allocation(R, 4, kappa=-1.0), "kappa"),
        (lambda: dora_jax.optimal_allocation(R, 4, kappa=1.0, directions=[0, 3, 1]), "directions"),
        (lambda: dora_jax.expected_failure(R, jnp.array([1, -1, 0]), kappa=1.0), "non-negative"),
        (lambda: dora_jax.apportion(jnp.array([1.0, -1.0]), 4), "non-negative"),
        (lambda: dora_jax.apportion(jnp.zeros(3), 4), "all zero"),
        (lambda: dora_jax.apportion(jnp.ones(3), 4, rounding="x"), "unknown rounding"),
    ],
)
def test_bad_input_raises_one_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_budget_check_accepts_the_largest_budget():
    """The control of the MAX_BUDGET fault: the bound itself passes the check."""
    dora_jax._checks.check_budget(dora_jax.MAX_BUDGET)
    with pytest.raises(ValueError, match="MAX_BUDGET"):
        dora_jax._checks.check_budget(dora_jax.MAX_BUDGET + 1)


@pytest.mark.parametrize(
    "method", [m for m in dora_jax.METHODS if dora_jax.RULES[m].probability_scores]
)
def test_probability_rules_refuse_scores_outside_the_unit_interval(method):
    """R is a PRM probability (§2.1): 1.5 is refused eagerly; the endpoints 0 and 1 are not."""
    emb = jnp.eye(3, 4, dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]") as info:
        dora_jax.allocate(method, jnp.array([0.2, 1.5, 0.4]), 8, embeddings=emb)
    assert method in str(info.value) and "\n" not in str(info.value)
    counts = dora_jax.allocate(method, jnp.array([0.0, 1.0, 0.4]), 8, embeddings=emb)
    assert int(counts.sum()) == 8


# --- the registry ---------------------------------------------------------------------------


def test_every_rule_record_is_complete():
    for name, info in dora_jax.RULES.items():
        assert info.name == name and callable(info.allocate)
        assert info.description, name  # the CLI's help line
        assert info.min_budget(info.resolve({})) >= 1
        if info.group_width is not None:
            assert info.group_width(info.resolve({})) >= 1
    assert dora_jax.rule_info("dvts").min_budget({"beam_width": 8}) == 8
    assert dora_jax.rule_info("dora").reads_embeddings
    assert not dora_jax.rule_info("rebase").reads_embeddings
    assert dora_jax.rule_info("oracle").reads_truth
    assert not dora_jax.rule_info("temperature_sampling").reallocates


def test_register_rule_refuses_a_duplicate_or_an_unknown_field():
    with pytest.raises(ValueError, match="already registered"):
        dora_jax.register_rule("rebase", dora_jax.rule_info("rebase").allocate)
    with pytest.raises(ValueError, match="no field"):
        dora_jax.register_rule("fresh_rule", dora_jax.rule_info("rebase").allocate, needs_gpu=True)
    assert "fresh_rule" not in dora_jax.RULES
    with pytest.raises(ValueError, match="unknown method"):
        dora_jax.rule_info("fresh_rule")
    with pytest.raises(TypeError):
        dora_jax.RULES["x"] = None  # read-only: rules join through register_rule


def test_traced_budget_and_hyperparameters_under_vmap():
    """Budgets and temperatures can be batched: one compiled function for a sweep."""
    scores = jnp.asarray(np.random.default_rng(1).uniform(size=(4, 9)), jnp.float32)
    budgets = jnp.array([1, 7, 16, 100], jnp.int32)
    temps = jnp.array([0.05, 0.1, 0.5, 2.0], jnp.float32)
    out = jax.jit(jax.vmap(lambda s, n, t: dora_jax.allocate("rebase", s, n, temperature=t)))(
        scores, budgets, temps
    )
    np.testing.assert_array_equal(np.asarray(out).sum(axis=1), budgets)
