r"""Reasoning directions as a posterior, and the Bayes allocation over uncertain directions.

DORA (Eqs. 10–13) treats directions as known up to a soft count γ; the exact direction-aware
optimum (`dora_jax.optimal`) needs them as hard ids. Here both are replaced by a posterior over
the partition of the K candidates of ONE search step, and the allocation minimizes the expected
failure averaged over that posterior. Everything is written for one problem; vmap at the edge.

Model
-----
Candidate i has a unit embedding e_i (Float[K, E]; rows are renormalized, a zero row stays zero)
and a PRM score w_i ∈ [0, 1]; ℓ_i = logit(w_i) (clipped to [1e-6, 1 − 1e-6]).

* Partition: z ~ CRP(α), truncated at T = K directions (every candidate can open its own).
* Embeddings: von Mises–Fisher-type likelihood log p(e_i | z_i = d) = ρ·e_i·ē_d + const, where
  ē_d is the members' *mean* embedding, not renormalized: ρ·e_i·ē_d = ρ·(mean cosine of i to d's
  members), i.e. a vMF with concentration ρ·R̄_d (R̄_d = |ē_d|, the mean resultant length: tight
  directions are more concentrated). Why not the unit mean with one shared concentration: the
  cosine of a member to the unit mean grows with the direction's size (a pair of paraphrases at
  cosine c is at c, a large direction's members at ≈ √c), so a fixed threshold on it cannot both
  merge pairs and keep a large direction's near neighbours out; the mean cosine stays ≈ c for
  every size. The direction means are point estimates (variational EM): a fully Bayesian mean
  under a uniform prior adds an Occam factor ≈ (E − 1)/2·log ρ that would make the merge
  threshold depend on the embedding width (E = 32 in the world, 1024 for BGE-M3).
* Scores: each direction has one PRM reading m_d (logit scale); members' scores are paraphrase
  jitter around it, ℓ_i | z_i = d ~ N(m_d, τ²). In the synthetic world a direction's copies have
  exactly one score, while sibling directions' scores differ, so this is strong evidence.
* Success: p_d | m_d ~ Beta(κ w̄_d, κ(1 − w̄_d)) (Eq. 6 for the direction, w̄_d = the members' mean
  score). The k members' scores are k readings of the *one* partial solution, not k independent
  observations of p_d, so κ does not grow with k (the τ-jitter around m_d is ignored: exact as
  τ → 0).
* α is tied to ρ by a merge cosine c₀: α = exp(−ρ(1 − c₀)) (the small-variance coupling of
  DP-means / DP-vMF-means), so c₀ and ρ have one meaning each: c₀ where a candidate switches
  between joining and opening a direction, ρ how sharp the switch is.

Inference (collapsed mean-field, CVB0-style, fixed trip count)
--------------------------------------------------------------
q(z) = Π_i q(z_i = t) = Π_i r_it over slots t = 0..K−1; slot t is anchored at candidate t (only
t can open it). With leave-one-out expected counts and sums

    N_t^{−i} = Σ_{j≠i} r_jt,   ē_t^{−i} = Σ_{j≠i} r_jt e_j / N_t^{−i},
    m_t^{−i} = Σ_{j≠i} r_jt ℓ_j / N_t^{−i},

the update of candidate i is the collapsed-Gibbs conditional of the CRP taken in expectation
(Kurihara, Welling & Teh 2007; MAP-DP, Raykov et al. 2016):

    log r_it = log N_t^{−i} + ρ e_i·ē_t^{−i} − (ℓ_i − m_t^{−i})²/(2τ²)         (join slot t)
    log r_ii = logaddexp(that, log α + ρ) = logaddexp(that, ρ c₀)             (or open one's own)

normalized over t (slots with N_t^{−i} ≤ 1e-3 cannot be joined). A new direction's mean is the
candidate itself (cosine 1, score mismatch 0). So i joins direction t instead of staying alone
roughly when  mean-cosine > c₀ − log(N_t^{−i})/ρ + (score mismatch)/ρ.

The first sweep is sequential (Gauss–Seidel) in decreasing-score order (ties: lower index), from
an empty partition: a soft DP-means pass. Simultaneous (Jacobi) updates from singletons would swap
pairs back and forth and end in label-switched half-assignments (co-assignment ½ for a sure pair).
A sequential pass can split one direction over two slots (its early members happened to be a
borderline pair); the per-candidate update then barely moves them, since the log-count advantage
is smaller than the noise ρ·Δ(mean cosine). So `iterations` rounds follow, each a merge move and
one simultaneous update of all rows. The merge move scores the joint objective the updates climb,

    L(z) = Σ_d [log α + log Γ(n_d) + ρ |Σ_{i∈d} e_i|²/n_d − Σ_{i∈d} (ℓ_i − m_d)²/(2τ²)],

(ρ|Σe|²/n = ρ(1 + (n − 1)·mean pairwise cosine): the sequential-predictive likelihood of the rule
above), whose change when slot u joins slot t is the CRP term plus Ward's criterion,

    ΔL = ρ(1 − c₀) + log Γ(n_t + n_u) − log Γ(n_t) − log Γ(n_u)
         − n_t n_u/(n_t + n_u) · [ρ |ē_t − ē_u|² + (m_t − m_u)²/(2τ²)];

every slot u proposes its nearest larger slot (Ward), and the best proposal to each slot that
stays is accepted when ΔL > 0 (soft counts and means; at most one merge into a slot per round).
Cost: K sequential O(T·E) steps, then per round O(K·T·E) matmuls and O(K·T) elementwise work.

Outputs: responsibilities r (Float[K, T]), co-assignment C_ij = Σ_t r_it r_jt (C_ii = 1), the MAP
assignment argmax_t r_it, and S assignment samples z_i ~ Cat(r_i) independently (mean-field;
inverse-CDF draws).

Defaults (world.py geometry, E = 32)
------------------------------------
Copies of one node ("paraphrases") have cosine c_w (0.998 in "paper-like", "independent" and
"redundant", 0.9 in "paraphrase"; s.d. ≈ (1 − c_w)/√(E − 1) ≈ 0.018 at 0.9). Distinct directions
are NOT near-orthogonal there: the node vectors of siblings have cosine ≈ ρ_pc² = 0.9025 (cousins
0.815), so copies of sibling nodes are at ≈ c_w·0.9025 (0.90 at c_w = 0.998, 0.81 at c_w = 0.9).
The default c₀ = 0.855 merges paraphrases at cosine 0.9 (2.5 s.d. above c₀) and keeps
"paraphrase"-preset siblings (0.81) apart; ρ = 200 makes the switch ±0.015 wide (the posterior
is soft only there) and keeps the CRP's rich-get-richer bonus log(N)/ρ ≤ 0.028 for K ≤ 256.
τ = 0.02 logits: a direction's copies share one score in the world (Theorem 1's premise).
In the c_w = 0.998 presets, siblings at 0.90 are as close as "paraphrase"-preset paraphrases:
no single c₀ serves both, and with c₀ = 0.855 only score differences keep siblings apart, which
fails where many siblings have nearly equal scores (measured: MAP-assignment ARI median 0.77 on
"paper-like"). With the world's parameters known, use c₀ = c_w(1 + ρ_pc²)/2, midway between
paraphrases and siblings: 0.949 for the c_w = 0.998 presets (ARI median 1.00, min 0.99), 0.856
for "paraphrase" (median 0.997, min 0.88; 256 copies after 1–3 steps, 12 problems each).

The Bayes allocation
--------------------
Given S assignment samples z⁽ˢ⁾, minimize

    P_fail(B) = (1/S) Σ_s Π_d E(1 − p_d)^{B_d⁽ˢ⁾},   B_d⁽ˢ⁾ = Σ_{i: z_i⁽ˢ⁾ = d} B_i,

by greedy marginal allocation: N times, give one rollout to the valid candidate whose rollout
lowers P_fail the most, Δ_i = Σ_s F_s (1 − f_{s, z_i⁽ˢ⁾}), with F_s the sample's current failure
and f_{s,d} = (κ(1 − w̄_d) + B_d)/(κ + B_d) = exp(−g_d(B_d)) the factor of one more rollout (g is
the gain of `dora_jax.optimal`). Ties: fewer rollouts so far, then higher score, then lower index.
For one sample (or S equal samples) the objective is separable over directions with diminishing
gains, so greedy is exact: it equals `optimal_allocation(w, N, kappa=κ, directions=z)` up to how
equal-gain ties are broken (within a direction the extras go to the higher-scored members; with
equal scores, to the lower indices, as in the core). Over disagreeing samples it is a heuristic
(the sample mixture is not separable). Cost: N sequential steps of O(S·K).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from dora_jax.apportion import rank_descending
from dora_jax.optimal import _direction_means, log_expected_failure_kernel, optimal_counts

__all__ = [
    "CONCENTRATION",
    "ITERATIONS",
    "MERGE_COSINE",
    "NUM_SAMPLES",
    "SCORE_SCALE",
    "DirectionPosterior",
    "bayes_allocation",
    "direction_posterior",
    "map_directions",
    "sample_average_failure",
    "sample_directions",
]

# Defaults (see "Defaults" in the module docstring).
CONCENTRATION = 200.0  # ρ: sharpness of the join/open switch, per unit of cosine
MERGE_COSINE = 0.855  # c₀: mean cosine at which joining and opening a direction tie
SCORE_SCALE = 0.02  # τ: paraphrase jitter of a direction's PRM score, in logits
ITERATIONS = 3  # rounds of (merge moves, simultaneous update) after the sequential sweep
NUM_SAMPLES = 16  # posterior assignment samples averaged by the allocation

# A slot holding less than this expected mass (besides the candidate updated) cannot be joined:
# below it the leave-one-out means are rounding noise.
_MIN_MASS = 1e-3
# Scores are clipped to [_CLIP, 1 − _CLIP] before the logit (world.py uses the same clip).
_CLIP = 1e-6


class DirectionPosterior(NamedTuple):
    """The mean-field posterior over the directions of K candidates (one problem).

    Attributes:
      responsibilities: Float[K, T] (T = K slots), q(z_i = t); rows of masked candidates are 0.
      co_assignment: Float[K, K], P(i and j share a direction) = Σ_t r_it r_jt; 1 on the
        diagonal of valid candidates, 0 in the rows and columns of masked ones.
      valid: Bool[K], the candidates that took part.
    """

    responsibilities: Float[Array, "K T"]
    co_assignment: Float[Array, "K K"]
    valid: Bool[Array, " K"]


def _unit_rows(embeddings: Float[Array, "K E"]) -> Float[Array, "K E"]:
    norm = jnp.linalg.norm(embeddings, axis=-1, keepdims=True)
    return embeddings / jnp.where(norm > 0, norm, 1)


class _Evidence(NamedTuple):
    """What the posterior's updates read, in processing order (see `direction_posterior`)."""

    unit: Float[Array, "K E"]  # unit embeddings (0 rows: masked or zero)
    ell: Float[Array, " K"]  # score logits ℓ
    valid: Bool[Array, " K"]
    self_dot: Float[Array, " K"]  # e_i·e_i: 1, or 0 for a zero embedding
    rho: Float[Array, ""]  # concentration ρ
    open_logit: Float[Array, ""]  # log α + ρ = ρ·c₀
    half_precision: Float[Array, ""]  # 1/(2τ²)


