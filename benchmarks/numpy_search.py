"""A vectorized NumPy search of the synthetic world: the baseline the compiled engine is judged by.

This is the search a researcher would write with NumPy: one problem at a time, NumPy over that
problem's slots, `numpy.random.Generator` for the draws. It runs the paper's Algorithm 1 (the same
stop rules, finished buffer and PRM-weighted vote as `dora_jax.search`) in the same synthetic world
LAW as `dora_jax.world` (see that module's docstring), but not with the same bits: the world's
counter hash is replaced by NumPy's generator, and the latent tree is sampled lazily, node by node,
instead of being re-derived by every copy from the node's id.

What stays the law:
  * p(root) ~ Beta(difficulty_a, difficulty_b); the martingale w' ~ Beta(c·p, c·(1 − p)),
    p' ~ Beta(κ·w', κ·(1 − w')) (Eq. 6 in mode "beta", logit noise otherwise), clipped to
    [1e-6, 1 − 1e-6];
  * a node's GEM(α) sticks are shared by all its copies, each copy picks a child with its own
    uniform, the leftover mass opens a fresh child unique to the copy; every node-level quantity
    (p, w, leaf, correct, label, vector) is drawn once per node, so copies on one node agree;
  * leaf hazard, Wilson–Hilferty token counts, the 256/2048 caps and truncation, the forced final
    round's per-copy completion, wrong-answer labels, node vectors at cosine ρ to their parent and
    per-copy paraphrase noise for embeddings.
Since all copies of a node expand in the same round (every active slot of round t sits at depth t),
one round only needs the nodes of that round: node ids are round-local integers and no tree is
stored.

The module also counts the random words the engine's world consumes for the same steps (see
`WordCount`): the floor of `benchmarks/floor.py`.

Rules: "rebase", "dora" (prefilter "none") and "temperature_sampling", hamilton rounding, ties to
the lower index (the engine breaks remainder ties at random; ties only occur between copies of one
node, which are exchangeable, so the law is the same).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from dora_jax.rules import REBASE_TEMPERATURE, SIMILARITY_TEMPERATURE
from dora_jax.search import MAX_ROUNDS
from dora_jax.world import WorldConfig

RULES = ("rebase", "dora", "temperature_sampling")
CLIP = 1e-6  # the world's clip of probabilities and scores
NO_ANSWER = -1
PROPOSALS = 8  # the world's cap on Marsaglia–Tsang proposals per Gamma draw


class ProblemResult(NamedTuple):
    """One problem's outcome: the PRM-weighted vote, the rollout-steps and rounds it took."""

    accuracy: bool
    rollouts: int
    rounds: int


@dataclasses.dataclass
class WordCount:
    """Random words the engine's world consumes, counted per copy, as the engine re-derives them.

    The engine's world (`dora_jax.world`) reads every draw from a keyed counter hash: a word is one
    hash output (two rounds of its 32-bit mix). Ids and stream digests are hashes too; they are
    counted in the same unit (a digest of a k-word key costs 1 + k words; a child id is a digest of
    3 words plus 2 output words). `uniform` counts only the words turned into uniforms, `hashing`
    the id and digest work; the floor is their sum. Per rollout-step (one copy, one step):

      copy stream      2 (choice, step length); +5 in the forced final round off a leaf
                       (completion: steps, tokens, correct, keep, label)
      GEM sticks       min(k + 1, M) for the copy's child index k (α = ∞: none); digest 3
      child id         6 (hashing)
      node values      digest 3; leaf, correct, keep, label 4 (+1 score in "logit_noise"); E
                       normals for the vector; 2 Beta draws (1 if κ = ∞) of 2 Gammas each, a
                       Gamma costing 2 words per Marsaglia–Tsang proposal (E[proposals] from
                       the exact acceptance rate at its shape, capped at 8) + 1 if its shape < 1
    plus E per embedded slot (DORA), 1 per scored slot when candidate_score_noise > 0, a digest
    of 3 per stream per problem-round, and per problem the root's draws.
    """

    uniform: float = 0.0
    hashing: float = 0.0

    def add(self, uniform: float, hashing: float = 0.0) -> None:
        self.uniform += uniform
        self.hashing += hashing

    @property
    def total(self) -> float:
        return self.uniform + self.hashing


