"""Slow, obvious NumPy/Python reference implementations of the allocation rules.

Written from the contract in docs/allocation.md alone (not from dora_jax/), so that the fast JAX
code can be checked against an independent reading of the spec. Everything here favours being
evidently right over being fast: Python loops, float64, and exact rational arithmetic
(`fractions.Fraction`) wherever a rounding decision is taken, so that the only float error left is
in the continuous weights (softmax, cosine), never in the integer decisions made from them.

Every allocation returned is a NumPy int64 array of shape [K] with B_i >= 0, B_i = 0 for masked i
and sum B = N.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np

ROUNDINGS = ("hamilton", "round_half_even_then_cycle")
PREFILTERS = ("none", "rebase_round")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _valid(mask, K: int) -> list[bool]:
    """Mask as a list of Python bools; `None` means every candidate is valid."""
    if mask is None:
        return [True] * K
    mask = np.asarray(mask, dtype=bool)
    assert mask.shape == (K,), (mask.shape, K)
    return [bool(m) for m in mask]


def _exact(x) -> Fraction:
    """The exact rational value of a float (every float64 is a dyadic rational)."""
    return Fraction(float(x))


def _round_half_even(x: Fraction) -> int:
    """Round a rational to the nearest integer, exact halves to the even neighbour."""
    # Fraction.__round__ without ndigits rounds half to even; spelled out for the reader:
    f = math.floor(x)
    d = x - f
    if d > Fraction(1, 2):
        return f + 1
    if d < Fraction(1, 2):
        return f
    return f if f % 2 == 0 else f + 1


def _softmax_over(logits: list[float], keep: list[bool]) -> np.ndarray:
    """softmax over the kept entries (float64, max-subtracted); 0 for the others."""
    K = len(logits)
    m = max(logits[i] for i in range(K) if keep[i])
    e = [math.exp(logits[i] - m) if keep[i] else 0.0 for i in range(K)]
    z = sum(e)
    return np.array([x / z for x in e], dtype=np.float64)


def _counts(indices: list[int], K: int) -> np.ndarray:
    out = np.zeros(K, dtype=np.int64)
    for i in indices:
        out[i] += 1
    return out


# --------------------------------------------------------------------------------------------
# apportionment
# --------------------------------------------------------------------------------------------


def hamilton_quotas(weights, budget: int, mask=None) -> list[Fraction | None]:
    """Exact quotas q_i = N * x_i / sum_V x_j (None for masked i)."""
    x = np.asarray(weights, dtype=np.float64)
    K = x.shape[0]
    valid = _valid(mask, K)
    total = sum(_exact(x[i]) for i in range(K) if valid[i])
    assert total > 0, "all-zero weights"
    return [budget * _exact(x[i]) / total if valid[i] else None for i in range(K)]


def apportion_hamilton(weights, budget: int, mask=None) -> np.ndarray:
    """Hamilton / largest remainder, exact arithmetic; remainder ties go to the lower index."""
    x = np.asarray(weights, dtype=np.float64)
    K = x.shape[0]
    q = hamilton_quotas(x, budget, mask)
    floors = [0 if qi is None else math.floor(qi) for qi in q]
    leftover = budget - sum(floors)
    # Sort valid candidates by remainder, largest first; Python's sort is stable so equal
    # remainders keep index order (lower index first).
    order = sorted((i for i in range(K) if q[i] is not None), key=lambda i: -(q[i] - floors[i]))
    assert 0 <= leftover <= len(order)
    for i in order[:leftover]:
        floors[i] += 1
    return np.array(floors, dtype=np.int64)


def round_half_even_counts(weights, budget: int, mask=None) -> list[int]:
    """a_i = round_half_even(N * w_i) with w normalized over the valid set (exact)."""
    q = hamilton_quotas(weights, budget, mask)
    return [0 if qi is None else _round_half_even(qi) for qi in q]


def apportion_round_half_even_then_cycle(weights, budget: int, mask=None) -> np.ndarray:
    """The official DORA / search-and-learn rounding, built literally.

    a_i = round_half_even(N w_i); the list "i repeated a_i times" in index order is repeated and
    truncated to N exactly as the reference code does: `(lst * (N // len(lst) + 1))[:N]`.
    An empty list (the reference code would divide by zero) falls back to Hamilton.
    """
    K = np.asarray(weights).shape[0]
    a = round_half_even_counts(weights, budget, mask)
    lst: list[int] = []
    for i in range(K):
        lst += [i] * a[i]
    if len(lst) == 0:
        return apportion_hamilton(weights, budget, mask)
    N = budget
    cycled = (lst * (N // len(lst) + 1))[:N]
    return _counts(cycled, K)


def apportion(weights, budget: int, mask=None, rounding: str = "hamilton") -> np.ndarray:
    """Dispatch on the rounding name."""
    if rounding == "hamilton":
        return apportion_hamilton(weights, budget, mask)
    if rounding == "round_half_even_then_cycle":
        return apportion_round_half_even_then_cycle(weights, budget, mask)
    raise ValueError(rounding)


# --------------------------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------------------------


def temperature_sampling(scores, budget: int, mask=None) -> np.ndarray:
    """Eq. 1: floor(N/K_v) each, one more to the first N mod K_v valid candidates by index."""
    K = len(scores)
    valid = _valid(mask, K)
    idx = [i for i in range(K) if valid[i]]
    B = np.zeros(K, dtype=np.int64)
    for i in idx:
        B[i] = budget // len(idx)
    for i in idx[: budget % len(idx)]:
        B[i] += 1
    return B


def _ranked_valid(scores, valid: list[bool]) -> list[int]:
    """Valid indices, best score first, ties to the lower index (stable sort)."""
    s = [float(v) for v in scores]
    return sorted((i for i in range(len(s)) if valid[i]), key=lambda i: -s[i])


def beam_search(scores, budget: int, mask=None, beam_width: int = 4) -> np.ndarray:
    """Eq. 2: keep the n_b best valid candidates, spread N evenly, extras to the best ranked."""
    K = len(scores)
    valid = _valid(mask, K)
    ranked = _ranked_valid(scores, valid)
    n_b = min(max(budget // beam_width, 1), len(ranked))
    kept = ranked[:n_b]
    B = np.zeros(K, dtype=np.int64)
    for i in kept:
        B[i] = budget // n_b
    for i in kept[: budget % n_b]:
        B[i] += 1
    return B


def dvts(scores, budget: int, mask=None, beam_width: int = 4, groups=None) -> np.ndarray:
    """Eq. 3: the best valid member of every non-empty group shares N evenly.

    Extras go to the representatives of the lowest group ids.
    """
    K = len(scores)
    valid = _valid(mask, K)
    if groups is None:
        groups = [i // beam_width for i in range(K)]
    groups = [int(g) for g in groups]
    s = [float(v) for v in scores]
    rep: dict[int, int] = {}
    for i in range(K):  # index order, strict '>' keeps the lower index on ties
        if not valid[i]:
            continue
        g = groups[i]
        if g not in rep or s[i] > s[rep[g]]:
            rep[g] = i
    gids = sorted(rep)
    G = len(gids)
    B = np.zeros(K, dtype=np.int64)
    for n, g in enumerate(gids):
        B[rep[g]] = budget // G + (1 if n < budget % G else 0)
    return B


def rebase_weights(scores, mask=None, temperature: float = 0.1) -> np.ndarray:
    """Eq. 4 weights: softmax over the valid set of R / T_b (float64), 0 for masked."""
    K = len(scores)
    valid = _valid(mask, K)
    return _softmax_over([float(r) / temperature for r in scores], valid)


def rebase(scores, budget: int, mask=None, temperature: float = 0.1, rounding="hamilton"):
    """Eq. 4: REBASE weights apportioned."""
    w = rebase_weights(scores, mask, temperature)
    return apportion(w, budget, _valid(mask, len(scores)), rounding)


def cosine_matrix(embeddings) -> np.ndarray:
    """Eq. 10 with the spec's conventions: S_ii = 1, a zero vector is orthogonal to all others."""
    e = np.asarray(embeddings, dtype=np.float64)
    K = e.shape[0]
    S = np.zeros((K, K), dtype=np.float64)
    for i in range(K):
        for j in range(K):
            if i == j:
                S[i, j] = 1.0
                continue
            ni = math.sqrt(sum(float(v) * float(v) for v in e[i]))
            nj = math.sqrt(sum(float(v) * float(v) for v in e[j]))
            if ni == 0.0 or nj == 0.0:
                S[i, j] = 0.0
            else:
                S[i, j] = sum(float(a) * float(b) for a, b in zip(e[i], e[j], strict=True)) / (
                    ni * nj
                )
    return S


