"""The user-facing allocation API: `allocate` and `allocation_weights` by method name.

Both take ONE problem (scores Float[K]); `jax.vmap` them for a batch, binding the method and any
string hyperparameters first, e.g.::

    rule = functools.partial(dora_jax.allocate, "dora", rounding="hamilton")
    counts = jax.jit(jax.vmap(rule, in_axes=(0, None)))(scores_PK, 64)   # Int[P, K]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from dora_jax import _checks, rules
from dora_jax.apportion import ROUNDINGS, full_mask
from dora_jax.registry import RULES, rule_info

METHODS: tuple[str, ...] = tuple(RULES)  # the rules registered at import (the paper's)


def _check_hyperparameters(method: str, hp: Mapping[str, Any], k: int, extra=()) -> None:
    allowed = set(rule_info(method).defaults) | set(extra)
    for name in hp:
        if name not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"{method} has no hyperparameter {name!r} (it takes: {names})")
    for name in ("temperature", "similarity_temperature", "kappa"):
        if hp.get(name) is not None:
            _checks.check_positive(name, hp[name])
    if "beam_width" in hp:
        m = hp["beam_width"]
        if not isinstance(m, int) or isinstance(m, bool) or m < 1:
            raise ValueError(f"beam_width must be an integer >= 1, got {m!r}")
    if "rounding" in hp:
        _checks.check_choice("rounding", hp["rounding"], ROUNDINGS)
    if "prefilter" in hp:
        _checks.check_choice("prefilter", hp["prefilter"], rules.PREFILTERS)
    for name in ("groups", "directions"):
        if hp.get(name) is not None:
            _checks.check_ids(name, jnp.asarray(hp[name]), k)


def _prepare(scores, mask, embeddings):
    scores = jnp.asarray(scores)
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        scores = scores.astype(jnp.result_type(float))
    _checks.check_scores(scores)
    k = scores.shape[0]
    mask = full_mask(k) if mask is None else jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be boolean, got dtype {mask.dtype}")
    _checks.check_mask(mask, k)
    if embeddings is not None:
        embeddings = jnp.asarray(embeddings)
        _checks.check_shape("embeddings", embeddings, (k,), 2)
        e = _checks.concrete(embeddings)
        if e is not None and not jnp.isfinite(embeddings).all():
            raise ValueError("embeddings contain NaN or inf")
    # Under jit a NaN score cannot raise: the candidate is treated as masked (docs/allocation.md).
    nan = jnp.isnan(scores)
    return jnp.where(nan, 0, scores), mask & ~nan, embeddings


def _ids(hp: dict[str, Any]) -> dict[str, Any]:
    for name in ("groups", "directions"):
        if hp.get(name) is not None:
            hp[name] = jnp.asarray(hp[name]).astype(jnp.int32)
    return hp


def allocate(
    method: str,
    scores: Float[Array, " K"],
    budget: int | Int[Array, ""],
    *,
    key: PRNGKeyArray | None = None,
    embeddings: Float[Array, "K E"] | None = None,
    mask: Bool[Array, " K"] | None = None,
    **hyperparameters: Any,
) -> Int[Array, " K"]:
    """How many of the N rollouts each of K candidates gets, by a named rule.

    Args:
      method: a registered rule (`RULES`; the paper's are `METHODS`): "temperature_sampling"
        (Eq. 1), "beam_search" (Eq. 2), "dvts" (Eq. 3), "rebase" (Eq. 4), "dora" (Eqs. 10–13),
        "optimal" (Eq. 7), "oracle" (all N on the highest score: pass the TRUE success
        probabilities as scores), "bayes" (Eq. 7 with direction-shared p under a posterior over
        directions from the embeddings, `dora_jax.directions`; scores are the prior means w).
      scores: Float[K], the candidates' PRM scores R, probabilities in [0, 1] (the paper's R,
        §2.1; for "optimal" without a temperature: the prior means w). Checked when called
        eagerly for every rule whose record has `probability_scores`.
      budget: N ≥ 1 (may be traced: no recompilation for a new N).
      key: optional PRNG key; breaks ties at random instead of by lower index.
      embeddings: Float[K, E], used by "dora" (cosine similarity); without them DORA treats every
        candidate as its own direction and equals REBASE. Ignored by the other rules.
      mask: Bool[K] of valid candidates (default all); masked candidates get 0.
      **hyperparameters: the rule's, with the paper's defaults: beam_width=4 (beam_search,
        dvts), groups (dvts), temperature=0.1 (rebase, dora; optimal: None), rounding="hamilton"
        (rebase, dora; or "round_half_even_then_cycle"), similarity_temperature=0.01 and
        prefilter="none" (dora; or "rebase_round"), kappa=1.0 and directions (optimal).
        String-valued ones must be static under jit (bind them with functools.partial).

    Returns:
      Int[K] (int32): B_i ≥ 0, B_i = 0 where masked, Σ B = N exactly (docs/allocation.md).

    Raises:
      ValueError: on bad arguments, when called eagerly (see docs/allocation.md for jit).
    """
    rule = rule_info(method)
    scores, mask, embeddings = _prepare(scores, mask, embeddings)
    _check_hyperparameters(method, hyperparameters, scores.shape[0])
    _checks.check_budget(budget)
    if rule.probability_scores:
        _checks.check_probabilities(f"scores (PRM probabilities R for {method})", scores)
    if rule.check is not None:
        rule.check(rule.resolve(hyperparameters))
    hp = _ids(dict(hyperparameters))
    static = tuple(sorted((k, v) for k, v in hp.items() if _is_static(v)))
    dynamic = {k: v for k, v in hp.items() if not _is_static(v)}
    n = jnp.asarray(budget, jnp.int32)
    return _allocate_compiled(method, static, key, scores, n, mask, embeddings, dynamic)


def _is_static(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _allocate_compiled(method, static, key, scores, budget, mask, embeddings, dynamic):
    """One compiled kernel per (method, static hyperparameters, shapes); inlined under jit."""
    return RULES[method].allocate(
        key, scores, budget, mask=mask, embeddings=embeddings, **dict(static), **dynamic
    )


def allocation_weights(
    method: str,
    scores: Float[Array, " K"],
    *,
    embeddings: Float[Array, "K E"] | None = None,
    mask: Bool[Array, " K"] | None = None,
    **hyperparameters: Any,
) -> Float[Array, " K"]:
    """The continuous shares a rule apportions (Σ = 1 over the valid candidates).

    Defined for "temperature_sampling" (uniform), "rebase" (softmax(R/T_b), Eq. 4) and "dora"
    (Eq. 12). DORA's `prefilter="rebase_round"` depends on N: pass `budget=N` with it.
    `rounding` is accepted and ignored (it acts after the shares).
    """
    rule = rule_info(method)
    if rule.weights is None:
        raise ValueError(
            f"{method} has no continuous weights (it allocates integers directly); use allocate"
        )
    scores, mask, embeddings = _prepare(scores, mask, embeddings)
    hp = dict(hyperparameters)
    _check_hyperparameters(method, hp, scores.shape[0], extra=rule.weights_takes)
    if rule.probability_scores:
        _checks.check_probabilities(f"scores (PRM probabilities R for {method})", scores)
    if rule.validate is not None:
        rule.validate(rule.resolve(hp))
    hp.pop("rounding", None)
    if hp.get("budget") is not None:
        hp["budget"] = jnp.asarray(hp["budget"], jnp.int32)
    if rule.reads_embeddings:
        hp["embeddings"] = embeddings
    static = tuple(sorted((k, v) for k, v in hp.items() if _is_static(v)))
    dynamic = {k: v for k, v in hp.items() if not _is_static(v)}
    return _weights_compiled(method, static, scores, mask, dynamic)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _weights_compiled(method, static, scores, mask, dynamic):
    weights = RULES[method].weights
    assert weights is not None  # allocation_weights checked it
    return weights(scores, mask=mask, **dict(static), **dynamic)
