"""The fast allocation rules (dora_jax) against the slow oracles in tests/oracles.py (STYLE §11).

The oracles are an independent reading of docs/allocation.md. Every comparison below is on many
small random cases, drawn from seeded NumPy generators (reproducible, no flakiness) or from
`hypothesis` (derandomized).

Float precision and ties. The integer decisions of every rule (Hamilton remainders, round half to
even, the pre-filter's `> 0`) are discontinuous, so two implementations that compute the same
weights in a different order can legitimately disagree when two remainders are mathematically
equal but computed from different inputs, or nearly equal. The comparisons therefore:
  * run in float64 (the `x64` fixture of tests/conftest.py), where the fast weights agree with
    the oracle's to ~1e-15 (one test at the end repeats the main rules in the default float32,
    with wider near-tie windows);
  * demand exact integer equality whenever the case has no near-tie (gap <= TOL) between
    candidates whose inputs differ; ties between candidates with *identical* inputs are computed
    identically by any elementwise implementation and must go to the lower index;
  * for the rare genuinely ambiguous cases, check only the weaker invariants (sum = N, masked = 0,
    quota bounds), and assert that such cases are a small fraction of all cases, so no test is
    vacuous;
  * use dyadic weights (integers summing to a power of two), for which every quota is exact in
    any precision, to test exact mathematical ties (remainders 0.5 and 0.5, halves in
    round-half-even) without any tolerance.
The optimum is compared through its objective (the exact expected failure of the fast
allocation must reach the oracle's minimum to 1e-9) and, away from near-tied marginal gains at
the cut, allocation for allocation.

Each randomized test has a "quick" variant (the default run, a few compiled shapes) and a
"sweep" variant marked slow (all K in 1..12, free hyperparameters); see QUICK_SHAPES.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
from fractions import Fraction

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# tests/ is not a package and pytest runs with --import-mode=importlib: load the sibling oracle
# module by path.
_ORACLE_PATH = pathlib.Path(__file__).with_name("oracles.py")
_spec = importlib.util.spec_from_file_location("dora_jax_test_oracles", _ORACLE_PATH)
oracles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracles)

# Half-width of a "near-tie" on quotas N*w (float64: the fast and oracle quotas differ by ~N*1e-15).
TOL = 1e-9
# Relative tolerance on expected failures (the objective is smooth: float64 noise is ~1e-14).
RTOL_FAILURE = 1e-9
# At most this fraction of random cases may fall back to the weak checks (near-ties).
MAX_AMBIGUOUS_FRACTION = 0.1

KAPPAS = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3)

HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# Every test runs in float64 (see the module docstring), via the shared `x64` fixture of
# tests/conftest.py, which restores the previous setting afterwards.
pytestmark = pytest.mark.usefixtures("x64")


@pytest.fixture(scope="module")
def fast():
    """The package under test (imported lazily so the oracle self-checks run without it)."""
    import dora_jax

    return dora_jax


# --------------------------------------------------------------------------------------------
# case generators
# --------------------------------------------------------------------------------------------

# Compilation budget. The fast rules are jitted with K, the embedding width and the
# hyperparameters static (N and the values traced), and one compilation costs ~0.5-1 s on CPU.
# The "quick" variant of each test (the default run) therefore draws its cases from a few
# shapes, mostly K = 12 with a random mask (K_v anywhere in 1..12, masked slots at random
# places), plus K = 1 and an unmasked K = 5, and non-default hyperparameters only at K = 12.
# The "sweep" variant (marked slow) draws K in 1..12, the mask, the embedding width and the
# hyperparameters freely, with more cases (several minutes: nearly every case compiles).
QUICK_SHAPES = ((12, True), (12, True), (12, True), (12, True), (12, True), (1, True), (5, False))
QUICK_E = 6
SWEEPS = [pytest.param(False, id="quick"), pytest.param(True, id="sweep", marks=pytest.mark.slow)]


def _n_cases(n, sweep, n_sweep=None):
    if not sweep:
        return n
    return 2 * n if n_sweep is None else n_sweep


def _shape(rng, sweep, shapes=QUICK_SHAPES):
    """(K, whether a mask is passed)."""
    if sweep:
        return int(rng.integers(1, 13)), bool(rng.random() < 0.6)
    K, masked = shapes[rng.integers(len(shapes))]
    return K, masked


def _mask(rng, K, masked=True):
    """A random mask with at least one valid candidate (None when not masked)."""
    if not masked:
        return None
    if rng.random() < 0.2:  # very few valid candidates
        m = np.zeros(K, bool)
        m[rng.choice(K, size=min(K, int(rng.integers(1, 3))), replace=False)] = True
        return m
    m = rng.random(K) < rng.uniform(0.3, 1.0)
    m[rng.integers(K)] = True
    return m


def _hp(rng, sweep, K, values):
    """A hyperparameter value, or None for the default (not passed).

    Quick runs use at most the first non-default value, and only at K = 12."""
    if sweep:
        return None if rng.random() < 0.4 else values[rng.integers(len(values))]
    return values[0] if K == 12 and rng.random() < 0.25 else None


def _valid(mask, K):
    return np.ones(K, bool) if mask is None else np.asarray(mask, bool)


def _scores(rng, K):
    """PRM-like scores in [0, 1] with deliberate ties."""
    kind = rng.integers(3)
    if kind == 0:  # continuous
        s = rng.uniform(0.0, 1.0, K)
    elif kind == 1:  # few discrete levels: many ties
        s = rng.choice(np.array([0.1, 0.3, 0.5, 0.7, 0.9]), size=K)
    else:  # continuous with copied values
        s = rng.uniform(0.0, 1.0, K)
        for _ in range(rng.integers(0, K)):
            s[rng.integers(K)] = s[rng.integers(K)]
    return s.astype(np.float64)


def _float_weights(rng, K, mask):
    """Random non-negative weights with copies and zeros (never all zero on the valid set)."""
    w = rng.uniform(0.0, 1.0, K) ** rng.choice([1.0, 3.0])
    for _ in range(rng.integers(0, K)):
        w[rng.integers(K)] = w[rng.integers(K)]
    w[rng.random(K) < 0.15] = 0.0
    valid = _valid(mask, K)
    if w[valid].sum() == 0:
        w[np.flatnonzero(valid)[0]] = 0.5
    return w


def _dyadic_weights(rng, K, mask):
    """Small integers whose valid total is a power of two: every quota N*w is exact in any float."""
    valid = _valid(mask, K)
    total = 2 ** int(rng.integers(0, 8))
    x = np.zeros(K)
    idx = np.flatnonzero(valid)
    cuts = np.sort(rng.integers(0, total + 1, size=len(idx) - 1))
    x[idx] = np.diff(np.concatenate([[0], cuts, [total]]))
    # masked weights are arbitrary and must be ignored
    x[~valid] = rng.integers(0, 5, size=(~valid).sum())
    return x.astype(np.float64)


def _groups(rng, K):
    """Random subtree ids in [0, K) (the fast code requires that range), with unused ids."""
    return rng.integers(0, max(1, K - int(rng.integers(0, K))), size=K).astype(np.int32)


def _directions(rng, K):
    """Random direction ids in [0, K) (the fast code requires that range; docs/allocation.md does
    not say), unordered and with unused ids."""
    return rng.integers(0, min(K, 4), size=K).astype(np.int32)


def _onehot_embeddings(rng, K, scores, E):
    """Hard directions: one-hot rows (with integer scales, sometimes zero rows).

    Cosines are exactly 0 or 1, so candidates with equal score and direction are computed
    identically and their ties are structural. Returns (embeddings, scores, keys, zero rows?).
    """
    D = int(rng.integers(1, min(K, E) + 1))
    direction = rng.integers(0, D, size=K)
    scale = rng.integers(1, 4, size=K) if rng.random() < 0.3 else np.ones(K, int)
    emb = np.zeros((K, E))
    emb[np.arange(K), direction] = scale
    zero = rng.random() < 0.2
    if zero:
        emb[rng.random(K) < 0.3] = 0.0
    # candidates in one direction share a score half the time (the Theorem-1 setting)
    if rng.random() < 0.5:
        scores = rng.uniform(0, 1, size=D)[direction]
    keys = [(float(scores[i]), int(direction[i])) for i in range(K)]
    for i in range(K):  # zero vectors are orthogonal to everything, including each other
        if not emb[i].any():
            keys[i] = ("zero", i)
    return emb, np.asarray(scores, np.float64), keys, zero


def _soft_embeddings(rng, K, E):
    """Soft directions: random prototypes plus noise (partial gamma); every candidate distinct."""
    D = int(rng.integers(1, K + 1))
    proto = rng.normal(size=(D, E))
    sigma = rng.choice([0.003, 0.01, 0.05, 1.0])
    emb = proto[rng.integers(0, D, size=K)] + sigma * rng.normal(size=(K, E))
    return emb, list(range(K))


# --------------------------------------------------------------------------------------------
# ambiguity detection (near-ties whose outcome float noise may legitimately flip)
# --------------------------------------------------------------------------------------------


def _frac(q: Fraction) -> Fraction:
    return q - math.floor(q)


def hamilton_ambiguous(weights, N, valid, keys, tol=TOL) -> bool:
    """A leftover winner and a loser with different inputs whose remainders are within tol."""
    q = oracles.hamilton_quotas(weights, N, valid)
    B = oracles.apportion_hamilton(weights, N, valid)
    K = len(q)
    win = [i for i in range(K) if q[i] is not None and B[i] > math.floor(q[i])]
    lose = [i for i in range(K) if q[i] is not None and B[i] == math.floor(q[i])]
    return any(
        keys[i] != keys[j] and abs(_frac(q[i]) - _frac(q[j])) <= tol for i in win for j in lose
    )


def half_even_ambiguous(weights, N, valid, keys, tol=TOL) -> bool:
    """Some quota within tol of a half-integer (or the Hamilton fallback is ambiguous)."""
    q = oracles.hamilton_quotas(weights, N, valid)
    if any(qi is not None and abs(_frac(qi) - Fraction(1, 2)) <= tol for qi in q):
        return True
    if sum(oracles.round_half_even_counts(weights, N, valid)) == 0:
        return hamilton_ambiguous(weights, N, valid, keys, tol)
    return False


def apportion_ambiguous(weights, N, valid, keys, rounding, tol=TOL) -> bool:
    if rounding == "hamilton":
        return hamilton_ambiguous(weights, N, valid, keys, tol)
    return half_even_ambiguous(weights, N, valid, keys, tol)


def prefilter_ambiguous(scores, N, mask, temperature, tol=TOL) -> bool:
    """round_half_even(N w_i) > 0 iff N w_i > 1/2: ambiguous when some N w_i is near 1/2."""
    w = oracles.rebase_weights(scores, mask, temperature)
    valid = _valid(mask, len(scores))
    return any(valid[i] and abs(N * w[i] - 0.5) <= tol for i in range(len(scores)))


# --------------------------------------------------------------------------------------------
# comparison helpers
# --------------------------------------------------------------------------------------------


def _np(x):
    return np.asarray(x)


def check_invariants(got, N, valid, context):
    K = len(valid)
    assert got.shape == (K,), (got.shape, context)
    assert np.issubdtype(got.dtype, np.integer), (got.dtype, context)
    assert got.sum() == N, (got.tolist(), context)
    assert (got >= 0).all(), (got.tolist(), context)
    assert (got[~valid] == 0).all(), (got.tolist(), context)


def compare(got, expected, N, valid, ambiguous, context, quotas=None):
    """Exact equality unless ambiguous; in the ambiguous case the invariants (and quota bounds)."""
    got = _np(got)
    check_invariants(got, N, valid, context)
    if not ambiguous:
        np.testing.assert_array_equal(got, expected, err_msg=str(context))
    elif quotas is not None:
        for i, qi in enumerate(quotas):
            if qi is not None:
                assert math.floor(qi - TOL) <= got[i] <= math.ceil(qi + TOL), (i, got, context)


class AmbiguityCounter:
    def __init__(self):
        self.n = 0
        self.ambiguous = 0

    def add(self, flag):
        self.n += 1
        self.ambiguous += bool(flag)
        return flag

    def check(self):
        assert self.n > 0
        assert self.ambiguous <= MAX_AMBIGUOUS_FRACTION * self.n, (self.ambiguous, self.n)


# ============================================================================================
# Part 1. The oracles against each other and against hand-computed values (no dora_jax needed)
# ============================================================================================


def test_oracle_hamilton_hand_cases():
    # quotas 0.5, 1, 1.5: one leftover, remainders tie at 0.5 -> lower index
    np.testing.assert_array_equal(oracles.apportion_hamilton([1, 2, 3], 3), [1, 1, 1])
    # quotas 7/3 each: floors 2, leftover 1 -> index 0
    np.testing.assert_array_equal(oracles.apportion_hamilton([1, 1, 1], 7), [3, 2, 2])
    # masked weight ignored even when huge
    np.testing.assert_array_equal(
        oracles.apportion_hamilton([5, 1, 100, 1], 7, [True, True, False, True]), [5, 1, 0, 1]
    )
    # the paper's Fig. 2 toy: DORA shares 1/6, 1/6, 1/6, 1/2 -> N = 6 gives 1, 1, 1, 3
    np.testing.assert_array_equal(oracles.apportion_hamilton([1, 1, 1, 3], 6), [1, 1, 1, 3])


def test_oracle_round_half_even_then_cycle_hand_cases():
    # a = round(0.5) = 0, round(0.5) = 0 -> empty list -> Hamilton fallback
    np.testing.assert_array_equal(oracles.apportion_round_half_even_then_cycle([1, 1], 1), [1, 0])
    # quotas 1.25, 3.75, 3.75, 1.25 -> a = 1, 4, 4, 1 (sum 10 = N): unchanged
    np.testing.assert_array_equal(
        oracles.apportion_round_half_even_then_cycle([1, 3, 3, 1], 10), [1, 4, 4, 1]
    )
    # quotas 2.5 (-> 2), 2.5 (-> 2), 0 -> list [0,0,1,1] cycled to 5: [0,0,1,1,0]
    np.testing.assert_array_equal(
        oracles.apportion_round_half_even_then_cycle([1, 1, 0], 5), [3, 2, 0]
    )
    # quotas 3.5 (-> 4), 3.5 (-> 4) -> list of 8 truncated to 7: [0]*4 + [1]*3
    np.testing.assert_array_equal(oracles.apportion_round_half_even_then_cycle([1, 1], 7), [4, 3])


@given(
    st.integers(1, 12).flatmap(
        lambda K: st.tuples(
            st.lists(st.integers(0, 9), min_size=K, max_size=K).filter(lambda x: sum(x) > 0),
            st.integers(1, 40),
        )
    )
)
@HYPOTHESIS
def test_oracle_cycle_matches_closed_form(case):
    """The literal list-cycling equals the spec's closed form a_i*floor(N/L) + clip(...)."""
    x, N = case
    a = oracles.round_half_even_counts(x, N)
    L = sum(a)
    got = oracles.apportion_round_half_even_then_cycle(x, N)
    if L == 0:
        np.testing.assert_array_equal(got, oracles.apportion_hamilton(x, N))
        return
    s = np.concatenate([[0], np.cumsum(a)[:-1]])
    closed = [a[i] * (N // L) + min(max((N % L) - s[i], 0), a[i]) for i in range(len(x))]
    np.testing.assert_array_equal(got, closed)


@given(
    st.integers(1, 12).flatmap(
        lambda K: st.tuples(
            st.lists(st.floats(0, 10), min_size=K, max_size=K).filter(lambda x: sum(x) > 0),
            st.integers(1, 40),
        )
    )
)
@HYPOTHESIS
def test_oracle_hamilton_quota_property(case):
    x, N = case
    B = oracles.apportion_hamilton(x, N)
    q = oracles.hamilton_quotas(x, N)
    assert B.sum() == N
    for i in range(len(x)):
        assert math.floor(q[i]) <= B[i] <= math.ceil(q[i])


def test_oracle_rules_hand_cases():
    np.testing.assert_array_equal(
        oracles.temperature_sampling(np.zeros(5), 7, [1, 0, 1, 1, 1]), [2, 0, 2, 2, 1]
    )
    # n_b = min(7 // 2, 5) = 3: ranks 4 (.9), 1 (.5, lower index of the tie), 2 (.5)
    np.testing.assert_array_equal(
        oracles.beam_search([0.1, 0.5, 0.5, 0.3, 0.9], 7, beam_width=2), [0, 2, 2, 0, 3]
    )
    # Eq. 2 exactly: M | N, top N/M get M each
    np.testing.assert_array_equal(
        oracles.beam_search([0.2, 0.8, 0.5, 0.9, 0.1, 0.3, 0.4, 0.6], 8, beam_width=4),
        [0, 4, 0, 4, 0, 0, 0, 0],
    )
    # groups [0,0], [1,1], [2,2]: representatives 1, 2, 4 (tie .9/.9 -> 4); extras to group 0
    np.testing.assert_array_equal(
        oracles.dvts([0.1, 0.5, 0.5, 0.3, 0.9, 0.9], 7, beam_width=2), [0, 3, 2, 0, 2, 0]
    )
    # Eq. 3 exactly: K = N = 8, M = 4: two groups, the best of each gets 4
    np.testing.assert_array_equal(
        oracles.dvts([0.2, 0.8, 0.5, 0.9, 0.1, 0.3, 0.4, 0.6], 8), [0, 0, 0, 4, 0, 0, 0, 4]
    )
    # custom groups: group 5 has no valid member and disappears; the extra rollout goes to the
    # lowest group id (3, i.e. candidate 1), not to the lowest candidate index
    np.testing.assert_array_equal(
        oracles.dvts([0.3, 0.2, 0.9, 0.1], 5, [True, True, False, True], groups=[7, 3, 5, 7]),
        [2, 3, 0, 0],
    )


# A numeric confirmation of Theorem 1 (the paper's §3.3, p. 7): R = [0.9]*5 + [0.9] + [0.7]*2,
# one-hot embeddings for directions of sizes 5/1/2, T_b = 0.1. Shares are given to 3 decimals.
THEOREM1_SCORES = np.array([0.9] * 5 + [0.9] + [0.7] * 2)
THEOREM1_DIRECTIONS = np.array([0] * 5 + [1] + [2] * 2)
THEOREM1_EMBEDDINGS = np.eye(3)[THEOREM1_DIRECTIONS]
THEOREM1_REBASE = (0.797, 0.159, 0.043)
THEOREM1_DORA = {0.01: (0.468, 0.468, 0.063), 0.1: (0.468, 0.468, 0.063), 1.0: (0.70, 0.24, 0.06)}


def _direction_shares(w):
    return [float(np.sum(np.asarray(w)[THEOREM1_DIRECTIONS == d])) for d in range(3)]


def test_oracle_theorem1_numeric_confirmation():
    np.testing.assert_allclose(
        _direction_shares(oracles.rebase_weights(THEOREM1_SCORES)), THEOREM1_REBASE, atol=6e-4
    )
    for ts, shares in THEOREM1_DORA.items():
        w = oracles.dora_weights(THEOREM1_SCORES, THEOREM1_EMBEDDINGS, similarity_temperature=ts)
        atol = 6e-4 if ts < 1 else 6e-3
        np.testing.assert_allclose(_direction_shares(w), shares, atol=atol)
    # the target of Eq. 9: a softmax over the three directions
    target = np.exp(np.array([9.0, 9.0, 7.0]))
    w = oracles.dora_weights(THEOREM1_SCORES, THEOREM1_EMBEDDINGS)
    np.testing.assert_allclose(_direction_shares(w), target / target.sum(), rtol=1e-12)


def _gram_embeddings(S):
    """Rows whose pairwise cosines are the given (positive definite) matrix S."""
    return np.linalg.cholesky(np.asarray(S, np.float64))


def test_oracle_gamma_table():
    """Theorem 1 (§3.3): gamma for 5/1/2 directions, cross-similarity 0.5, T_s = 0.01."""
    table = {1.0: (0.2, 0.5), 0.99: (0.41, 0.73), 0.97: (0.83, 0.95), 0.90: (1.0, 1.0)}
    d = THEOREM1_DIRECTIONS
    for within, (g5, g2) in table.items():
        S = np.where(d[:, None] == d[None, :], within, 0.5)
        np.fill_diagonal(S, 1.0)
        if within == 1.0:
            # the Gram matrix is singular there: one-hot rows realize within = 1, across = 0
            S_used = oracles.cosine_matrix(THEOREM1_EMBEDDINGS)
        else:
            S_used = oracles.cosine_matrix(_gram_embeddings(S))
            np.testing.assert_allclose(S_used, S, atol=1e-12)
        gamma = oracles.uniqueness(S_used, [True] * 8, 0.01)
        np.testing.assert_allclose([gamma[0], gamma[6]], [g5, g2], atol=6e-3)


def test_oracle_fig2_toy():
    """Fig. 2: similarities 1 within A (3 solutions), 0.1 across; gamma 1/3,1/3,1/3,1."""
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.1, math.sqrt(0.99)]])
    S = oracles.cosine_matrix(emb)
    np.testing.assert_allclose(S[0, 3], 0.1, rtol=1e-12)
    gamma = oracles.uniqueness(S, [True] * 4, 0.01)
    np.testing.assert_allclose(gamma, [1 / 3, 1 / 3, 1 / 3, 1.0], rtol=1e-12)
    w = oracles.dora_weights([0.95] * 4, emb)
    np.testing.assert_allclose(w, [1 / 6, 1 / 6, 1 / 6, 1 / 2], rtol=1e-12)