def _logits(ev: _Evidence, n_loo, dot_loo, ell_loo, ell_i, own):
    """log q(z_i = t) up to a constant, from leave-one-out slot statistics ([..., T])."""
    joinable = n_loo > _MIN_MASS
    n_safe = jnp.where(joinable, n_loo, 1)
    mean_l = ell_loo / n_safe
    join = (
        jnp.log(n_safe) + ev.rho * dot_loo / n_safe - ev.half_precision * jnp.square(ell_i - mean_l)
    )
    out = jnp.where(joinable, join, -jnp.inf)
    return jnp.where(own, jnp.logaddexp(out, ev.open_logit), out)


def _first_sweep(ev: _Evidence, carry, j):
    """The sequential (Gauss–Seidel) pass: candidate j joins or opens a slot given rows < j."""
    total_e, count, total_l = carry
    slots = jnp.arange(ev.unit.shape[0])
    e, li = ev.unit[j], ev.ell[j]
    new = jax.nn.softmax(_logits(ev, count, total_e @ e, total_l, li, slots == j))
    new = jnp.where(ev.valid[j], new, 0)
    carry = (total_e + new[:, None] * e[None, :], count + new, total_l + new * li)
    return carry, new


def _slot_stats(ev: _Evidence, r):
    """N_t, Σ_i r_it e_i, Σ_i r_it ℓ_i."""
    return jnp.sum(r, axis=0), r.T @ ev.unit, r.T @ ev.ell