def uniqueness(S, keep: list[bool], similarity_temperature: float = 0.01) -> np.ndarray:
    """Eq. 11: gamma_i = P_ii, P the row softmax of S / T_s over the kept set (0 elsewhere).

    Literally: logits_j = S_ij / T_s for kept j, subtract the row max, exponentiate, and divide
    the diagonal entry by the row sum.
    """
    K = len(keep)
    gamma = np.zeros(K, dtype=np.float64)
    for i in range(K):
        if not keep[i]:
            continue
        logits = {j: S[i, j] / similarity_temperature for j in range(K) if keep[j]}
        m = max(logits.values())
        row = {j: math.exp(v - m) for j, v in logits.items()}
        gamma[i] = row[i] / sum(row.values())
    return gamma


def dora_kept(scores, budget: int, mask=None, temperature=0.1, prefilter="none") -> list[bool]:
    """Step 1 of DORA: the kept set after the pre-filter."""
    K = len(scores)
    valid = _valid(mask, K)
    if prefilter == "none":
        return valid
    if prefilter == "rebase_round":
        a = round_half_even_counts(rebase_weights(scores, mask, temperature), budget, valid)
        kept = [valid[i] and a[i] > 0 for i in range(K)]
        return kept if any(kept) else valid
    raise ValueError(prefilter)


