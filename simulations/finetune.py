"""End-to-end fine-tuning of the `learned` rule on the simulated search's final accuracy (issue 15).

`simulations.train` trains the network on a one-step surrogate (the posterior expected failure of
Eq. 7 plus an imitation term). This stage starts from such a checkpoint and optimizes what is
actually measured: whether the whole multi-round search (Algorithm 1, the compiled engine's
named steps in `dora_jax.search`) ends with a correct PRM-weighted vote, over the training worlds
of `simulations.train` (never the held-out ones).

Stochastic policy
-----------------
In every round the network's shares w = softmax(logits) over the survivors (`learned_logits`, κ
unknown as the rule's default) are turned into an allocation by sampling, B ~ Multinomial(N, w)
(N categorical draws, counted), instead of the rule's deterministic apportionment. Its log
probability is log N! − Σ log B_i! + Σ B_i log w_i, so ∂ log P(B)/∂ logits = B − N·w: the score of
a whole round is one vector-Jacobian product of the network at B − N·w, accumulated in the
search's loop carry (no per-round states are stored, and the search itself is never
differentiated). E[B] = N·w, so the sampled policy is centred on the deterministic rule, which is
what is deployed and evaluated (the gap between the two is the price of a tractable score).

Estimator
---------
REINFORCE (the score-function estimator): ∇ E[R] = E[R · Σ_t ∇ log P(B_t | s_t)]. Why this and
not a pathwise (reparameterized) gradient: the reward is a vote over discrete finished solutions
reached through integer allocations, re-slotting gathers and a `while_loop` with data-dependent
stopping; it has no useful derivative with respect to the shares, while the score function
needs only log P of what was sampled. Its variance is cut by a leave-one-out baseline: each
problem is searched `rollouts` times (same problem, independent search keys) and rollout j's
advantage is R_j − mean_{k≠j} R_k, which removes the problem's difficulty (most of the variance:
most problems are solved by every rollout or by none) and keeps the estimate unbiased (the
baseline does not depend on rollout j's own actions).

Reward: the final PRM-weighted vote's correctness (`SearchResult.accuracy`, the paper's metric
and the one `simulations.learned_eval` reports), by default; `correct_fraction` (the share of
the counted solutions that are correct) is offered as a smoother proxy that still rewards what
the vote needs (many correct finishers) — whether a correct solution was found (pass@N) is not,
since it rewards spreading rollouts over many directions that the vote then cannot use.

Anchor: the loss adds `anchor`/2 · ‖θ − θ₀‖² (θ₀: the starting checkpoint's parameters), so a
noisy estimator cannot walk the network far from the one-step optimum it starts at.

Determinism: step s draws its problems and search keys from fold_in(key(seed), s), so a run and
a resumed run are equal bit for bit; step s trains on the (world, N) pair s mod the number of
pairs (each pair is compiled once). Checkpoints are `simulations.train`'s format (the rule loads
them as it loads `dora train`'s), with the fine-tuning settings under "train".
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from dora_jax import learned
from dora_jax import search as search_lib
from simulations import train as train_lib

__all__ = [
    "REWARDS",
    "FinetuneSettings",
    "finetune",
    "leave_one_out",
    "policy_searches",
    "sample_allocation",
]

REWARDS = ("accuracy", "correct_fraction")
STAGE = "e2e"  # the "train" record's marker of a fine-tuned checkpoint


@dataclasses.dataclass(frozen=True)
class FinetuneSettings:
    """Everything that determines a fine-tuning run (stored in its checkpoints).

    Attributes:
      start: the starting checkpoint (a file, or a packaged one by name: "imitation", the first
        stage, from which the shipped default was fine-tuned; "shipped", that default).
      start_sha256: its sha256 (filled by `resolved`; a resume checks it).
      e2e_worlds: training worlds (`simulations.train.world_config` names).
      e2e_budgets: budgets N; every (world, N) pair is one compiled search.
      e2e_problems: problems per step.
      rollouts: searches per problem (the leave-one-out baseline needs ≥ 2).
      max_rounds: T_max of the searches.
      learning_rate: Adam's step size.
      anchor: weight of ‖θ − θ₀‖²/2.
      reward: one of `REWARDS` (module doc).
      seed: the run's seed.
    """

    start: str = learned.IMITATION
    start_sha256: str = ""
    # the two evaluation worlds of the training distribution and the training corner nearest
    # the held-out geometry (each (world, N) pair is one compilation)
    e2e_worlds: tuple[str, ...] = ("paper-like", "paraphrase", "hard-corner")
    e2e_budgets: tuple[int, ...] = (16, 64)
    e2e_problems: int = 64
    rollouts: int = 4
    max_rounds: int = 40
    learning_rate: float = 1e-3
    anchor: float = 1.0
    reward: str = "accuracy"
    seed: int = 0

    def __post_init__(self):
        if self.rollouts < 2:
            raise ValueError(
                f"rollouts must be >= 2 (the leave-one-out baseline), got {self.rollouts}"
            )
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        for name in ("e2e_problems", "max_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if min(self.e2e_budgets, default=0) < 2:
            raise ValueError(f"e2e_budgets must be >= 2, got {list(self.e2e_budgets)}")
        if not self.learning_rate > 0 or not self.anchor >= 0:
            raise ValueError("learning_rate must be > 0 and anchor >= 0")
        for world in self.e2e_worlds:
            if world in train_lib.HELD_OUT_WORLDS:
                raise ValueError(f"{world} is held out of training")
            train_lib.world_config(world)

    def resolved(self) -> FinetuneSettings:
        """These settings with the starting checkpoint's sha256 (one-line ValueError if absent)."""
        path = learned.resolve_checkpoint(self.start)
        learned.read_checkpoint(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        return dataclasses.replace(self, start_sha256=sha)

    def record(self) -> dict[str, Any]:
        out = {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }
        return {"stage": STAGE, **out}

    @property
    def pairs(self) -> list[tuple[str, int]]:
        return [(w, n) for w in self.e2e_worlds for n in self.e2e_budgets]


def sample_allocation(
    key: PRNGKeyArray, logits: Float[Array, " K"], budget: int, valid: Bool[Array, " K"]
) -> tuple[Int[Array, " K"], Float[Array, " K"]]:
    """B ~ Multinomial(N, softmax(logits)) over the valid candidates, and ∂ log P(B)/∂ logits.

    Args:
      key: the draws' key.
      logits: Float[K], −inf (or anything) where invalid.
      budget: N (static).
      valid: Bool[K]; at least one valid candidate, or B = 0 and the score is 0.

    Returns:
      (Int[K] counts, Σ = N, 0 where invalid; Float[K] score B − N·softmax(logits), 0 where
      invalid).
    """
    logits = jnp.where(valid, logits, -jnp.inf)
    any_valid = jnp.any(valid)
    safe = jnp.where(any_valid, logits, 0.0)
    draws = jax.random.categorical(key, safe, shape=(budget,))
    counts = jnp.zeros(logits.shape, jnp.int32).at[draws].add(1)
    counts = jnp.where(any_valid & valid, counts, 0)
    w = jnp.where(valid, jax.nn.softmax(safe), 0.0)
    score = jnp.where(any_valid & valid, counts.astype(w.dtype) - budget * w, 0.0)
    return counts, score


def leave_one_out(rewards: Float[Array, "P R"]) -> Float[Array, "P R"]:
    """Advantages R_j − mean_{k≠j} R_k within each problem's R ≥ 2 rollouts."""
    r = rewards.shape[1]
    others = (jnp.sum(rewards, axis=1, keepdims=True) - rewards) / (r - 1)
    return rewards - others


class _Carry(NamedTuple):
    state: search_lib.SearchState
    score: Any  # Σ_t ∇_θ log P(B_t | s_t), the params' structure


def _policy_round(graphdef, params, problem, world, config, carry: _Carry) -> _Carry:
    """One round of the search (the engine's steps) with a sampled allocation; adds its score."""
    from flax import nnx

    state = carry.state
    n = config.budget
    plan = search_lib.plan_round(state, config)
    slots, step, scores = search_lib.expand_and_score(plan, problem, world, state.slots)
    settled = search_lib.append_finished(
        state, plan, config, slots, step, scores, world.path_tokens(slots)
    )
    emb = world.embed(plan.k_embed, problem, slots, active=settled.survivors)
    valid = settled.survivors & ~jnp.isnan(settled.scores) & ~settled.stop
    r = jnp.where(valid, settled.scores, 0)

    def logits_of(p):
        model = nnx.merge(graphdef, p)
        return learned.learned_logits(
            model, r, jnp.int32(n), valid, emb, jnp.float32(1), jnp.asarray(False)
        )

    logits, vjp = jax.vjp(logits_of, params)
    counts, logit_score = sample_allocation(plan.k_alloc, logits, n, valid)
    (round_score,) = vjp(logit_score)
    parent, filled = search_lib.parents_from_counts(counts)
    next_alive = filled & ~settled.stop
    new = search_lib.reslot(
        state,
        plan,
        settled,
        config,
        0,
        world.prompt_tokens(problem),
        counts,
        parent,
        next_alive,
    )
    return _Carry(new, jax.tree.map(jnp.add, carry.score, round_score))


def _one_search(graphdef, params, world, config, reward: str, key, problem):
    """One stochastic-policy search: (reward, Σ_t score, accuracy)."""
    state = search_lib.init_state(key, problem, world, config)
    zero = jax.tree.map(jnp.zeros_like, params)
    carry = jax.lax.while_loop(
        lambda c: ~c.state.done & (c.state.round < config.max_rounds),
        functools.partial(_policy_round, graphdef, params, problem, world, config),
        _Carry(state, zero),
    )
    result = search_lib.finalize(carry.state, config)
    value = result.accuracy if reward == "accuracy" else result.correct_fraction
    return value.astype(jnp.float32), carry.score, result.accuracy


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def policy_searches(
    graphdef, world_config, budget: int, problems: int, rollouts: int, settings_key, params, key
):
    """`problems` problems × `rollouts` stochastic-policy searches of one world at N = `budget`.

    `settings_key` is (max_rounds, reward) (static). Returns (rewards [P, R], the REINFORCE
    estimate of ∇ E[reward] with the leave-one-out baseline (params' structure), accuracy [P, R]).
    """
    max_rounds, reward = settings_key
    world = search_lib.SyntheticWorld(world_config)
    config = search_lib.SearchConfig.make("dora", budget, max_rounds=max_rounds)
    k_problems, k_search = jax.random.split(key)
    problem = jax.vmap(world.sample_problem)(jax.random.split(k_problems, problems))
    keys = jax.random.split(k_search, problems * rollouts).reshape(problems, rollouts)

    def per_problem(prob, ks):
        return jax.vmap(lambda k: _one_search(graphdef, params, world, config, reward, k, prob))(ks)

    rewards, scores, accuracy = jax.vmap(per_problem)(problem, keys)
    advantage = leave_one_out(rewards)
    grad = jax.tree.map(
        lambda s: jnp.tensordot(advantage, s, axes=([0, 1], [0, 1])) / (problems * rollouts),
        scores,
    )
    return rewards, grad, accuracy


@functools.lru_cache(maxsize=4)
def _adam(learning_rate: float):
    import optax

    return optax.adam(learning_rate)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _apply(optimizer, anchor: float, params, start, opt_state, reward_grad):
    """One Adam step on −(REINFORCE estimate) + anchor·(θ − θ₀)."""
    import optax

    grads = jax.tree.map(lambda g, p, p0: -g + anchor * (p - p0), reward_grad, params, start)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction (see train._step)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state


class FinetuneResult(NamedTuple):
    log: list[tuple[int, str, int, float]]  # (step, world, N, mean reward of the step's searches)
    step: int


def _start(settings: FinetuneSettings):
    """(config, graphdef, params θ₀) of the starting checkpoint."""
    from dora_jax import learned_model

    record = learned.read_checkpoint(learned.resolve_checkpoint(settings.start))
    config = learned_model.ModelConfig(**dict(record["config"]))
    graphdef, params = learned.load_checkpoint(settings.start)
    return config, graphdef, jax.tree.map(jnp.asarray, params)


def resume_point(path: Path, settings: FinetuneSettings) -> dict[str, Any]:
    """The record of a fine-tuning checkpoint to resume, checked to come from the same settings."""
    record = learned.read_checkpoint(path)
    stored = record.get("train")
    if not isinstance(stored, dict) or stored.get("stage") != STAGE:
        raise ValueError(f"checkpoint {path} is not an end-to-end fine-tuning run: cannot resume")
    train_lib.check_same_settings(path, stored, settings.record(), "fine-tuned")
    return record


def finetune(
    settings: FinetuneSettings,
    steps: int,
    out: Path,
    *,
    resume: bool = False,
    save_every: int = 25,
    on_step: Callable[[int, float], None] | None = None,
) -> FinetuneResult:
    """Fine-tunes (or resumes) to `steps` steps and writes the checkpoint `out`.

    Args:
      settings: the run's settings, `resolved()` (with resume, must equal the checkpoint's).
      steps: the total steps to reach.
      out: the checkpoint file (written every `save_every` steps and at the end).
      resume: continue from `out`'s step.
      on_step: called with (step, mean reward of the step's searches) after every step.
    """
    config, graphdef, start = _start(settings)
    params = start
    optimizer = _adam(settings.learning_rate)
    opt_state = optimizer.init(params)
    first = 0
    if resume:
        record = resume_point(out, settings)
        params, opt_state = train_lib.restore(record, jax.tree.map(jnp.copy, start), opt_state)
        first = int(record["step"])
    root = jax.random.key(settings.seed)
    pairs = settings.pairs
    log: list[tuple[int, str, int, float]] = []

    def save(step: int):
        train_lib.save_checkpoint(out, settings, config, params, opt_state, step)

    for step in range(first, steps):
        world, n = pairs[step % len(pairs)]
        rewards, grad, _ = policy_searches(
            graphdef,
            train_lib.world_config(world),
            n,
            settings.e2e_problems,
            settings.rollouts,
            (settings.max_rounds, settings.reward),
            params,
            jax.random.fold_in(root, step),
        )
        params, opt_state = _apply(optimizer, settings.anchor, params, start, opt_state, grad)
        mean = float(jnp.mean(rewards))
        log.append((step, world, n, mean))
        if on_step is not None:
            on_step(step + 1, mean)
        if (step + 1) % save_every == 0 and step + 1 < steps:
            save(step + 1)
    save(max(steps, first))
    return FinetuneResult(log, max(steps, first))