def test_oracle_dora_without_embeddings_is_rebase():
    rng = np.random.default_rng(11)
    for _ in range(50):
        K = int(rng.integers(1, 13))
        s, m = _scores(rng, K), _mask(rng, K, rng.random() < 0.6)
        np.testing.assert_allclose(
            oracles.dora_weights(s, None, 5, m), oracles.rebase_weights(s, m), rtol=1e-15
        )


@given(
    st.integers(1, 4).flatmap(
        lambda K: st.tuples(
            st.lists(
                st.sampled_from([0.05, 0.3, 0.5, 0.7, 0.95]) | st.floats(0.01, 0.99),
                min_size=K,
                max_size=K,
            ),
            st.integers(1, 10),
            st.sampled_from(KAPPAS),
            st.none() | st.lists(st.integers(0, 2), min_size=K, max_size=K),
        )
    )
)
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
def test_oracle_greedy_is_brute_force_optimal(case):
    w, N, kappa, directions = case
    B = oracles.greedy_optimal(w, N, kappa, directions)
    best, argmin = oracles.brute_force_optimal(w, N, kappa, directions)
    assert B.sum() == N
    assert oracles.expected_failure(w, B, kappa, directions) <= best * (1 + RTOL_FAILURE)
    assert tuple(int(b) for b in B) in argmin


