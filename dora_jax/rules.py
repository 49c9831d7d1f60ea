"""The paper's allocation rules as pure JAX kernels for ONE problem (vmap at the edge).

Every rule has the signature `rule(key, scores, budget, *, mask, embeddings, **hyperparameters)`
and returns Int[K] counts, 0 where masked, summing to exactly N. `key` only breaks ties (None:
ties go to the lower index). Inputs are assumed checked (`dora_jax.allocate` checks them when
called eagerly). The generalizations beyond the paper's K = N, M | N case are specified in
docs/allocation.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from dora_jax.apportion import apportion_shares, normalize, rank_descending
from dora_jax.optimal import optimal_counts

# The paper's defaults (App. D.1).
BEAM_WIDTH = 4
REBASE_TEMPERATURE = 0.1
SIMILARITY_TEMPERATURE = 0.01
PREFILTERS = ("none", "rebase_round")


def _masked_softmax(logits: Float[Array, " K"], mask: Bool[Array, " K"]) -> Float[Array, " K"]:
    return normalize(jax.nn.softmax(jnp.where(mask, logits, -jnp.inf)), mask)


def _evenly(budget, slots: Int[Array, " K"], chosen: Bool[Array, " K"]) -> Int[Array, " K"]:
    """N spread evenly over the chosen candidates; slot s < N mod n gets one extra."""
    n = jnp.asarray(budget, jnp.int32)
    count = jnp.maximum(jnp.sum(chosen), 1).astype(jnp.int32)
    share = n // count + (slots < n % count).astype(jnp.int32)
    return jnp.where(chosen, share, 0)


# --- temperature sampling (Eq. 1) ---------------------------------------------------------


def uniform_weights(scores: Float[Array, " K"], *, mask: Bool[Array, " K"]) -> Float[Array, " K"]:
    return normalize(jnp.ones_like(scores), mask)


def temperature_sampling(
    key: PRNGKeyArray | None,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
) -> Int[Array, " K"]:
    """Eq. 1 generalized: N spread uniformly (⌊N/K_v⌋ each, extras to the lowest indices)."""
    del embeddings
    return apportion_shares(uniform_weights(scores, mask=mask), budget, mask, key=key)


# --- beam search (Eq. 2) -------------------------------------------------------------------


def beam_search(
    key: PRNGKeyArray | None,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
    beam_width: int = BEAM_WIDTH,
) -> Int[Array, " K"]:
    """Eq. 2: the top n_b = min(max(⌊N/M⌋, 1), K_v) by score share N evenly (M each if M | N)."""
    del embeddings
    rank = rank_descending(scores, mask, key)
    n = jnp.asarray(budget, jnp.int32)
    beams = jnp.clip(n // beam_width, 1, jnp.sum(mask, dtype=jnp.int32))
    return _evenly(n, rank, mask & (rank < beams))


# --- DVTS (Eq. 3) --------------------------------------------------------------------------


def dvts(
    key: PRNGKeyArray | None,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
    beam_width: int = BEAM_WIDTH,
    groups: Int[Array, " K"] | None = None,
) -> Int[Array, " K"]:
    """Eq. 3: the best member of each non-empty group shares N evenly with the other groups'.

    Groups are subtree ids in [0, K) (default i // M: consecutive blocks of M candidates);
    extras go to the lowest group ids.
    """
    del embeddings
    k = scores.shape[0]
    if groups is None:
        groups = jnp.arange(k, dtype=jnp.int32) // beam_width
    rank = rank_descending(scores, mask, key)
    best = jax.ops.segment_min(jnp.where(mask, rank, k), groups, num_segments=k)
    leader = mask & (rank == best[groups])
    # A group id with no member must count as absent (segment_max would give INT32_MIN there).
    present = (jax.ops.segment_sum(leader.astype(jnp.int32), groups, num_segments=k) > 0).astype(
        jnp.int32
    )
    position = (jnp.cumsum(present, dtype=jnp.int32) - present)[groups]
    return _evenly(budget, position, leader)


# --- REBASE (Eq. 4) ------------------------------------------------------------------------


def rebase_weights(
    scores: Float[Array, " K"],
    *,
    mask: Bool[Array, " K"],
    temperature: float | Float[Array, ""] = REBASE_TEMPERATURE,
) -> Float[Array, " K"]:
    """w = softmax(R / T_b) over the valid candidates (Eq. 4)."""
    return _masked_softmax(scores / temperature, mask)


def rebase(
    key: PRNGKeyArray | None,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
    temperature: float | Float[Array, ""] = REBASE_TEMPERATURE,
    rounding: str = "hamilton",
) -> Int[Array, " K"]:
    """Eq. 4: B = apportion(N · softmax(R / T_b))."""
    del embeddings
    shares = rebase_weights(scores, mask=mask, temperature=temperature)
    return apportion_shares(shares, budget, mask, rounding=rounding, key=key)


# --- DORA (Eqs. 10–13) ---------------------------------------------------------------------


def cosine_similarity(embeddings: Float[Array, "K E"]) -> Float[Array, "K K"]:
    """S_ij = cos(e_i, e_j) (Eq. 10), clipped to [−1, 1], with S_ii = 1 exactly."""
    norm = jnp.linalg.norm(embeddings, axis=-1, keepdims=True)
    unit = embeddings / jnp.where(norm > 0, norm, 1)
    sim = jnp.clip(unit @ unit.T, -1, 1)
    return jnp.where(jnp.eye(embeddings.shape[0], dtype=bool), 1, sim)


def log_uniqueness(
    embeddings: Float[Array, "K E"] | None,
    keep: Bool[Array, " K"],
    similarity_temperature: float | Float[Array, ""],
) -> Float[Array, " K"]:
    """log γ_i = log diag(rowsoftmax(S / T_s))_i over the kept set (Eq. 11), stably, for the kept
    candidates i (0 for the others, whose γ no rule reads).

    Since S_ii = 1 is each row's maximum (S is clipped to [−1, 1]), γ_i = 1 / Σ_{j kept}
    exp((S_ij − 1) / T_s): every exponent is ≤ 0, so there is no overflow at T_s = 0.01, the term
    j = i is exactly 1, so a kept row's sum is ≥ 1 (no underflow), and γ_i ∈ [1/|kept|, 1]. This is
    a log-sum-exp whose maximum is known to be 0, so it needs no max pass (the same bits as one
    with it). No embeddings: γ = 1.
    """
    if embeddings is None:
        return jnp.zeros(keep.shape, dtype=jnp.result_type(float))
    sim = cosine_similarity(embeddings)
    logits = jnp.where(keep[None, :], (sim - 1) / similarity_temperature, -jnp.inf)
    return jnp.where(keep, -jnp.log(jnp.sum(jnp.exp(logits), axis=1)), 0)


def dora_keep(
    scores: Float[Array, " K"],
    budget: Int[Array, ""] | None,
    *,
    mask: Bool[Array, " K"],
    temperature: float | Float[Array, ""],
    prefilter: str,
) -> Bool[Array, " K"]:
    """The candidates DORA reweights: all valid ones, or the official code's REBASE survivors."""
    if prefilter == "none":
        return mask
    n = jnp.asarray(budget, jnp.int32).astype(scores.dtype)
    rounded = jnp.round(n * rebase_weights(scores, mask=mask, temperature=temperature))
    keep = mask & (rounded > 0)
    return jnp.where(jnp.any(keep), keep, mask)


def _dora_shares(scores, budget, mask, embeddings, temperature, similarity_temperature, prefilter):
    keep = dora_keep(scores, budget, mask=mask, temperature=temperature, prefilter=prefilter)
    log_gamma = log_uniqueness(embeddings, keep, similarity_temperature)
    return _masked_softmax(scores / temperature + log_gamma.astype(scores.dtype), keep), keep


def dora_weights(
    scores: Float[Array, " K"],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
    budget: Int[Array, ""] | None = None,
    temperature: float | Float[Array, ""] = REBASE_TEMPERATURE,
    similarity_temperature: float | Float[Array, ""] = SIMILARITY_TEMPERATURE,
    prefilter: str = "none",
) -> Float[Array, " K"]:
    """w'_i ∝ softmax(R / T_b)_i · γ_i over the kept set (Eq. 12), as a softmax of R/T_b + log γ.

    The `rebase_round` pre-filter depends on N, so it needs `budget`.
    """
    shares, _ = _dora_shares(
        scores, budget, mask, embeddings, temperature, similarity_temperature, prefilter
    )
    return shares


def dora(
    key: PRNGKeyArray | None,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
    temperature: float | Float[Array, ""] = REBASE_TEMPERATURE,
    similarity_temperature: float | Float[Array, ""] = SIMILARITY_TEMPERATURE,
    rounding: str = "hamilton",
    prefilter: str = "none",
) -> Int[Array, " K"]:
    """Eqs. 10–13: REBASE shares reweighted by semantic uniqueness γ, then apportioned."""
    shares, keep = _dora_shares(
        scores, budget, mask, embeddings, temperature, similarity_temperature, prefilter
    )
    return apportion_shares(shares, budget, keep, rounding=rounding, key=key)


# --- the Bayes-optimal allocation (Eq. 7) ---------------------------------------------------


def optimal(
    key: PRNGKeyArray | None,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
    kappa: float | Float[Array, ""] = 1.0,
    temperature: float | Float[Array, ""] | None = None,
    directions: Int[Array, " K"] | None = None,
) -> Int[Array, " K"]:
    """Eq. 7 under p_i ~ Beta(κ w_i, κ(1 − w_i)); w = scores, or softmax(R/T) if T is given."""
    del key, embeddings
    w = (
        scores
        if temperature is None
        else rebase_weights(scores, mask=mask, temperature=temperature)
    )
    return optimal_counts(w, budget, kappa, mask, directions)


# --- the oracle (knows the truth) ------------------------------------------------------------


def oracle(
    key: PRNGKeyArray | None,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
) -> Int[Array, " K"]:
    """All N on the candidate with the highest TRUE success probability (scores = true p).

    The κ → ∞ limit of Eq. 7 (Prop. 1) with w = p: when p is known, P(≥ 1 success) =
    1 − Π(1 − p_i)^{B_i} is maximized by putting every rollout on argmax p. Ties go to the lower
    index (a random one with `key`). In the engine the scores it sees are the world's ground
    truth (`World.truth`), so it is an upper reference for a simulated world, not a method.
    """
    del embeddings
    best = (rank_descending(scores, mask, key) == 0) & mask
    return jnp.where(best, jnp.asarray(budget, jnp.int32), 0).astype(jnp.int32)