def _merge(ev: _Evidence, r, count, total_e, total_l):
    """Merge moves: slot u joins its nearest senior slot t when that raises the joint
    (CRP + Ward) objective; at most one slot joins each t per round (gathers, no scatter)."""
    k = r.shape[0]
    slots = jnp.arange(k)
    rho, open_logit = ev.rho, ev.open_logit
    occupied = count > _MIN_MASS
    n = jnp.where(occupied, count, 1)
    mean_e = total_e / n[:, None]
    mean_l = total_l / n
    sq = jnp.sum(jnp.square(mean_e), axis=1)
    dist = sq[:, None] + sq[None, :] - 2 * mean_e @ mean_e.T
    misfit = rho * dist + ev.half_precision * jnp.square(mean_l[:, None] - mean_l[None, :])
    ward = n[:, None] * n[None, :] / (n[:, None] + n[None, :]) * misfit
    senior = (n[None, :] > n[:, None]) | (
        (n[None, :] == n[:, None]) & (slots[None, :] < slots[:, None])
    )
    ward = jnp.where(occupied[:, None] & occupied[None, :] & senior, ward, jnp.inf)
    best = jnp.argmin(ward, axis=1)
    nb = n[best]
    crp = lax.lgamma(n + nb) - lax.lgamma(n) - lax.lgamma(nb)
    gain = rho - open_logit + crp - jnp.min(ward, axis=1)  # ΔL of merging u into best(u)
    wants = gain > 0
    offers = jnp.where(wants[:, None] & (best[:, None] == slots[None, :]), gain[:, None], -1)
    source = jnp.argmax(offers, axis=0)  # the best slot offering to join t
    moved = wants & (source[best] == slots) & ~wants[best]
    gains = moved[source] & (best[source] == slots)  # (no offer: source is arbitrary)
    move = functools.partial(_move_mass, moved=moved, gains=gains, source=source)
    return move(r, 1), move(count, 0), move(total_e, 0), move(total_l, 0)