def test_oracle_expected_failure_float_vs_exact():
    rng = np.random.default_rng(5)
    for _ in range(60):
        K = int(rng.integers(1, 6))
        w = rng.uniform(0, 1, K)
        B = rng.integers(0, 300, K)
        kappa = float(10.0 ** rng.uniform(-3, 6))
        exact = oracles.expected_failure(w, B, kappa, exact=True)
        if exact < 1e-250:  # the float product underflows there
            continue
        np.testing.assert_allclose(oracles.expected_failure(w, B, kappa), float(exact), rtol=1e-11)
    # closed forms: kappa(1-w)+r over kappa+r with w = 1/2, kappa = 1: prod (1/2 + r)/(1 + r)
    assert oracles.expected_failure([0.5], [2], 1.0, exact=True) == 0.5 * 0.75
    # w = 1/3 (as a float), kappa = 3, B = 3: (2 / 3) (3 / 4) (4 / 5) = 2 / 5 up to the float w
    np.testing.assert_allclose(oracles.expected_failure([1 / 3], [3], 3.0, exact=True), 0.4)
    # directions: members' mean w; a direction of w = 0.2 and 0.8 behaves as one of w = 0.5
    np.testing.assert_allclose(
        oracles.expected_failure([0.2, 0.8], [1, 1], 1.0, [0, 0], exact=True), 0.375, rtol=1e-15
    )


