"""Voting V over finished solutions: the aggregation that picks a problem's answer.

All functions take ONE problem's finished solutions as fixed-shape masked arrays (F slots, `valid`
marking the ones that count: the first N finished) and return a Bool[] "the picked answer is
correct". Answers are integer ids (the simulator's, or the host's canonical-answer ids in a real
run); -1 means "no answer" (truncated, no \\boxed{}) and never wins a vote. Ties between answers
go to the answer that finished first, as a Counter over the finish order would.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

NO_ANSWER = -1


def pick(totals: Float[Array, " F"], eligible: Bool[Array, " F"]) -> Int[Array, ""]:
    """Index of the largest total among eligible entries; ties to the lowest index."""
    return jnp.argmax(jnp.where(eligible, totals, -jnp.inf))


def _vote(answers, weights, correct, valid) -> Bool[Array, ""]:
    eligible = valid & (answers != NO_ANSWER)
    same = (answers[:, None] == answers[None, :]) & eligible[None, :]
    totals = jnp.sum(jnp.where(same, weights[None, :], 0), axis=1)
    return jnp.any(eligible) & correct[pick(totals, eligible)]


def majority_vote(
    answers: Int[Array, " F"], correct: Bool[Array, " F"], valid: Bool[Array, " F"]
) -> Bool[Array, ""]:
    """The most frequent answer (self-consistency)."""
    return _vote(answers, jnp.ones(answers.shape, jnp.float32), correct, valid)


def weighted_vote(
    answers: Int[Array, " F"],
    scores: Float[Array, " F"],
    correct: Bool[Array, " F"],
    valid: Bool[Array, " F"],
) -> Bool[Array, ""]:
    """PRM-weighted majority: the answer with the largest sum of last-step scores (the paper's)."""
    return _vote(answers, scores.astype(jnp.float32), correct, valid)


def best_of_n(
    answers: Int[Array, " F"],
    scores: Float[Array, " F"],
    correct: Bool[Array, " F"],
    valid: Bool[Array, " F"],
) -> Bool[Array, ""]:
    """The single highest-scoring solution (with an answer)."""
    eligible = valid & (answers != NO_ANSWER)
    return jnp.any(eligible) & correct[pick(scores.astype(jnp.float32), eligible)]


def pass_at_n(correct: Bool[Array, " F"], valid: Bool[Array, " F"]) -> Bool[Array, ""]:
    """Coverage: at least one of the counted solutions is correct."""
    return jnp.any(correct & valid)


def correct_fraction(correct: Bool[Array, " F"], valid: Bool[Array, " F"]) -> Float[Array, ""]:
    """The fraction of counted solutions that are correct (the paper's "pass rate", Fig. 3b)."""
    count = jnp.sum(valid)
    return jnp.sum(correct & valid).astype(jnp.float32) / jnp.maximum(count, 1).astype(jnp.float32)