def _move_mass(x, axis, *, moved, gains, source):
    """Moves the mass of the moved slots (along `axis`) onto their targets."""
    shape = [1] * x.ndim
    shape[axis] = moved.shape[0]
    keep = jnp.where(moved.reshape(shape), 0, x)
    return keep + jnp.where(gains.reshape(shape), jnp.take(x, source, axis=axis), 0)


def _refine(ev: _Evidence, r, count, total_e, total_l):
    """One simultaneous update of every row from the current leave-one-out statistics."""
    slots = jnp.arange(r.shape[0])
    n_loo = count[None, :] - r
    dot_loo = ev.unit @ total_e.T - r * ev.self_dot[:, None]
    ell_loo = total_l[None, :] - r * ev.ell[:, None]
    own = slots[:, None] == slots[None, :]
    new = jax.nn.softmax(_logits(ev, n_loo, dot_loo, ell_loo, ev.ell[:, None], own), axis=1)
    return jnp.where(ev.valid[:, None], new, 0)


def direction_posterior(
    scores: Float[Array, " K"],
    embeddings: Float[Array, "K E"],
    *,
    mask: Bool[Array, " K"],
    concentration: float | Float[Array, ""] = CONCENTRATION,
    merge_cosine: float | Float[Array, ""] = MERGE_COSINE,
    score_scale: float | Float[Array, ""] = SCORE_SCALE,
    iterations: int = ITERATIONS,
) -> DirectionPosterior:
    """q(directions | embeddings, scores) by collapsed mean-field CRP–vMF updates (module doc).

    Args:
      scores: Float[K], PRM scores in [0, 1] (NaN = masked).
      embeddings: Float[K, E], candidate embeddings (renormalized to unit rows).
      mask: Bool[K], valid candidates.
      concentration: ρ > 0, sharpness per unit of mean cosine.
      merge_cosine: c₀, the mean cosine where joining and opening a direction tie
        (α = exp(−ρ(1 − c₀))).
      score_scale: τ > 0, the score jitter within a direction in logits (inf: ignore scores).
      iterations: rounds of merge moves + simultaneous updates after the first sweep (static).

    Returns:
      DirectionPosterior.
    """
    scores, embeddings, mask = jnp.asarray(scores), jnp.asarray(embeddings), jnp.asarray(mask)
    k = scores.shape[0]
    dtype = scores.dtype if jnp.issubdtype(scores.dtype, jnp.floating) else jnp.float32
    valid = mask & ~jnp.isnan(scores)
    # Work in processing order (decreasing score, ties: lower index), so that the sequential
    # sweep touches row j at step j: an index shared by the whole batch under vmap.
    order = jnp.argsort(rank_descending(scores, valid))
    valid_o = valid[order]
    unit = jnp.where(valid_o[:, None], _unit_rows(embeddings.astype(dtype)[order]), 0)
    w = jnp.clip(jnp.where(valid_o, scores.astype(dtype)[order], 0.5), _CLIP, 1 - _CLIP)
    ell = jnp.where(valid_o, jnp.log(w) - jnp.log1p(-w), 0)
    rho = jnp.asarray(concentration, dtype)
    open_logit = rho * jnp.asarray(merge_cosine, dtype)  # log α + ρ·1
    half_precision = 0.5 / jnp.square(jnp.asarray(score_scale, dtype))
    slots = jnp.arange(k)
    self_dot = jnp.sum(jnp.square(unit), axis=1)  # 1, or 0 for a zero embedding

    ev = _Evidence(unit, ell, valid_o, self_dot, rho, open_logit, half_precision)
    zeros = jnp.zeros((k,), dtype)
    start = (jnp.zeros((k, unit.shape[1]), dtype), zeros, zeros)
    _, r = lax.scan(functools.partial(_first_sweep, ev), start, slots)
    r = lax.fori_loop(
        0, iterations, lambda _, r: _refine(ev, *_merge(ev, r, *_slot_stats(ev, r))), r
    )
    back = jnp.argsort(order)
    r = r[back][:, back]
    co = r @ r.T
    co = jnp.where(jnp.eye(k, dtype=bool) & valid[:, None], 1, co)
    co = jnp.where(valid[:, None] & valid[None, :], jnp.clip(co, 0, 1), 0)
    return DirectionPosterior(responsibilities=r, co_assignment=co, valid=valid)