def test_oracle_prop1_limits():
    rng = np.random.default_rng(7)
    for _ in range(100):
        K, N = int(rng.integers(1, 13)), int(rng.integers(1, 41))
        w = rng.choice(np.linspace(0.05, 0.95, 19), size=K, replace=K > 19)
        order = sorted(range(K), key=lambda i: -w[i])  # stable: ties to the lower index
        B0 = oracles.greedy_optimal(w, N, 1e-6)
        top = order[: min(K, N)]
        assert (B0[top] >= 1).all(), (w, N, B0)
        if N <= K:
            np.testing.assert_array_equal(B0, np.isin(np.arange(K), top).astype(int))
        Binf = oracles.greedy_optimal(w, N, 1e6)
        np.testing.assert_array_equal(Binf, N * (np.arange(K) == order[0]))


def test_oracle_section21_table_qualitative():
    """Prop. 1 (§3.1): k = 8, N = 32, w = softmax(R/0.1), R ~ U(0.2, 0.95).

    REBASE is nearly optimal for kappa <= 1 and clearly not for kappa = 5 and above. The draws of
    R in the paper are unknown, so this checks the shape of the table, not its digits.
    """
    rng = np.random.default_rng(2025)
    ratios = {k: [] for k in (1e-3, 0.1, 1.0, 5.0, 20.0)}
    for _ in range(20):
        R = rng.uniform(0.2, 0.95, 8)
        w = oracles.rebase_weights(R)
        for kappa in ratios:
            opt = oracles.expected_failure(w, oracles.greedy_optimal(w, 32, kappa), kappa)
            reb = oracles.expected_failure(w, oracles.rebase(R, 32), kappa)
            assert opt <= reb * (1 + 1e-12)
            ratios[kappa].append(reb / opt)
    for kappa in (1e-3, 0.1, 1.0):
        assert np.median(ratios[kappa]) < 1.05, (kappa, ratios[kappa])
    assert np.median(ratios[5.0]) > 1.1
    assert np.median(ratios[20.0]) > 2.0


# ============================================================================================
# Part 2. dora_jax against the oracles
# ============================================================================================


def _alloc(fast, method, scores, N, **kw):
    """allocate() with the None-valued keywords left out (so defaults are the package's)."""
    kw = {k: v for k, v in kw.items() if v is not None}
    return _np(fast.allocate(method, scores, N, **kw))


def test_allocation_dtype_and_shape(fast):
    got = fast.allocate("rebase", np.linspace(0.0, 1.0, 12), 5, mask=np.ones(12, bool))
    assert got.shape == (12,)
    assert got.dtype == np.int32  # docs/allocation.md: every rule returns Int[K] (int32)


# ---------------------------------------------------------------- apportion


@pytest.mark.parametrize("sweep", SWEEPS)
@pytest.mark.parametrize("rounding", oracles.ROUNDINGS)
def test_apportion_random_float_weights(fast, rounding, sweep):
    rng = np.random.default_rng(100)
    counter = AmbiguityCounter()
    for case in range(_n_cases(150, sweep)):
        K, masked = _shape(rng, sweep)
        N = int(rng.integers(1, 41))
        m = _mask(rng, K, masked)
        valid = _valid(m, K)
        w = _float_weights(rng, K, m)
        amb = counter.add(apportion_ambiguous(w, N, valid, [float(v) for v in w], rounding))
        expected = oracles.apportion(w, N, valid, rounding)
        got = fast.apportion(w, N, mask=m, rounding=rounding)
        ctx = dict(case=case, weights=w.tolist(), N=N, mask=m, rounding=rounding)
        quotas = oracles.hamilton_quotas(w, N, valid) if rounding == "hamilton" else None
        compare(got, expected, N, valid, amb, ctx, quotas)
    counter.check()


@pytest.mark.parametrize("sweep", SWEEPS)
@pytest.mark.parametrize("rounding", oracles.ROUNDINGS)
def test_apportion_exact_dyadic_ties(fast, rounding, sweep):
    """Integer weights with a power-of-two total: exact quotas, exact ties, no tolerance at all
    (remainder ties like 0.5 vs 0.5 from different weights, exact halves in round-half-even)."""
    rng = np.random.default_rng(200)
    for case in range(_n_cases(150, sweep)):
        K, masked = _shape(rng, sweep)
        N = int(rng.integers(1, 41))
        m = _mask(rng, K, masked)
        w = _dyadic_weights(rng, K, m)
        expected = oracles.apportion(w, N, _valid(m, K), rounding)
        got = fast.apportion(w, N, mask=m, rounding=rounding)
        ctx = dict(case=case, weights=w.tolist(), N=N, mask=m, rounding=rounding)
        compare(got, expected, N, _valid(m, K), False, ctx)


