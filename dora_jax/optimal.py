"""The exact Bayes-optimal allocation of Eq. 7 and its objective.

Model (Eq. 6): p_i ~ Beta(κ w_i, κ (1 − w_i)) independently; a candidate given B_i rollouts fails
all of them with probability (1 − p_i)^{B_i}. The expected joint failure is

    E Π_i (1 − p_i)^{B_i} = Π_i Π_{r<B_i} (κ(1 − w_i) + r) / (κ + r).

Its negative log is a sum of per-rollout gains g_i(r) = log1p(κ w_i / (κ(1 − w_i) + r)), each
non-negative and non-increasing in r, so the integer optimum takes the N largest gains (greedy
marginal allocation is exact). We find the N-th largest gain λ* without a loop over N: the number
of gains of candidate i that exceed λ has the closed form

    c_i(λ) = #{r ≥ 0 : g_i(r) > λ} = max(0, ⌈κ w_i / expm1(λ) − κ (1 − w_i)⌉),

and λ* is found by bisection over the bit patterns of non-negative floats (monotone in value), which
ends on two adjacent floats after 32 (float32) or 64 (float64) iterations whatever N and κ are.
Gains tied at λ* go to the lowest index, as a one-at-a-time greedy with lowest-index ties would.

Direction-aware version: candidates sharing a direction id share one p_d ~ Beta(κ w_d, κ(1 − w_d))
(w_d = mean of the members' w), so only the direction totals matter; we allocate the totals over
directions, then spread each total evenly over the direction's members.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from dora_jax import _checks
from dora_jax.apportion import full_mask

# log Γ(a + n) − log Γ(a) is computed as a Stirling difference from this argument on (smaller
# arguments are first shifted up by summing logs). The series stops after the z^-7 term: the
# next one is below 1/(1188·z^9) ≈ 8e-13 at z = 10.
_STIRLING_FROM = 10.0


def _bits_dtype(dtype):
    return jnp.int64 if jnp.dtype(dtype).itemsize == 8 else jnp.int32


def _gain_counts(
    lam: Float[Array, ""],
    below_zero: Bool[Array, ""],
    w: Float[Array, " K"],
    kappa: Float[Array, ""],
    budget: Int[Array, ""],
    valid: Bool[Array, " K"],
) -> Int[Array, " K"]:
    """c_i(λ) = #{r ≥ 0 : g_i(r) > λ}, capped at N; every valid candidate gets N when λ < 0."""
    em = jnp.expm1(lam)
    x = jnp.where(w > 0, kappa * w / em - kappa * (1 - w), -1)
    n = budget.astype(w.dtype)
    count = jnp.clip(jnp.ceil(jnp.where(jnp.isnan(x), n, x)), 0, n)
    count = jnp.where(below_zero, n, count)
    return jnp.where(valid, count.astype(jnp.int32), 0)


def _greedy(
    w: Float[Array, " K"],
    budget: Int[Array, ""],
    kappa: Float[Array, ""],
    valid: Bool[Array, " K"],
) -> Int[Array, " K"]:
    """The N largest gains (see module docstring); Σ = N when any candidate is valid."""
    bits = _bits_dtype(w.dtype)
    n = jnp.asarray(budget, jnp.int32)

    def counts(m):
        lam = lax.bitcast_convert_type(jnp.maximum(m, 0).astype(bits), w.dtype)
        return _gain_counts(lam, m < 0, w, kappa, n, valid)

    # The loop carries the count vectors with the bounds: the final step then reuses the very
    # values the bisection compared, so float re-evaluation (fused differently by XLA) can never
    # make Σ c(hi) exceed N or the tie window fall short of it.
    lo = jnp.asarray(-1, bits)
    hi = lax.bitcast_convert_type(jnp.asarray(jnp.inf, w.dtype), bits)
    c_lo = jnp.where(valid, n, 0)
    c_hi = jnp.zeros_like(c_lo)

    def body(_, carry):
        lo, hi, c_lo, c_hi = carry
        mid = lo + (hi - lo) // 2
        c_mid = counts(mid)
        fits = jnp.sum(c_mid, dtype=jnp.int32) <= n
        return (
            jnp.where(fits, lo, mid),
            jnp.where(fits, mid, hi),
            jnp.where(fits, c_lo, c_mid),
            jnp.where(fits, c_mid, c_hi),
        )

    carry = (lo, hi, c_lo, c_hi)
    _, _, c_lo, c_hi = lax.fori_loop(0, 8 * jnp.dtype(bits).itemsize, body, carry)
    # Converged: hi is the smallest float with Σ c(hi) ≤ N and lo its predecessor; the gains in
    # (lo, hi] are equal as floats and the N − Σ c(hi) still owed go to the lowest indices.
    tied = jnp.maximum(c_lo - c_hi, 0)
    rest = n - jnp.sum(c_hi, dtype=jnp.int32)
    before = jnp.cumsum(tied, dtype=jnp.int32) - tied
    return c_hi + jnp.clip(rest - before, 0, tied)