def map_directions(posterior: DirectionPosterior) -> Int[Array, " K"]:
    """The MAP assignment argmax_t q(z_i = t) (ties: lower slot); masked i get id i."""
    k = posterior.valid.shape[0]
    best = jnp.argmax(posterior.responsibilities, axis=1).astype(jnp.int32)
    return jnp.where(posterior.valid, best, jnp.arange(k, dtype=jnp.int32))


def sample_directions(
    key: PRNGKeyArray, posterior: DirectionPosterior, num_samples: int
) -> Int[Array, "S K"]:
    """S assignments z_i ~ Cat(q(z_i)) drawn independently (mean-field); masked i get id i.

    Args:
      key: a PRNG key.
      posterior: DirectionPosterior of one problem.
      num_samples: S (static).

    Returns:
      Int[S, K] direction ids in [0, K).
    """
    k = posterior.valid.shape[0]
    # Inverse-CDF sampling: S·K uniforms (Gumbel-max would draw S·K·T).
    cdf = jnp.cumsum(posterior.responsibilities, axis=1)
    u = jax.random.uniform(key, (num_samples, k), dtype=cdf.dtype) * cdf[:, -1]
    z = jnp.minimum(jnp.sum(cdf <= u[:, :, None], axis=-1, dtype=jnp.int32), k - 1)
    return jnp.where(posterior.valid, z, jnp.arange(k, dtype=jnp.int32))