def test_apportion_hypothesis(fast):
    """The same comparison driven by hypothesis (which shrinks a failure to a minimal case)."""

    @given(
        st.sampled_from([1, 12]).flatmap(
            lambda K: st.tuples(
                st.lists(st.integers(0, 8), min_size=K, max_size=K).filter(lambda x: sum(x) > 0),
                st.integers(1, 40),
                st.sampled_from(oracles.ROUNDINGS),
            )
        )
    )
    @HYPOTHESIS
    def run(case):
        x, N, rounding = case
        # integer weights with any total: mathematically tied remainders like 1/3 + 1/3 + 1/3
        # may be computed with different rounding errors, so the near-tie rule applies.
        w = np.array(x, np.float64)
        valid = np.ones(len(x), bool)
        amb = apportion_ambiguous(w, N, valid, [float(v) for v in w], rounding)
        expected = oracles.apportion(w, N, None, rounding)
        got = fast.apportion(w, N, mask=valid, rounding=rounding)
        compare(got, expected, N, valid, amb, dict(weights=x, N=N, rounding=rounding))

    run()


# Statistical checks with a key: tied candidates are drawn uniformly. With 200 keys and 4 tied
# candidates, the chance that one of them never wins is 4 * (3/4)**200 < 1e-24.
KEYED_DRAWS = 200


def test_apportion_with_key(fast):
    rng = np.random.default_rng(300)
    # 1) The key only decides who wins the leftover inside a class of equal remainders.
    for case in range(100):
        K, N = 12, int(rng.integers(1, 41))
        m = _mask(rng, K)
        w = _dyadic_weights(rng, K, m)
        valid = _valid(m, K)
        q = oracles.hamilton_quotas(w, N, valid)
        expected = oracles.apportion_hamilton(w, N, valid)
        got = _np(fast.apportion(w, N, mask=m, key=jax.random.key(case)))
        ctx = dict(case=case, weights=w.tolist(), N=N, mask=m)
        check_invariants(got, N, valid, ctx)
        classes: dict[Fraction, list[int]] = {}
        for i in range(K):
            if q[i] is not None:
                assert math.floor(q[i]) <= got[i] <= math.ceil(q[i]), ctx
                classes.setdefault(_frac(q[i]), []).append(i)
        for members in classes.values():
            assert got[members].sum() == expected[members].sum(), (members, got, expected, ctx)
    # 2) The draws are random: every one of 4 tied candidates wins the single rollout sometimes.
    mask = np.arange(12) < 4
    winners = {
        int(np.argmax(_np(fast.apportion(np.ones(12), 1, mask=mask, key=jax.random.key(s)))))
        for s in range(KEYED_DRAWS)
    }
    assert winners == {0, 1, 2, 3}


# ---------------------------------------------------------------- the rules


@pytest.mark.parametrize("sweep", SWEEPS)
def test_temperature_sampling(fast, sweep):
    rng = np.random.default_rng(400)
    for case in range(_n_cases(100, sweep)):
        K, masked = _shape(rng, sweep)
        N = int(rng.integers(1, 41))
        s, m = _scores(rng, K), _mask(rng, K, masked)
        valid = _valid(m, K)
        expected = oracles.temperature_sampling(s, N, m)
        np.testing.assert_array_equal(expected, oracles.apportion_hamilton(np.ones(K), N, valid))
        got = _alloc(fast, "temperature_sampling", s, N, mask=m)
        compare(got, expected, N, valid, False, dict(case=case, scores=s.tolist(), N=N, mask=m))
        if K == 12 and case % 3 == 0:
            w = _np(fast.allocation_weights("temperature_sampling", s, mask=m))
            np.testing.assert_allclose(w, valid / valid.sum(), rtol=1e-12, atol=0)


def test_temperature_sampling_with_key(fast):
    rng = np.random.default_rng(401)
    for case in range(50):
        K, N = 12, int(rng.integers(1, 41))
        s, m = _scores(rng, K), _mask(rng, K)
        valid = _valid(m, K)
        got = _alloc(fast, "temperature_sampling", s, N, mask=m, key=jax.random.key(case))
        check_invariants(got, N, valid, dict(case=case))
        # floor(N/K_v) each and N mod K_v random valid candidates with one more
        assert sorted(got[valid].tolist()) == sorted(
            oracles.temperature_sampling(s, N, m)[valid].tolist()
        ), (got, case)
    mask = np.arange(12) < 4
    winners = {
        int(
            np.argmax(
                _alloc(
                    fast, "temperature_sampling", np.zeros(12), 1, mask=mask, key=jax.random.key(s)
                )
            )
        )
        for s in range(KEYED_DRAWS)
    }
    assert winners == {0, 1, 2, 3}


@pytest.mark.parametrize("sweep", SWEEPS)
def test_beam_search(fast, sweep):
    rng = np.random.default_rng(500)
    for case in range(_n_cases(150, sweep)):
        K, masked = _shape(rng, sweep)
        N = int(rng.integers(1, 41))
        s, m = _scores(rng, K), _mask(rng, K, masked)
        M = _hp(rng, sweep, K, [2, 1, 3, 5, 8])
        expected = oracles.beam_search(s, N, m, beam_width=4 if M is None else M)
        got = _alloc(fast, "beam_search", s, N, mask=m, beam_width=M)
        ctx = dict(case=case, scores=s.tolist(), N=N, mask=m, beam_width=M)
        compare(got, expected, N, _valid(m, K), False, ctx)


@pytest.mark.parametrize("sweep", SWEEPS)
def test_dvts(fast, sweep):
    rng = np.random.default_rng(600)
    for case in range(_n_cases(150, sweep)):
        K, masked = _shape(rng, sweep)
        N = int(rng.integers(1, 41))
        s, m = _scores(rng, K), _mask(rng, K, masked)
        M = _hp(rng, sweep, K, [2, 1, 3, 5])
        groups = _groups(rng, K) if (sweep or K == 12) and rng.random() < 0.5 else None
        expected = oracles.dvts(s, N, m, beam_width=4 if M is None else M, groups=groups)
        got = _alloc(fast, "dvts", s, N, mask=m, beam_width=M, groups=groups)
        ctx = dict(case=case, scores=s.tolist(), N=N, mask=m, beam_width=M, groups=groups)
        compare(got, expected, N, _valid(m, K), False, ctx)


def test_dvts_unused_group_ids(fast):
    """Group ids with gaps (an id in [0, K) that no candidate uses): extras by group id rank."""
    s = np.array([0.5, 0.6, 0.7])
    for groups, N, expected in (
        ([0, 2, 2], 3, [2, 0, 1]),
        ([1, 1, 2], 4, [0, 2, 2]),
        ([2, 2, 0], 5, [0, 2, 3]),
        ([1, 2, 2], 4, [2, 0, 2]),
    ):
        np.testing.assert_array_equal(oracles.dvts(s, N, groups=groups), expected)
        got = _alloc(fast, "dvts", s, N, groups=np.array(groups, np.int32))
        np.testing.assert_array_equal(got, expected, err_msg=f"groups={groups} N={N}")