def _direction_members(directions: Int[Array, " K"], valid: Bool[Array, " K"]):
    """Member count of each candidate's direction and its rank among the direction's members."""
    k = directions.shape[0]
    same = (directions[:, None] == directions[None, :]) & valid[None, :]
    earlier = jnp.arange(k)[None, :] < jnp.arange(k)[:, None]
    rank = jnp.sum(same & earlier, axis=1).astype(jnp.int32)
    size = jax.ops.segment_sum(valid.astype(jnp.int32), directions, num_segments=k)
    return size, rank


def _direction_means(w, directions, valid):
    k = w.shape[0]
    size = jax.ops.segment_sum(valid.astype(w.dtype), directions, num_segments=k)
    total = jax.ops.segment_sum(jnp.where(valid, w, 0), directions, num_segments=k)
    return total / jnp.maximum(size, 1), size > 0


def optimal_counts(
    w: Float[Array, " K"],
    budget: Int[Array, ""],
    kappa: float | Float[Array, ""],
    valid: Bool[Array, " K"],
    directions: Int[Array, " K"] | None = None,
) -> Int[Array, " K"]:
    """Unchecked kernel of `optimal_allocation` (one problem; vmap at the edge)."""
    kappa = jnp.asarray(kappa, w.dtype)
    valid = valid & ~jnp.isnan(w)
    w = jnp.clip(jnp.where(valid, w, 0), 0, 1)
    if directions is None:
        return _greedy(w, budget, kappa, valid)
    w_dir, dir_valid = _direction_means(w, directions, valid)
    totals = _greedy(w_dir, budget, kappa, dir_valid)
    size, rank = _direction_members(directions, valid)
    mine, members = totals[directions], jnp.maximum(size[directions], 1)
    spread = mine // members + (rank < mine % members).astype(jnp.int32)
    return jnp.where(valid, spread, 0)


def _log_rising_ratio(a: Float[Array, " K"], n: Float[Array, " K"]) -> Float[Array, " K"]:
    """log Γ(a + n) − log Γ(a) = Σ_{r<n} log(a + r), for a ≥ 0, n ≥ 0, without cancellation.

    The first m = ⌈10 − a⌉⁺ terms (a fixed-size masked sum) bring the argument into the Stirling
    region a + m ≥ 10; the rest is a Stirling *difference* (no two O(a log a) numbers subtract).
    0 when n = 0, −inf when a = 0 < n.
    """
    shift = jnp.clip(jnp.ceil(_STIRLING_FROM - a), 0, _STIRLING_FROM)
    head_len = jnp.minimum(n, shift)
    r = jnp.arange(int(_STIRLING_FROM), dtype=a.dtype)
    terms = jnp.log(a[..., None] + r)
    head = jnp.sum(jnp.where(r < head_len[..., None], terms, 0), axis=-1)
    sa = a + shift  # ≥ 10
    rest = jnp.maximum(n - shift, 0)
    sb = sa + rest
    # lnΓ(z) = (z − ½) ln z − z + ½ ln 2π + 1/(12z) − 1/(360z³) + 1/(1260z⁵) − 1/(1680z⁷) + …
    series = (
        (1 / sb - 1 / sa) / 12
        - (1 / sb**3 - 1 / sa**3) / 360
        + (1 / sb**5 - 1 / sa**5) / 1260
        - (1 / sb**7 - 1 / sa**7) / 1680
    )
    tail = (sa - 0.5) * jnp.log1p(rest / sa) + rest * jnp.log(sb) - rest + series
    return head + tail


def log_failure_terms(
    w: Float[Array, " K"], counts: Int[Array, " K"], kappa: Float[Array, ""]
) -> Float[Array, " K"]:
    """log E(1 − p_i)^{B_i} per candidate, p_i ~ Beta(κ w_i, κ(1 − w_i))."""
    n = counts.astype(w.dtype)
    kappa = jnp.asarray(kappa, w.dtype)
    return _log_rising_ratio(kappa * (1 - w), n) - _log_rising_ratio(kappa + 0 * w, n)