def dora_weights(
    scores,
    embeddings=None,
    budget: int | None = None,
    mask=None,
    temperature: float = 0.1,
    similarity_temperature: float = 0.01,
    prefilter: str = "none",
) -> np.ndarray:
    """Eqs. 10-12: w'_i ∝ exp(R_i/T_b) * gamma_i over the kept set, 0 elsewhere.

    `budget` is only needed by the `rebase_round` pre-filter.
    """
    K = len(scores)
    kept = dora_kept(scores, budget, mask, temperature, prefilter)
    if embeddings is None:
        gamma = np.ones(K)
    else:
        gamma = uniqueness(cosine_matrix(embeddings), kept, similarity_temperature)
    logits = [
        float(scores[i]) / temperature + math.log(gamma[i]) if kept[i] else 0.0 for i in range(K)
    ]
    return _softmax_over(logits, kept)


def dora(
    scores,
    embeddings,
    budget: int,
    mask=None,
    temperature: float = 0.1,
    similarity_temperature: float = 0.01,
    rounding: str = "hamilton",
    prefilter: str = "none",
) -> np.ndarray:
    """Eqs. 10-13: DORA weights apportioned over the kept set."""
    kept = dora_kept(scores, budget, mask, temperature, prefilter)
    w = dora_weights(
        scores, embeddings, budget, mask, temperature, similarity_temperature, prefilter
    )
    return apportion(w, budget, kept, rounding)


# --------------------------------------------------------------------------------------------
# the Bayes-optimal allocation (Eq. 7)
# --------------------------------------------------------------------------------------------


def _units(K: int, directions) -> list[list[int]]:
    """Candidates grouped into units (directions), each unit's members in index order.

    Units are ordered by direction id: in the direction-level problem the directions are the
    candidates and their index is the id, so "ties to the lowest index" means the lowest id.
    (docs/allocation.md does not say which index; this is the reading the fast code takes too.)
    Without directions every candidate is its own unit, in index order.
    """
    if directions is None:
        return [[i] for i in range(K)]
    d = [int(v) for v in directions]
    units: dict[int, list[int]] = {}
    for i in range(K):
        units.setdefault(d[i], []).append(i)
    return [units[k] for k in sorted(units)]


def _unit_mean(w, members: list[int]):
    return sum(w[i] for i in members) / len(members)


def unit_failure(wd: float, Bd: int, kappa: float) -> float:
    """E(1 - p)^B for p ~ Beta(kappa w, kappa (1 - w)): prod_{r<B} (kappa(1-w)+r)/(kappa+r)."""
    out = 1.0
    for r in range(Bd):
        out *= (kappa * (1.0 - wd) + r) / (kappa + r)
    return out


def unit_failure_exact(wd: Fraction, Bd: int, kappa: Fraction) -> tuple[int, int]:
    """The same product in exact rational arithmetic, as (numerator, denominator) integers.

    With a = kappa(1-w) = n_a/d_a and kappa = n_k/d_k the factor r is
    (n_a + r d_a) d_k / ((n_k + r d_k) d_a); numerators and denominators are multiplied as
    integers and never reduced (reducing 300 factors of ~100 bits costs far more than it saves).
    """
    a = kappa * (1 - wd)
    num, den = 1, 1
    for r in range(Bd):
        num *= a.numerator + r * a.denominator
        den *= kappa.numerator + r * kappa.denominator
    return num * kappa.denominator**Bd, den * a.denominator**Bd