@pytest.mark.parametrize("sweep", SWEEPS)
@pytest.mark.parametrize("rounding", oracles.ROUNDINGS)
def test_rebase(fast, rounding, sweep):
    rng = np.random.default_rng(700)
    counter = AmbiguityCounter()
    for case in range(_n_cases(150, sweep)):
        K, masked = _shape(rng, sweep)
        N = int(rng.integers(1, 41))
        s, m = _scores(rng, K), _mask(rng, K, masked)
        T = _hp(rng, sweep, K, [0.3, 0.05, 1.0]) if sweep or rounding == "hamilton" else None
        Tb = 0.1 if T is None else T
        valid = _valid(m, K)
        w = oracles.rebase_weights(s, m, Tb)
        amb = counter.add(apportion_ambiguous(w, N, valid, [float(v) for v in s], rounding))
        expected = oracles.rebase(s, N, m, Tb, rounding)
        got = _alloc(fast, "rebase", s, N, mask=m, temperature=T, rounding=rounding)
        ctx = dict(case=case, scores=s.tolist(), N=N, mask=m, temperature=T, rounding=rounding)
        compare(got, expected, N, valid, amb, ctx)
        if K == 12 and T is None and case % 3 == 0:
            got_w = fast.allocation_weights("rebase", s, mask=m)
            np.testing.assert_allclose(got_w, w, rtol=1e-10, atol=1e-300, err_msg=str(ctx))
            # DORA without embeddings is REBASE
            got_dora = _alloc(fast, "dora", s, N, mask=m, rounding=rounding)
            compare(got_dora, expected, N, valid, amb, ctx)
    counter.check()


def _dora_case(rng, K, sweep, vary_hp):
    """(scores, embeddings, tie keys, T_b or None, T_s or None)."""
    s = _scores(rng, K)
    E = int(rng.choice([3, 8])) if sweep else QUICK_E
    hp = (lambda values: _hp(rng, sweep, K, values)) if vary_hp else (lambda values: None)
    if rng.random() < 0.6:
        emb, s, keys, zero = _onehot_embeddings(rng, K, s, E)
        # with zero rows, rows of tied candidates are permutations of each other; their
        # log-sum-exp is order-independent only when the cross terms vanish (T_s = 0.01)
        Ts = None if zero else hp([1.0, 0.1])
    else:
        emb, keys = _soft_embeddings(rng, K, E)
        Ts = hp([1.0, 0.1])
    Tb = hp([0.3, 1.0]) if Ts is None else None
    return s, emb, keys, Tb, Ts


@pytest.mark.parametrize("sweep", SWEEPS)
@pytest.mark.parametrize(
    ("rounding", "prefilter"),
    [
        ("hamilton", "none"),
        ("hamilton", "rebase_round"),
        ("round_half_even_then_cycle", "none"),
        # the official-code parity case: rebase_round pre-filter, round half even, cycling
        ("round_half_even_then_cycle", "rebase_round"),
    ],
)
def test_dora(fast, rounding, prefilter, sweep):
    rng = np.random.default_rng(800)
    counter = AmbiguityCounter()
    main = (rounding, prefilter) == ("hamilton", "none")
    # the other variants skip K = 1 and the non-default temperatures in quick runs (compilations)
    shapes = QUICK_SHAPES if main else ((12, True),) * 5 + ((5, False),)
    for case in range(_n_cases(150, sweep, 100 if main else 50)):
        K, masked = _shape(rng, sweep, shapes)
        N = int(rng.integers(1, 41))
        m = _mask(rng, K, masked)
        # non-default temperatures in the main variant only (each one is a compilation)
        vary_hp = sweep or main
        s, emb, keys, T, Ts = _dora_case(rng, K, sweep, vary_hp)
        Tb, Ts_value = (0.1 if T is None else T), (0.01 if Ts is None else Ts)
        valid = _valid(m, K)
        kept = oracles.dora_kept(s, N, m, Tb, prefilter)
        w = oracles.dora_weights(s, emb, N, m, Tb, Ts_value, prefilter)
        amb = apportion_ambiguous(w, N, np.asarray(kept), keys, rounding)
        if prefilter == "rebase_round":
            amb = amb or prefilter_ambiguous(s, N, m, Tb)
        counter.add(amb)
        expected = oracles.dora(s, emb, N, m, Tb, Ts_value, rounding, prefilter)
        got = _alloc(
            fast,
            "dora",
            s,
            N,
            mask=m,
            embeddings=emb,
            temperature=T,
            similarity_temperature=Ts,
            rounding=rounding,
            prefilter=prefilter,
        )
        ctx = dict(
            case=case,
            scores=s.tolist(),
            embeddings=emb.tolist(),
            N=N,
            mask=m,
            temperature=T,
            similarity_temperature=Ts,
            rounding=rounding,
            prefilter=prefilter,
        )
        compare(got, expected, N, valid, amb, ctx)
        if prefilter == "none" and rounding == "hamilton" and (sweep or K == 12):
            hp = {k: v for k, v in (("temperature", T), ("similarity_temperature", Ts)) if v}
            got_w = _np(fast.allocation_weights("dora", s, embeddings=emb, mask=m, **hp))
            np.testing.assert_allclose(got_w, w, rtol=1e-9, atol=1e-300, err_msg=str(ctx))
    counter.check()


def test_dora_theorem1_numeric_confirmation(fast):
    """Theorem 1 (§3.3): the fast weights give the paper's direction shares."""
    w = fast.allocation_weights("rebase", THEOREM1_SCORES)
    np.testing.assert_allclose(_direction_shares(w), THEOREM1_REBASE, atol=6e-4)
    for ts, shares in THEOREM1_DORA.items():
        if ts == 0.1:  # the oracle test covers it; one compilation less
            continue
        w = fast.allocation_weights(
            "dora", THEOREM1_SCORES, embeddings=THEOREM1_EMBEDDINGS, similarity_temperature=ts
        )
        np.testing.assert_allclose(_direction_shares(w), shares, atol=6e-4 if ts < 1 else 6e-3)
    for N in (8, 16, 32, 64, 256):
        got = _alloc(fast, "dora", THEOREM1_SCORES, N, embeddings=THEOREM1_EMBEDDINGS)
        np.testing.assert_array_equal(
            got, oracles.dora(THEOREM1_SCORES, THEOREM1_EMBEDDINGS, N), err_msg=f"N={N}"
        )


def test_dora_fig2_toy(fast):
    """Fig. 2: three similar solutions (direction A) and one different, all scored 0.95.

    Padded to the quick shape (K = 12, E = 6) with 8 masked random candidates, which must be
    ignored; this reuses compiled programs."""
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(12, QUICK_E))
    emb[:4] = 0.0
    emb[:3, 0] = 1.0
    emb[3, :2] = (0.1, math.sqrt(0.99))
    scores = np.concatenate([np.full(4, 0.95), rng.uniform(0, 1, 8)])
    mask = np.arange(12) < 4
    w = _np(fast.allocation_weights("dora", scores, embeddings=emb, mask=mask))
    np.testing.assert_allclose(w[:4], [1 / 6, 1 / 6, 1 / 6, 1 / 2], rtol=1e-9)
    np.testing.assert_array_equal(w[4:], 0.0)
    got = _alloc(fast, "dora", scores, 12, embeddings=emb, mask=mask)
    np.testing.assert_array_equal(got, [2, 2, 2, 6] + [0] * 8)