def _greedy_over_samples(
    w: Float[Array, " K"],
    budget: Int[Array, ""],
    kappa: Float[Array, ""],
    valid: Bool[Array, " K"],
    z: Int[Array, "S K"],
    rank: Int[Array, " K"],
) -> Int[Array, " K"]:
    """Greedy minimization of the sample-averaged expected failure (module doc).

    The loop carries, per sample s and candidate i, log f and 1 − f of the direction z_i⁽ˢ⁾ (one
    more rollout's failure factor), so a step is a few O(S·K) passes and no gather over T.
    """
    k = z.shape[1]
    w = jnp.clip(jnp.where(valid, w, 0), 0, 1)
    w_dir = jax.vmap(lambda zs: _direction_means(w, zs, valid)[0])(z)  # [S, T]
    w_z = jnp.take_along_axis(w_dir, z, axis=1)  # [S, K]: w̄ of each candidate's direction

    def log_factor(wd, taken):  # log f = −g(B): the failure factor of one more rollout
        return -jnp.log1p(kappa * wd / (kappa * (1 - wd) + taken.astype(wd.dtype)))

    def body(_, carry):
        counts, log_fail, log_f, gain = carry
        top = jnp.max(log_fail)
        scale = jnp.where(
            log_fail > -jnp.inf, jnp.exp(log_fail - jnp.where(top > -jnp.inf, top, 0)), 0
        )
        delta = jnp.where(valid, scale @ gain, -jnp.inf)  # Δ_i up to the factor e^top
        tied = valid & (delta == jnp.max(delta))
        tied &= counts == jnp.min(jnp.where(tied, counts, jnp.iinfo(jnp.int32).max))
        i = jnp.argmin(jnp.where(tied, rank, k))
        counts = counts.at[i].add(1)
        same = z == z[:, i][:, None]  # [S, K]: members of i's direction in each sample
        taken = jnp.sum(jnp.where(same, counts, 0), axis=1)
        log_fail = log_fail + log_f[:, i]
        new_log_f = log_factor(w_z[:, i], taken)[:, None]
        log_f = jnp.where(same, new_log_f, log_f)
        gain = jnp.where(same, -jnp.expm1(new_log_f), gain)
        return counts, log_fail, log_f, gain

    log_f = log_factor(w_z, jnp.zeros_like(z))
    carry = (jnp.zeros((k,), jnp.int32), jnp.zeros(z.shape[:1], w.dtype), log_f, -jnp.expm1(log_f))
    counts = lax.fori_loop(0, jnp.asarray(budget, jnp.int32), body, carry)[0]
    return jnp.where(valid, counts, 0)


def bayes_allocation(
    key: PRNGKeyArray | None,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
    kappa: float | Float[Array, ""] = 1.0,
    num_samples: int = NUM_SAMPLES,
    concentration: float | Float[Array, ""] = CONCENTRATION,
    merge_cosine: float | Float[Array, ""] = MERGE_COSINE,
    score_scale: float | Float[Array, ""] = SCORE_SCALE,
    iterations: int = ITERATIONS,
) -> Int[Array, " K"]:
    """Eq. 7 with direction-shared p_d, averaged over the direction posterior (module doc).

    Args:
      key: PRNG key for the S posterior samples; None: the MAP assignment alone (S = 1,
        deterministic; ties to the lower index).
      scores: Float[K], PRM scores = prior means w in [0, 1].
      budget: N ≥ 1 (may be traced).
      mask: Bool[K], valid candidates; masked ones get 0.
      embeddings: Float[K, E]; None: every candidate is its own direction (the direction-free
        optimum of `dora_jax.optimal_allocation`).
      kappa: κ > 0, the PRM reliability of Eq. 6 (may be traced).
      num_samples: S (static), used when a key is given.
      concentration, merge_cosine, score_scale, iterations: the posterior's (`direction_posterior`).

    Returns:
      Int[K] (int32), ≥ 0, 0 where masked, Σ = N (0 everywhere if all are masked).
    """
    scores, mask = jnp.asarray(scores), jnp.asarray(mask)
    valid = mask & ~jnp.isnan(scores)
    w = jnp.where(valid, scores, 0)
    kappa = jnp.asarray(kappa, w.dtype)
    if embeddings is None:
        return optimal_counts(w, budget, kappa, valid)
    posterior = direction_posterior(
        scores,
        embeddings,
        mask=valid,
        concentration=concentration,
        merge_cosine=merge_cosine,
        score_scale=score_scale,
        iterations=iterations,
    )
    if key is None:
        z = map_directions(posterior)[None]
    else:
        z = sample_directions(key, posterior, num_samples)
    rank = rank_descending(scores, valid)
    return _greedy_over_samples(w, budget, kappa, valid, z, rank)


def sample_average_failure(
    w: Float[Array, " K"],
    counts: Int[Array, " K"],
    directions: Int[Array, "S K"],
    *,
    kappa: float | Float[Array, ""],
    mask: Bool[Array, " K"],
) -> Float[Array, ""]:
    """(1/S) Σ_s E Π_d (1 − p_d)^{B_d⁽ˢ⁾}: the objective of `bayes_allocation`, exactly.

    Each term is `dora_jax.expected_failure(w, counts, kappa=κ, directions=z⁽ˢ⁾, mask=mask)`.
    """
    kappa = jnp.asarray(kappa, w.dtype)
    logs = jax.vmap(lambda z: log_expected_failure_kernel(w, counts, kappa, mask, z))(directions)
    return jnp.mean(jnp.exp(logs))