def log_expected_failure_kernel(w, counts, kappa, valid, directions=None):
    w = jnp.clip(jnp.where(valid, w, 0), 0, 1)
    counts = jnp.where(valid, counts, 0)
    if directions is not None:
        k = w.shape[0]
        w, _ = _direction_means(w, directions, valid)
        counts = jax.ops.segment_sum(counts, directions, num_segments=k)
    return jnp.sum(log_failure_terms(w, counts, kappa))


# Compiled once per shape; inlined when the caller is itself under jit.
_optimal_compiled = jax.jit(optimal_counts)
_log_expected_failure_compiled = jax.jit(log_expected_failure_kernel)


def _prepare(w, budget, kappa, directions, mask, *, need_budget=True):
    w = jnp.asarray(w)
    if not jnp.issubdtype(w.dtype, jnp.floating):
        w = w.astype(jnp.result_type(float))
    if w.ndim != 1 or w.shape[0] == 0:
        raise ValueError(f"w must have shape [K] with K >= 1, got {tuple(w.shape)}")
    k = w.shape[0]
    _checks.check_probabilities("w", w)
    _checks.check_positive("kappa", kappa)
    if need_budget:
        _checks.check_budget(budget)
    mask = full_mask(k) if mask is None else jnp.asarray(mask, dtype=bool)
    _checks.check_mask(mask, k)
    if directions is not None:
        directions = jnp.asarray(directions)
        _checks.check_ids("directions", directions, k)
        directions = directions.astype(jnp.int32)
    return w, mask, directions


def optimal_allocation(
    w: Float[Array, " K"],
    budget: int | Int[Array, ""],
    *,
    kappa: float | Float[Array, ""],
    directions: Int[Array, " K"] | None = None,
    mask: Bool[Array, " K"] | None = None,
) -> Int[Array, " K"]:
    """The allocation minimizing the expected joint failure under the Beta model (Eq. 7).

    Exact for integers (greedy on separable, diminishing gains), vectorized: the cost is
    O(K · bits of the float type), independent of N; no overflow for any κ > 0.

    Args:
      w: Float[K], prior mean success probabilities in [0, 1] (E p_i = w_i).
      budget: N ≥ 1.
      kappa: the Beta concentration κ > 0 (confidence in the PRM).
      directions: optional Int[K] ids in [0, K); candidates with one id share one p (w_d = mean
        of the members' w). Totals are optimized per direction and spread evenly within it.
      mask: optional Bool[K] of valid candidates; masked ones get 0.

    Returns:
      Int[K] (int32) with Σ = N. Ties between equal gains go to the lower index.
    """
    w, mask, directions = _prepare(w, budget, kappa, directions, mask)
    return _optimal_compiled(w, jnp.asarray(budget, jnp.int32), kappa, mask, directions)


def log_expected_failure(
    w: Float[Array, " K"],
    allocation: Int[Array, " K"],
    *,
    kappa: float | Float[Array, ""],
    directions: Int[Array, " K"] | None = None,
    mask: Bool[Array, " K"] | None = None,
) -> Float[Array, ""]:
    """log E Π (1 − p_i)^{B_i} exactly (log-gamma differences; see `expected_failure`)."""
    w, mask, directions = _prepare(w, None, kappa, directions, mask, need_budget=False)
    allocation = jnp.asarray(allocation)
    _checks.check_shape("allocation", allocation, (w.shape[0],), 1)
    a = _checks.concrete(allocation)
    if a is not None and (a < 0).any():
        raise ValueError("allocation must be non-negative")
    return _log_expected_failure_compiled(w, allocation, kappa, mask, directions)


def expected_failure(
    w: Float[Array, " K"],
    allocation: Int[Array, " K"],
    *,
    kappa: float | Float[Array, ""],
    directions: Int[Array, " K"] | None = None,
    mask: Bool[Array, " K"] | None = None,
) -> Float[Array, ""]:
    """E Π_i (1 − p_i)^{B_i} for p_i ~ Beta(κ w_i, κ(1 − w_i)) (Eqs. 5–7), exactly.

    Π_i Π_{r<B_i} (κ(1−w_i)+r)/(κ+r) evaluated as exp of log-gamma differences: a short sum of
    logs up to argument 10, then a Stirling difference, so no κ or B loses precision (relative
    error ~1e-12 in float64). With `directions`,
    candidates sharing an id share one p (w_d = mean of members' w, B_d = Σ of members' B).
    1 − expected_failure is the probability that at least one rollout succeeds.
    """
    return jnp.exp(
        log_expected_failure(w, allocation, kappa=kappa, directions=directions, mask=mask)
    )