def gamma_words(shape: np.ndarray) -> np.ndarray:
    """Expected words of one of the world's Gamma(shape) draws (see `WordCount`).

    Marsaglia–Tsang with d = a − 1/3 (a = shape, or shape + 1 when boosted) accepts a proposal
    with probability Γ(a)·e^d / (sqrt(2π)·d^(a − 1/2)) (0.952 at a = 1, → 1 as a → ∞); the world
    stops at the first accepted of at most 8, so E[proposals] = (1 − (1 − q)^8)/q.
    """
    shape = np.asarray(shape, np.float64)
    small = shape < 1.0
    a = np.where(small, shape + 1.0, shape)
    d = a - 1.0 / 3.0
    lgamma = np.asarray(np.frompyfunc(math.lgamma, 1, 1)(a), np.float64)
    q = np.exp(lgamma + d - 0.5 * math.log(2 * math.pi) - (a - 0.5) * np.log(d))
    q = np.clip(q, 1e-12, 1.0)
    proposals = (1.0 - (1.0 - q) ** PROPOSALS) / q
    return 2.0 * proposals + small


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, CLIP, 1.0 - CLIP)


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.sum(x * x, axis=-1, keepdims=True))


def _orthogonal_unit(z: np.ndarray, u: np.ndarray) -> np.ndarray:
    return _normalize(z - np.sum(z * u, axis=-1, keepdims=True) * u)


def _labels(rng: np.random.Generator, size: int, config: WorldConfig) -> np.ndarray:
    return rng.integers(1, config.num_wrong_answers + 1, size=size)


def _gamma_tokens(rng: np.random.Generator, shape: np.ndarray, config: WorldConfig) -> np.ndarray:
    """Wilson–Hilferty Gamma(shape)·mean/k, as the world's token law."""
    k = np.asarray(shape, np.float64)
    z = rng.standard_normal(k.shape)
    base = np.maximum(1.0 - 1.0 / (9.0 * k) + z / np.sqrt(9.0 * k), 0.0)
    return k * base**3 * (config.step_tokens_mean / config.step_tokens_shape)


class _Slots(NamedTuple):
    """The alive copies of one problem (compact: length n ≤ N), in slot order."""

    node: np.ndarray  # round-local node id
    p: np.ndarray
    w: np.ndarray
    label: np.ndarray
    vector: np.ndarray  # [n, E]
    tokens: np.ndarray


class _Step(NamedTuple):
    finished: np.ndarray
    answer: np.ndarray