def expected_failure(w, B, kappa, directions=None, exact: bool = False) -> float:
    """Eq. 7 objective, the literal product over units and r < B_d.

    With directions, w_d is the mean of the members' w and B_d the members' total. With
    `exact=True` everything is done in rational arithmetic on the exact float inputs and the
    result is the correctly rounded float64 of the exact value (Python's int / int).
    """
    K = len(w)
    if exact:
        wv = [_exact(v) for v in w]
        num, den = 1, 1
        for members in _units(K, directions):
            n, d = unit_failure_exact(
                _unit_mean(wv, members), sum(int(B[i]) for i in members), _exact(kappa)
            )
            num, den = num * n, den * d
        return num / den
    wv = [float(v) for v in w]
    out = 1.0
    for members in _units(K, directions):
        out *= unit_failure(_unit_mean(wv, members), sum(int(B[i]) for i in members), kappa)
    return out


def gain(wd: float, r: int, kappa: float) -> float:
    """g(r) = log1p(kappa w / (kappa (1 - w) + r)); +inf for w = 1, r = 0 (certain success)."""
    den = kappa * (1.0 - wd) + r
    if den == 0.0:
        return math.inf
    return math.log1p(kappa * wd / den)


def spread_over_members(K: int, units: list[list[int]], totals: list[int]) -> np.ndarray:
    """B_d spread evenly over the unit's members, the first B_d mod k_d by index get one more."""
    B = np.zeros(K, dtype=np.int64)
    for members, Bd in zip(units, totals, strict=True):
        for n, i in enumerate(members):
            B[i] = Bd // len(members) + (1 if n < Bd % len(members) else 0)
    return B


def greedy_optimal(w, budget: int, kappa: float, directions=None) -> np.ndarray:
    """Greedy marginal allocation: one rollout at a time to the unit with the largest next gain.

    Ties (equal float gains) go to the unit with the lowest index (direction id). Exact for the
    separable concave objective (docs/allocation.md, Eq. 7).
    """
    K = len(w)
    wv = [float(v) for v in w]
    units = _units(K, directions)
    wd = [_unit_mean(wv, m) for m in units]
    totals = [0] * len(units)
    for _ in range(budget):
        best = 0
        for u in range(1, len(units)):  # strict '>' keeps the lowest index on ties
            if gain(wd[u], totals[u], kappa) > gain(wd[best], totals[best], kappa):
                best = u
        totals[best] += 1
    return spread_over_members(K, units, totals)


def marginal_gains(w, budget: int, kappa: float, directions=None) -> list[tuple[float, float]]:
    """Each unit's first N + 1 marginal gains as (gain, the unit's w), largest gain first.

    The greedy optimum takes the first N. Tests use this to find near-ties at the cut, where
    float noise may legitimately change which unit receives the last rollout.
    """
    K = len(w)
    wv = [float(v) for v in w]
    out = []
    for members in _units(K, directions):
        wd = _unit_mean(wv, members)
        out += [(gain(wd, r, kappa), wd) for r in range(budget + 1)]
    out.sort(key=lambda gw: -gw[0])
    return out


def compositions(n: int, k: int):
    """All tuples of k non-negative integers summing to n (stars and bars)."""
    for bars in itertools.combinations(range(n + k - 1), k - 1):
        prev = -1
        parts = []
        for b in (*bars, n + k - 1):
            parts.append(b - prev - 1)
            prev = b
        yield tuple(parts)


def brute_force_optimal(w, budget: int, kappa: float, directions=None, rtol: float = 1e-9):
    """Enumerate every allocation of N over K candidates.

    Returns (minimum expected failure, set of allocations within rtol of it). The objective is
    evaluated with the float64 literal product (relative error ~1e-15 for N <= 10).
    """
    K = len(w)
    values = {c: expected_failure(w, c, kappa, directions) for c in compositions(budget, K)}
    best = min(values.values())
    argmin = {c for c, v in values.items() if v <= best * (1.0 + rtol)}
    return best, argmin


def optimal(scores, budget: int, mask=None, kappa=1.0, temperature=None, directions=None):
    """The `optimal` rule: greedy over the valid set only (masked candidates are absent).

    w = scores, or softmax_V(scores / T) when a temperature is given. With directions, w_d is the
    mean over the direction's *valid* members.
    """
    K = len(scores)
    valid = _valid(mask, K)
    if temperature is None:
        w = np.asarray(scores, dtype=np.float64)
    else:
        w = _softmax_over([float(r) / temperature for r in scores], valid)
    idx = [i for i in range(K) if valid[i]]
    sub_dirs = None if directions is None else [int(directions[i]) for i in idx]
    sub = greedy_optimal([w[i] for i in idx], budget, kappa, sub_dirs)
    B = np.zeros(K, dtype=np.int64)
    B[idx] = sub
    return B