# ---------------------------------------------------------------- the optimum


def _w_with_ties(rng, K, lo=0.0, hi=1.0):
    w = rng.uniform(lo, hi, K)
    if K > 1 and rng.random() < 0.5:
        for _ in range(rng.integers(1, K)):
            w[rng.integers(K)] = w[rng.integers(K)]
    if rng.random() < 0.2:
        w = rng.choice(np.array([0.1, 0.5, 0.9]), size=K)
    return w


def _near_tie_at_threshold(w, N, kappa, directions, rtol=RTOL_FAILURE):
    """Gains within RTOL_FAILURE of the N-th largest lie on both sides of the cut and come from
    units with different w. (Such gains can be mathematically equal, e.g. w = 0.9 at r = 8 and
    w = 0.1 at r = 0 for kappa = 1 both give log1p(1/9), yet be computed with different
    rounding.) Gains of units with equal w are computed identically: their ties are structural
    and must go to the lowest index."""
    gains = oracles.marginal_gains(w, N, kappa, directions)
    lam = gains[N - 1][0]
    near = [
        (n < N, wd)
        for n, (g, wd) in enumerate(gains)
        if g == lam or abs(g - lam) <= rtol * abs(lam)
    ]
    straddles = any(taken for taken, _ in near) and not all(taken for taken, _ in near)
    return straddles and len({wd for _, wd in near}) > 1


@pytest.mark.parametrize("sweep", SWEEPS)
def test_optimal_matches_brute_force(fast, sweep):
    """K <= 4, N <= 10, every kappa of the grid, with and without directions: the fast optimum
    reaches the enumerated minimum and is one of its argmins."""
    rng = np.random.default_rng(900)
    for case in range(_n_cases(40, sweep)):
        K = int(rng.integers(1, 5)) if sweep else int(rng.choice([1, 3, 4]))
        N = int(rng.integers(1, 11))
        w = _w_with_ties(rng, K, 1e-3, 1 - 1e-3)
        dirs = _directions(rng, K) if case % 2 and (sweep or K == 4) else None
        for kappa in KAPPAS:
            best, argmin = oracles.brute_force_optimal(w, N, kappa, dirs, rtol=RTOL_FAILURE)
            got = _np(fast.optimal_allocation(w, N, kappa=kappa, directions=dirs))
            ctx = dict(case=case, w=w.tolist(), N=N, kappa=kappa, directions=dirs)
            check_invariants(got, N, np.ones(K, bool), ctx)
            value = oracles.expected_failure(w, got, kappa, dirs)
            assert value <= best * (1 + RTOL_FAILURE), (value, best, got, argmin, ctx)
            assert tuple(got.tolist()) in argmin, (got, argmin, ctx)
            if dirs is not None:  # each direction total is spread evenly, extras by index
                units = oracles._units(K, dirs)
                totals = [int(got[u].sum()) for u in units]
                np.testing.assert_array_equal(
                    got, oracles.spread_over_members(K, units, totals), err_msg=str(ctx)
                )


@pytest.mark.parametrize("sweep", SWEEPS)
def test_optimal_matches_greedy(fast, sweep):
    """Up to K = 12, N = 40: the greedy oracle is exact. Same expected failure always; the same
    allocation unless the threshold gain has a near-tie between units with different w."""
    rng = np.random.default_rng(901)
    counter = AmbiguityCounter()
    for case in range(_n_cases(100, sweep)):
        K = int(rng.integers(1, 13)) if sweep else 12
        N = int(rng.integers(1, 41))
        w = _w_with_ties(rng, K)
        kappa = float(rng.choice(KAPPAS))
        dirs = _directions(rng, K) if case % 3 == 0 else None
        expected = oracles.greedy_optimal(w, N, kappa, dirs)
        got = _np(fast.optimal_allocation(w, N, kappa=kappa, directions=dirs))
        ctx = dict(case=case, w=w.tolist(), N=N, kappa=kappa, directions=dirs)
        check_invariants(got, N, np.ones(K, bool), ctx)
        f_exp = oracles.expected_failure(w, expected, kappa, dirs)
        f_got = oracles.expected_failure(w, got, kappa, dirs)
        assert f_got <= f_exp * (1 + RTOL_FAILURE), (f_got, f_exp, got, expected, ctx)
        if not counter.add(_near_tie_at_threshold(w, N, kappa, dirs)):
            np.testing.assert_array_equal(got, expected, err_msg=str(ctx))
    counter.check()


@pytest.mark.parametrize("sweep", SWEEPS)
def test_allocate_optimal(fast, sweep):
    """allocate("optimal"): w = scores or softmax_V(R/T), with masks and directions (w_d is the
    mean over the direction's valid members; masked candidates take no part)."""
    rng = np.random.default_rng(902)
    counter = AmbiguityCounter()
    for case in range(_n_cases(100, sweep, 150)):
        K, masked = _shape(rng, sweep)
        N = int(rng.integers(1, 41))
        s, m = _scores(rng, K), _mask(rng, K, masked)
        valid = _valid(m, K)
        kappa = float(rng.choice(KAPPAS))  # traced: free to vary
        T = _hp(rng, sweep, K, [0.5, 0.1])
        dirs = _directions(rng, K) if (sweep or K == 12) and rng.random() < 0.4 else None
        expected = oracles.optimal(s, N, m, kappa, T, dirs)
        got = _alloc(fast, "optimal", s, N, mask=m, kappa=kappa, temperature=T, directions=dirs)
        ctx = dict(
            case=case, scores=s.tolist(), N=N, mask=m, kappa=kappa, temperature=T, directions=dirs
        )
        check_invariants(got, N, valid, ctx)
        idx = np.flatnonzero(valid)
        w = s if T is None else oracles.rebase_weights(s, m, T)
        sub_dirs = None if dirs is None else dirs[idx]
        f_exp = oracles.expected_failure(w[idx], expected[idx], kappa, sub_dirs)
        f_got = oracles.expected_failure(w[idx], got[idx], kappa, sub_dirs)
        assert f_got <= f_exp * (1 + RTOL_FAILURE), (f_got, f_exp, got, expected, ctx)
        if not counter.add(_near_tie_at_threshold(w[idx], N, kappa, sub_dirs)):
            np.testing.assert_array_equal(got, expected, err_msg=str(ctx))
    counter.check()
    # the default kappa is 1
    s = np.linspace(0.05, 0.95, 12)
    np.testing.assert_array_equal(
        _alloc(fast, "optimal", s, 17, mask=np.ones(12, bool)), oracles.optimal(s, 17, kappa=1.0)
    )