def _expand(
    rng: np.random.Generator,
    slots: _Slots,
    depth: int,
    final: bool,
    config: WorldConfig,
    words: WordCount | None,
) -> tuple[_Slots, _Step]:
    """Every copy takes one step down the tree (all copies sit at `depth`)."""
    n = slots.node.shape[0]
    m = config.max_children
    parents, parent_of = np.unique(slots.node, return_inverse=True)
    # The child each copy picks: k = #{j ≤ M : S_j ≤ −α·log(1 − u)} over its node's sticks.
    if math.isinf(config.alpha):
        index = m + np.arange(n)
        sticks_read = np.zeros(n)
    else:
        sums = np.cumsum(rng.standard_exponential((parents.shape[0], m)), axis=1)
        threshold = config.alpha * rng.standard_exponential(n)
        k = np.sum(sums[parent_of] <= threshold[:, None], axis=1)
        index = np.where(k < m, k, m + np.arange(n))
        sticks_read = np.minimum(k + 1, m)
    children, child_of = np.unique(parent_of * (m + n) + index, return_inverse=True)
    first = np.empty(children.shape[0], np.int64)
    first[child_of] = np.arange(n)  # some copy on each child: all its copies share the parent
    c = children.shape[0]

    # Node-level draws, once per child.
    p_parent = slots.p[first]
    b = config.branch_concentration
    w_hidden = _clip(rng.beta(b * p_parent, b * (1.0 - p_parent)))
    shapes = [b * p_parent, b * (1.0 - p_parent)]
    if math.isinf(config.kappa):
        p = w_hidden
    else:
        kap = config.kappa
        p = _clip(rng.beta(kap * w_hidden, kap * (1.0 - w_hidden)))
        shapes += [kap * w_hidden, kap * (1.0 - w_hidden)]
    if config.prm_mode == "beta":
        w = w_hidden
    else:
        logit = np.log(p) - np.log1p(-p) + config.logit_noise_sigma * rng.standard_normal(c)
        w = _clip(1.0 / (1.0 + np.exp(-logit)))
    keep = rng.random(c) < config.label_keep
    label = np.where(keep, slots.label[first], _labels(rng, c, config))
    rho = config.parent_child_cosine
    parent_vector = slots.vector[first]
    fresh = _orthogonal_unit(rng.standard_normal(parent_vector.shape), parent_vector)
    vector = rho * parent_vector + math.sqrt(1.0 - rho * rho) * fresh
    hazard = config.finish_hazard if depth + 1 >= config.min_steps else 0.0
    leaf = rng.random(c) < hazard
    node_correct = rng.random(c) < p

    # Per-copy draws: the step's tokens and, in the final round off a leaf, the completion.
    raw = _gamma_tokens(rng, np.full(n, config.step_tokens_shape), config)
    step_tokens = np.clip(np.ceil(raw), 1, config.max_step_tokens).astype(np.int64)
    leaf_c, p_c, label_c = leaf[child_of], p[child_of], label[child_of]
    completes = final & ~leaf_c
    generated = step_tokens
    correct = node_correct[child_of]
    wrong_label = label_c
    cap = config.max_solution_tokens
    if final:
        h = config.finish_hazard
        forced = max(config.min_steps - depth - 2, 0)  # the child sits at depth + 1
        geometric = rng.geometric(h, size=n) if h < 1.0 else np.ones(n, np.int64)
        steps = np.minimum(forced + geometric, cap + 1).astype(np.float64)
        extra = _gamma_tokens(rng, steps * config.step_tokens_shape, config)
        extra = np.maximum(np.ceil(np.minimum(extra, cap + 1)), steps).astype(np.int64)
        copy_correct = rng.random(n) < p_c
        copy_keep = rng.random(n) < config.label_keep**steps
        copy_label = np.where(copy_keep, label_c, _labels(rng, n, config))
        generated = step_tokens + np.where(completes, extra, 0)
        correct = np.where(completes, copy_correct, correct)
        wrong_label = np.where(completes, copy_label, label_c)
    eos = leaf_c | final
    total = slots.tokens + generated
    truncated = (total > cap) | (~eos & (total >= cap))
    generated = np.where(truncated, np.maximum(cap - slots.tokens, 0), generated)
    finished = eos | truncated
    answered = finished & ~truncated
    correct = answered & correct
    answer = np.where(answered, np.where(correct, 0, wrong_label), NO_ANSWER)

    if words is not None:
        # node-level words are re-derived by every copy on the node
        per_child = 4 + (config.prm_mode != "beta") + config.embed_dim
        per_child = per_child + sum(gamma_words(s) for s in shapes)
        copies = np.bincount(child_of, minlength=c)
        sticks_digest = 0 if math.isinf(config.alpha) else 3
        words.add(
            2 * n
            + 5 * int(np.sum(completes))
            + float(np.sum(sticks_read))
            + float(np.sum(copies * per_child)),
            # child id 6 + node-values digest 3 (+ sticks digest) per copy; copy-stream digest
            (6 + 3 + sticks_digest) * n + 3,
        )

    new = _Slots(
        node=child_of,
        p=p_c,
        w=w[child_of],
        label=label_c,
        vector=vector[child_of],
        tokens=slots.tokens + generated,
    )
    return new, _Step(finished=finished, answer=answer)


def _score(rng: np.random.Generator, slots: _Slots, config: WorldConfig) -> np.ndarray:
    if config.candidate_score_noise == 0.0:
        return slots.w
    logit = np.log(slots.w) - np.log1p(-slots.w)
    eps = rng.standard_normal(slots.w.shape)
    return _clip(1.0 / (1.0 + np.exp(-(logit + config.candidate_score_noise * eps))))


def _embed(rng: np.random.Generator, slots: _Slots, config: WorldConfig) -> np.ndarray:
    u = slots.vector
    if config.within_cosine == 1.0:
        return u
    s = math.sqrt(1.0 / config.within_cosine - 1.0)
    n_perp = _orthogonal_unit(rng.standard_normal(u.shape), u)
    return (u + s * n_perp) / math.sqrt(1.0 + s * s)


def _hamilton(shares: np.ndarray, budget: int) -> np.ndarray:
    """Largest remainders: Σ = budget exactly, ties to the lower index."""
    quota = budget * shares
    base = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - base), kind="stable")
    base[order[: budget - int(base.sum())]] += 1
    return base


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def allocate(
    rule: str, scores: np.ndarray, budget: int, embeddings: np.ndarray | None
) -> np.ndarray:
    """Counts over the survivors: REBASE (Eq. 4) or DORA (Eqs. 10–13), paper defaults."""
    logits = scores / REBASE_TEMPERATURE
    if rule == "dora":
        unit = _normalize(embeddings)
        sim = np.clip(unit @ unit.T, -1.0, 1.0)
        np.fill_diagonal(sim, 1.0)
        z = (sim - 1.0) / SIMILARITY_TEMPERATURE
        top = z.max(axis=1, keepdims=True)
        log_gamma = -(top[:, 0] + np.log(np.sum(np.exp(z - top), axis=1)))
        logits = logits + log_gamma
    return _hamilton(_softmax(logits), budget)


def _weighted_vote(answer: np.ndarray, score: np.ndarray) -> bool:
    """PRM-weighted majority over the counted solutions; ties to the answer that finished first."""
    valid = answer != NO_ANSWER
    if not valid.any():
        return False
    answer, score = answer[valid], score[valid]
    ids, first, inverse = np.unique(answer, return_index=True, return_inverse=True)
    totals = np.bincount(inverse, weights=score)
    best = np.flatnonzero(totals == totals.max())
    return bool(ids[best[np.argmin(first[best])]] == 0)


def search_problem(
    rng: np.random.Generator,
    config: WorldConfig,
    rule: str,
    budget: int,
    *,
    max_rounds: int = MAX_ROUNDS,
    words: WordCount | None = None,
) -> ProblemResult:
    """Algorithm 1 on one freshly drawn problem (the engine's stop rules and vote)."""
    n = budget
    p_root = float(_clip(rng.beta(config.difficulty_a, config.difficulty_b)))
    vector = _normalize(rng.standard_normal(config.embed_dim))
    slots = _Slots(
        node=np.zeros(n, np.int64),
        p=np.full(n, p_root),
        w=np.full(n, p_root),
        label=np.full(n, _labels(rng, 1, config)[0]),
        vector=np.broadcast_to(vector, (n, config.embed_dim)),
        tokens=np.zeros(n, np.int64),
    )
    if words is not None:  # the root: its id, p(root), label and vector
        a, b = config.difficulty_a, config.difficulty_b
        words.add(3 + config.embed_dim + float(gamma_words(a) + gamma_words(b)), 3 + 3 + 3)
    answers, scores = [], []
    num_finished = rollouts = 0
    for t in range(max_rounds):
        final = t == max_rounds - 1
        slots, step = _expand(rng, slots, t, final, config, words)
        score = _score(rng, slots, config)
        rollouts += slots.node.shape[0]
        answers.append(step.answer[step.finished])
        scores.append(score[step.finished])
        num_finished += int(step.finished.sum())
        survivors = ~step.finished
        if words is not None and config.candidate_score_noise > 0:
            words.add(slots.node.shape[0], 3)
        if final or num_finished >= n or not survivors.any():
            break
        kept = _Slots(*(x[survivors] for x in slots))
        if rule == "temperature_sampling":
            slots = kept  # every survivor continues on its own slot
            continue
        embeddings = None
        if rule == "dora":
            embeddings = _embed(rng, kept, config)
            if words is not None:
                words.add(kept.node.shape[0] * config.embed_dim, 3)
        counts = allocate(rule, score[survivors], n, embeddings)
        slots = _Slots(*(np.repeat(x, counts, axis=0) for x in kept))
    answer = np.concatenate(answers)[:n]
    score = np.concatenate(scores)[:n]
    return ProblemResult(_weighted_vote(answer, score), rollouts, t + 1)


def run(
    seed: int,
    config: WorldConfig,
    rule: str,
    budget: int,
    problems: int,
    *,
    max_rounds: int = MAX_ROUNDS,
    words: WordCount | None = None,
) -> list[ProblemResult]:
    """`problems` independent problems, one at a time, from one generator seeded by `seed`."""
    if rule not in RULES:
        raise ValueError(f"the NumPy search runs {', '.join(RULES)}; got {rule!r}")
    rng = np.random.default_rng(seed)
    return [
        search_problem(rng, config, rule, budget, max_rounds=max_rounds, words=words)
        for _ in range(problems)
    ]