@pytest.mark.parametrize("sweep", SWEEPS)
def test_prop1_limits_fast(fast, sweep):
    """Prop. 1: kappa -> 0 gives one each to the top min(K, N); kappa -> inf all on argmax."""
    rng = np.random.default_rng(903)
    counter = AmbiguityCounter()
    for _ in range(_n_cases(40, sweep)):
        K = int(rng.integers(1, 13)) if sweep else 12
        N = int(rng.integers(1, 41))
        w = rng.choice(np.linspace(0.05, 0.95, 19), size=K, replace=K > 19)
        order = sorted(range(K), key=lambda i: -w[i])  # stable: ties to the lower index
        top = order[: min(K, N)]
        got0 = _np(fast.optimal_allocation(w, N, kappa=1e-6))
        assert (got0[top] >= 1).all(), (w, N, got0)
        if N <= K:
            np.testing.assert_array_equal(got0, np.isin(np.arange(K), top).astype(int))
        if not counter.add(_near_tie_at_threshold(w, N, 1e-6, None)):
            np.testing.assert_array_equal(got0, oracles.greedy_optimal(w, N, 1e-6), str((w, N)))
        got_inf = _np(fast.optimal_allocation(w, N, kappa=1e6))
        np.testing.assert_array_equal(got_inf, N * (np.arange(K) == order[0]), err_msg=str(w))
    counter.check()


@pytest.mark.parametrize("sweep", SWEEPS)
def test_expected_failure_matches_product(fast, sweep):
    """Against the exact rational product: kappa up to 1e6, B up to 300, with directions."""
    rng = np.random.default_rng(904)
    for case in range(_n_cases(150, sweep)):
        K = int(rng.integers(1, 9)) if sweep else 8
        w = _w_with_ties(rng, K)
        B = rng.integers(0, 301, size=K) * (rng.random(K) < 0.8)
        kappa = float(10.0 ** rng.uniform(-3, 6)) if case % 5 else float(rng.choice(KAPPAS))
        dirs = _directions(rng, K) if case % 2 else None
        exact = float(oracles.expected_failure(w, B, kappa, dirs, exact=True))
        got = float(fast.expected_failure(w, B.astype(np.int32), kappa=kappa, directions=dirs))
        ctx = dict(case=case, w=w.tolist(), B=B.tolist(), kappa=kappa, directions=dirs)
        # below ~1e-290 float64 loses relative precision (subnormals): absolute check there
        assert abs(got - exact) <= 1e-10 * exact + 1e-290, (got, exact, ctx)


# One factor E(1-p)^B through log-gamma differences: float64 gives ~1e-13 relative here (the
# log-gammas are below ~1e3); 1e-11 leaves a wide margin yet shows a loss of accuracy at some
# argument range (e.g. an asymptotic series switched on too early) in a one-candidate case.
RTOL_ONE_FACTOR = 1e-11


def test_expected_failure_single_factor_sweep(fast):
    """One candidate, kappa on a fine grid through the small/large-argument regimes."""
    kappas = np.concatenate([10.0 ** np.linspace(-3, 6, 37), [5.0, 8.0, 10.0, 12.0, 20.0]])
    for kappa in kappas:
        for wv in (0.01, 0.5, 0.93):
            for Bv in (1, 7, 40, 150):
                exact = float(oracles.expected_failure([wv], [Bv], float(kappa), exact=True))
                got = float(
                    fast.expected_failure(
                        np.array([wv]), np.array([Bv], np.int32), kappa=float(kappa)
                    )
                )
                assert abs(got - exact) <= RTOL_ONE_FACTOR * exact, (kappa, wv, Bv, got, exact)


def test_expected_failure_edge_weights(fast):
    """w = 0 never succeeds (failure 1); w = 1 succeeds surely once sampled (failure 0)."""
    for kappa in (1e-3, 1.0, 10.0, 1e6):
        for wv in (0.0, 1.0):
            for Bv in (0, 1, 5, 300):
                expected = 0.0 if (wv == 1.0 and Bv > 0) else 1.0
                assert oracles.expected_failure([wv], [Bv], kappa, exact=True) == expected
                got = float(
                    fast.expected_failure(np.array([wv]), np.array([Bv], np.int32), kappa=kappa)
                )
                assert abs(got - expected) <= 1e-12, (kappa, wv, Bv, got)


# ---------------------------------------------------------------- default precision (float32)

# float32 weights carry ~1e-6 relative error, and DORA's gamma amplifies cosine errors by
# 1/T_s = 100: near-ties are widened to 1e-3 on quotas (1e-4 relative on gains), and up to a
# quarter of the cases may be ambiguous. The comparisons above (float64) are the precise ones;
# this checks that the default precision runs the same rules.
TOL_F32 = 1e-3
RTOL_GAIN_F32 = 1e-4


def test_float32_default_precision(fast):
    rng = np.random.default_rng(1000)
    counters = {name: AmbiguityCounter() for name in ("apportion", "rebase", "dora", "optimal")}
    with jax.enable_x64(False):
        for case in range(80):
            K, N = 12, int(rng.integers(1, 41))
            m = _mask(rng, K)
            valid = _valid(m, K)
            ctx = dict(case=case, N=N, mask=m)
            # apportion
            w = _float_weights(rng, K, m).astype(np.float32)
            amb = apportion_ambiguous(w, N, valid, [float(v) for v in w], "hamilton", TOL_F32)
            counters["apportion"].add(amb)
            got = fast.apportion(w, N, mask=m)
            compare(got, oracles.apportion_hamilton(w, N, valid), N, valid, amb, ctx)
            # rebase
            s = _scores(rng, K).astype(np.float32)
            q = oracles.rebase_weights(s, m)
            amb = apportion_ambiguous(q, N, valid, [float(v) for v in s], "hamilton", TOL_F32)
            counters["rebase"].add(amb)
            got = _alloc(fast, "rebase", s, N, mask=m)
            compare(got, oracles.rebase(s, N, m), N, valid, amb, dict(ctx, scores=s.tolist()))
            # dora (default hyperparameters)
            emb, s, keys, _ = _onehot_embeddings(rng, K, s, QUICK_E)
            s, emb = s.astype(np.float32), emb.astype(np.float32)
            q = oracles.dora_weights(s, emb, N, m)
            amb = apportion_ambiguous(q, N, valid, keys, "hamilton", TOL_F32)
            counters["dora"].add(amb)
            got = _alloc(fast, "dora", s, N, mask=m, embeddings=emb)
            expected = oracles.dora(s, emb, N, m)
            compare(got, expected, N, valid, amb, dict(ctx, scores=s.tolist(), emb=emb.tolist()))
            # optimum
            w = _w_with_ties(rng, K).astype(np.float32)
            kappa = float(rng.choice(KAPPAS))
            expected = oracles.greedy_optimal(w, N, kappa)
            got = _np(fast.optimal_allocation(w, N, kappa=kappa))
            check_invariants(got, N, np.ones(K, bool), ctx)
            f_exp = oracles.expected_failure(w, expected, kappa)
            f_got = oracles.expected_failure(w, got, kappa)
            assert f_got <= f_exp * (1 + RTOL_GAIN_F32), (f_got, f_exp, got, expected, ctx)
            amb = _near_tie_at_threshold(w, N, kappa, None, RTOL_GAIN_F32)
            if not counters["optimal"].add(amb):
                np.testing.assert_array_equal(got, expected, err_msg=str((w.tolist(), kappa, ctx)))
    for counter in counters.values():
        assert counter.ambiguous <= 0.25 * counter.n, (counter.ambiguous, counter.n)
