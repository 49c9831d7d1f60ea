"""Training the `learned` rule (`dora_jax.learned`) in the synthetic world, with optax.

Data
----
Candidate sets come from actual search states: for each training world and budget N, P problems
are searched for up to `rounds` rounds with DORA as the behaviour rule (every round: expand,
score, embed, allocate N over the survivors, re-slot), and every round's survivors are one state:
their scores, embeddings and mask, plus what only the simulator knows: which node (direction)
each candidate sits on and that node's PRM score w. States with fewer than two survivors are
dropped (every allocation is the same there). A budget N below `slots` is searched with N slots
(`own_slots`; the states an N-rollout search meets), a larger one uses the `slots`-slot search's
survivors; states are padded to K = `slots`.

Objective
---------
The relaxed allocation B = N·softmax(logits) over the valid candidates (real-valued, so
differentiable) and the posterior expected failure of Eq. 7 with the truth integrated out,

    E[Π_d (1 − p_d)^{B_d} | w, dirs] = Π_d Γ(κ(1 − w_d) + B_d)Γ(κ) / (Γ(κ(1 − w_d))Γ(κ + B_d)),

B_d = Σ_{i ∈ d} B_i over each true direction d (the node). In the world's "beta" PRM mode,
p_d | w_d ~ Beta(κw_d, κ(1 − w_d)) holds exactly and independently across nodes (Eq. 6), so this is
the conditional expectation of the realized failure given the truth the simulator knows: a
Rao–Blackwellized, unbiased estimate of the Bayes risk of the network's decision. The mean over
states is minimized. Why this and not imitation of `bayes`'s allocations: imitation would copy
`bayes`'s approximations (a mean-field posterior with hand-set merge cosine, κ = 1 by default,
greedy over samples) and cost a `bayes` call per training state; the objective trains the
network towards the decision `bayes` approximates, under the world's exact posterior. κ is shown
to the network in half of the states (drawn per state) and hidden in the rest, so it works with
κ unknown (the rule's default).

Why an imitation term as well (weight `imitation`): the expected failure of one step is flat
in how a direction's rollouts are spread over its copies — on paraphrase-world states at N = 16
the direction-blind optimum (each candidate its own p) is within 0.3% of the one with the true
directions — but the multi-round search is not: copies that get rollouts fill the next round's
slots with one direction's children. So the loss adds the cross-entropy −Σ_d t_d log q_d between
the network's direction totals q_d (its shares summed over each TRUE direction d) and those of
the exact Eq. 7 optimum with the true directions and κ (`dora_jax.optimal_counts`, t_d = B*_d/N):
a dense signal towards the same optimum that says how much each direction gets, not how it is
split among the direction's copies. Its minimizer given the features is the posterior mean of t.

Determinism: everything derives from one key (`seed`): the data key, the initialization key,
and batch b's indices from fold_in(batch key, b); a resumed run equals an uninterrupted one bit
for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from dora_jax import learned, rules
from dora_jax import world as world_lib
from dora_jax.search import parents_from_counts

__all__ = [
    "HELD_OUT_WORLDS",
    "TRAINING_WORLDS",
    "States",
    "TrainSettings",
    "bayes_risk",
    "make_states",
    "relaxed_loss",
    "train",
]

# The training distribution, declared: PRM reliability κ ∈ [2, 200], redundancy α ∈ [0.3, 3],
# within-direction cosine c_w ∈ [0.85, 0.998], parent–child cosine ρ ∈ [0.9, 0.95], the "beta"
# PRM (Eq. 6 exact); the presets, a mixture inside the ranges, and three worlds at the ranges'
# hard corners (unreliable PRM with strong redundancy, paraphrase-level geometry, both).
TRAINING_WORLDS: dict[str, world_lib.WorldConfig] = {
    "paper-like": world_lib.PRESETS["paper-like"],
    "redundant": world_lib.PRESETS["redundant"],
    "paraphrase": world_lib.PRESETS["paraphrase"],
    "reliable-prm": world_lib.PRESETS["reliable-prm"],
    "mix": world_lib.WorldConfig(kappa=5.0, alpha=1.5, within_cosine=0.95),
    "unreliable-redundant": world_lib.WorldConfig(kappa=2.0, alpha=0.3),
    "wide-geometry": world_lib.WorldConfig(within_cosine=0.85, parent_child_cosine=0.9),
    "hard-corner": world_lib.WorldConfig(
        kappa=2.0, alpha=0.3, within_cosine=0.85, parent_child_cosine=0.9
    ),
}
# Held out of training, declared before any evaluation (`simulations.learned_eval`): each lies
# outside the training distribution above. "far-geometry" puts every knob beyond its range (κ =
# 1, α = 0.15, c_w = 0.8, ρ = 0.85); "noisy-prm" breaks Eq. 6 (a logit-normal PRM, a mode no
# training world has).
HELD_OUT_WORLDS: dict[str, world_lib.WorldConfig] = {
    "far-geometry": world_lib.WorldConfig(
        kappa=1.0, alpha=0.15, within_cosine=0.8, parent_child_cosine=0.85
    ),
    "noisy-prm": world_lib.PRESETS["noisy-prm"],
}
_CLIP = 1e-6


class States(NamedTuple):
    """Search states, leading axis M (one per state), candidates padded to K."""

    scores: Float[Array, "M K"]
    embeddings: Float[Array, "M K E"]
    valid: Bool[Array, "M K"]
    directions: Int[Array, "M K"]  # the first index on the same node (ids in [0, K))
    w: Float[Array, "M K"]  # the node's PRM score (the Beta prior mean of its p)
    kappa: Float[Array, " M"]
    budget: Int[Array, " M"]


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Everything that determines a training run (stored in its checkpoints)."""

    worlds: tuple[str, ...] = tuple(TRAINING_WORLDS)
    budgets: tuple[int, ...] = (16, 64, 256)
    slots: int = 64
    problems: int = 40
    rounds: int = 10
    validation_fraction: float = 0.2
    seed: int = 0
    batch: int = 64
    learning_rate: float = 2e-3
    width: int = 16
    layers: int = 1
    imitation: float = 0.5  # weight of the direction-level cross-entropy (module doc)
    own_slots: bool = True  # budgets below `slots` get their own N-slot search (module doc)

    def record(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def _search_states(key, config: world_lib.WorldConfig, n: int, rounds: int):
    """One problem searched with DORA for `rounds` rounds; each round's survivors ([T, N, ...])."""
    k_problem, k_rounds = jax.random.split(key)
    problem = world_lib.sample_problem(k_problem, config)
    slots = world_lib.init_slots(problem, config, n)

    def round_(carry, k):
        slots, alive = carry
        k_expand, k_score, k_embed = jax.random.split(k, 3)
        slots, step = world_lib.expand(k_expand, problem, slots, config)
        survivors = alive & ~step.finished
        scores = world_lib.score(k_score, problem, slots, config)
        emb = world_lib.embed(k_embed, problem, slots, config)
        node = world_lib.direction_id(slots)
        same = node[:, None] == node[None, :]
        first = jnp.argmax(same & survivors[None, :], axis=1).astype(jnp.int32)
        counts = rules.dora(None, scores, n, mask=survivors, embeddings=emb)
        counts = jnp.where(jnp.any(survivors), counts, 0)
        parent, filled = parents_from_counts(counts)
        record = (scores, emb, survivors, first, slots.w)
        return (jax.tree.map(lambda x: x[parent], slots), filled), record

    alive = jnp.ones((n,), bool)
    _, out = jax.lax.scan(round_, (slots, alive), jax.random.split(k_rounds, rounds))
    return out


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _world_states(key, config, n, problems, rounds):
    keys = jax.random.split(key, problems)
    return jax.vmap(lambda k: _search_states(k, config, n, rounds))(keys)


def _padded_states(key, config, size: int, slots: int, problems: int, rounds: int):
    """`_world_states` with `size` slots as NumPy arrays [P·T, slots, ...] (padded: invalid)."""
    pad = [(0, 0), (0, 0), (0, slots - size)]
    return tuple(
        np.pad(np.asarray(x), pad + [(0, 0)] * (x.ndim - 3)).reshape(-1, slots, *x.shape[3:])
        for x in _world_states(key, config, size, problems, rounds)
    )


def make_states(
    key,
    worlds: Sequence[world_lib.WorldConfig],
    budgets: Sequence[int],
    *,
    slots: int,
    problems: int,
    rounds: int,
    own_slots: bool = False,
    progress: Callable[[], None] | None = None,
) -> tuple[States, np.ndarray]:
    """Search states of every world, each used with every budget (module doc).

    Each world's P problems are searched once with `slots` slots (one compilation per world); a
    state used with a budget N < its survivors keeps a random N of them (i.i.d. copies thinned
    like a smaller search's). With `own_slots`, a budget N < `slots` gets its own search with N
    slots instead (the states an N-rollout search meets: fewer survivors and directions than a
    thinned larger search's), padded to `slots`. Returns the states (K = slots) and each state's
    problem number, 0 … P − 1 (to split problems, not states, into training and validation).
    """
    parts: list[tuple[np.ndarray, ...]] = []
    for i, config in enumerate(worlds):
        k_world, k_thin = jax.random.split(jax.random.fold_in(key, i))
        searched: dict[int, tuple[np.ndarray, ...]] = {}
        problem = np.repeat(np.arange(problems), rounds)
        for j, n in enumerate(budgets):
            size = n if own_slots and n < slots else slots
            if size not in searched:
                k = k_world if size == slots else jax.random.fold_in(k_world, size)
                searched[size] = _padded_states(k, config, size, slots, problems, rounds)
            scores, emb, valid, first, w = searched[size]
            priority = np.asarray(jax.random.uniform(jax.random.fold_in(k_thin, j), valid.shape))
            priority = np.where(valid, priority, 2.0)
            rank = np.argsort(np.argsort(priority, axis=1, kind="stable"), axis=1, kind="stable")
            thinned = valid & (rank < n)
            keep = thinned.sum(axis=1) >= 2
            m = int(keep.sum())
            parts.append(
                (
                    scores[keep],
                    emb[keep],
                    thinned[keep],
                    first[keep],
                    w[keep],
                    np.full((m,), config.kappa, np.float32),
                    np.full((m,), n, np.int32),
                    problem[keep],
                )
            )
        if progress is not None:
            progress()
    arrays = [np.concatenate(x) for x in zip(*parts, strict=True)]
    return States(*(jnp.asarray(x) for x in arrays[:-1])), arrays[-1]


def _log_failure(w, totals, kappa):
    """log E(1 − p)^B for p ~ Beta(κw, κ(1 − w)), real B ≥ 0 (log-gamma differences)."""
    gl = jax.scipy.special.gammaln
    a = kappa * (1 - w)
    return gl(a + totals) - gl(a) - gl(kappa + totals) + gl(kappa)


def direction_failure(
    shares: Float[Array, " K"], budget, state_w, directions, valid, kappa
) -> Float[Array, ""]:
    """E[Π_d (1 − p_d)^{B_d} | w, directions] for B = N·shares (real-valued; module doc)."""
    b = jnp.where(valid, budget * shares, 0)
    same = (directions[:, None] == directions[None, :]) & valid[None, :] & valid[:, None]
    totals = same.astype(b.dtype) @ b
    members = jnp.maximum(jnp.sum(same, axis=1), 1).astype(b.dtype)
    w = jnp.clip(state_w, _CLIP, 1 - _CLIP)
    terms = jnp.where(valid, _log_failure(w, totals, kappa) / members, 0)
    return jnp.exp(jnp.sum(terms))


def direction_cross_entropy(
    shares: Float[Array, " K"], target: Float[Array, " K"], directions, valid
) -> Float[Array, ""]:
    """−Σ_d t_d log q_d over the TRUE directions d: q_d, t_d the summed shares of d's members
    under the network and under the target (module doc). The split within a direction is free."""
    same = (directions[:, None] == directions[None, :]) & valid[None, :] & valid[:, None]
    members = jnp.maximum(jnp.sum(same, axis=1), 1).astype(shares.dtype)
    q = same.astype(shares.dtype) @ shares
    t = same.astype(shares.dtype) @ target
    terms = jnp.where(valid, t * jnp.log(jnp.maximum(q, _CLIP)) / members, 0)
    return -jnp.sum(terms)


def relaxed_loss(
    graphdef, params, states: States, known: Bool[Array, " M"], *, imitation: float = 0.0
) -> Float[Array, ""]:
    """Mean over states of the relaxed posterior expected failure, plus `imitation` × the
    direction-level cross-entropy to the exact optimum with the true directions (module doc)."""
    from flax import nnx

    from dora_jax.optimal import optimal_counts

    model = nnx.merge(graphdef, params)

    def one(scores, emb, valid, directions, w, kappa, budget, kappa_known):
        logits = learned.learned_logits(model, scores, budget, valid, emb, kappa, kappa_known)
        shares = jnp.where(valid, jax.nn.softmax(logits), 0)
        n = budget.astype(jnp.float32)
        loss = direction_failure(shares, n, w, directions, valid, kappa)
        if imitation:
            best = optimal_counts(w, budget, kappa, valid, directions).astype(jnp.float32) / n
            loss = loss + imitation * direction_cross_entropy(shares, best, directions, valid)
        return loss

    return jnp.mean(jax.vmap(one)(*states, known))


def bayes_risk(counts: Int[Array, "M K"], states: States) -> Float[Array, ""]:
    """Mean posterior expected failure of integer allocations (module doc), over states."""
    fail = jax.vmap(direction_failure)(
        counts.astype(jnp.float32),
        jnp.ones_like(states.kappa),
        states.w,
        states.directions,
        states.valid,
        states.kappa,
    )
    return jnp.mean(fail)


def _init(settings: TrainSettings, key):
    from flax import nnx

    from dora_jax import learned_model

    config = learned_model.ModelConfig(settings.width, settings.layers)
    model = learned_model.Allocator(config, rngs=nnx.Rngs(key))
    graphdef, params = nnx.split(model, nnx.Param)
    return config, graphdef, params, _optimizer(settings.learning_rate)


def _keys(settings: TrainSettings):
    root = jax.random.key(settings.seed)
    return dict(zip(("data", "init", "batch", "kappa"), jax.random.split(root, 4), strict=True))


def _batch_indices(key, step: int, m: int, batch: int):
    k = jax.random.fold_in(key, step)
    return jax.random.randint(k, (batch,), 0, m)


def save_checkpoint(path: Path, settings: TrainSettings, config, params, opt_state, step: int):
    """One msgpack file, written atomically (a temporary file, then a rename)."""
    from flax import nnx, serialization

    def stringify(tree):
        if isinstance(tree, dict):
            return {str(k): stringify(v) for k, v in tree.items()}
        return np.asarray(tree)

    record = {
        "format": learned.FORMAT,
        "config": dataclasses.asdict(config),
        "params": stringify(nnx.to_pure_dict(params)),
        "step": step,
        "train": settings.record(),
        "opt_state": {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(opt_state))},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(serialization.msgpack_serialize(record))
    os.replace(tmp, path)


def resume_point(path: Path, settings: TrainSettings) -> dict[str, Any]:
    """The record of a checkpoint to resume, checked to come from the same settings."""
    record = learned.read_checkpoint(path)
    stored = record.get("train")
    if not isinstance(stored, dict):
        raise ValueError(f"checkpoint {path} has no training settings to resume from")
    check_same_settings(path, stored, settings.record(), "trained")
    return record


def check_same_settings(path: Path, stored: dict[str, Any], want: dict[str, Any], verb: str):
    """One-line ValueError unless a checkpoint's stored settings equal `want` (lists for tuples)."""
    for name, value in want.items():
        got = stored.get(name)
        got = list(got) if isinstance(got, tuple | list) else got
        if got != value:
            raise ValueError(
                f"checkpoint {path} was {verb} with {name}={got!r}, not {value!r}: cannot resume"
            )


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _step(graphdef, optimizer, imitation, params, opt_state, states: States, idx, known):
    """One optimizer step on the states `idx` (compiled once per model, optimizer, weight)."""
    import optax

    batch = jax.tree.map(lambda x: x[idx], states)
    # optax's bias correction raises a float to an int32 count, which strict dtype promotion
    # (the test suite's) refuses; the promotion it needs is the standard one.
    with jax.numpy_dtype_promotion("standard"):
        loss, grads = jax.value_and_grad(
            lambda p: relaxed_loss(graphdef, p, batch, known, imitation=imitation)
        )(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss


@functools.lru_cache(maxsize=4)
def _optimizer(learning_rate: float):
    """AdamW (one object per learning rate, so the compiled step is reused)."""
    import optax

    return optax.adamw(learning_rate, weight_decay=1e-4)


def restore(record: dict[str, Any], params, opt_state):
    """The parameters and optimizer state of a checkpoint record, in the given structures."""
    from flax import nnx

    nnx.replace_by_pure_dict(
        params, jax.tree.map(jnp.asarray, learned._keys_to_ints(record["params"]))
    )
    stored = record["opt_state"]
    leaves = [jnp.asarray(stored[str(i)]) for i in range(len(stored))]
    return params, jax.tree.unflatten(jax.tree.structure(opt_state), leaves)


def fit(
    run,
    states: States,
    keys: dict[str, Any],
    batch: int,
    start: int,
    steps: int,
    *,
    save: Callable[[int, Any, Any], None] | None = None,
    save_every: int = 250,
    log_every: int = 50,
    on_step: Callable[[int, float], None] | None = None,
    imitation: float = 0.0,
):
    """Optimizer steps start … steps − 1 on `states` (batch b: fold_in(keys["batch"], b)).

    Args:
      run: (graphdef, params, opt_state, optimizer) as `_init` and `optimizer.init` make them.
      states: the training states.
      keys: "batch" and "kappa" keys (`_keys`).
      save: called as save(step, params, opt_state) every `save_every` steps before the last.
      imitation: the weight of the imitation term (`relaxed_loss`); 0: the expected failure alone.

    Returns:
      (params, opt_state, [(step, batch loss) every `log_every` steps and the last]).
    """
    graphdef, params, opt_state, optimizer = run
    m = states.scores.shape[0]

    losses: list[tuple[int, float]] = []
    for step in range(start, steps):
        idx = _batch_indices(keys["batch"], step, m, batch)
        known = jax.random.bernoulli(jax.random.fold_in(keys["kappa"], step), 0.5, idx.shape)
        params, opt_state, loss = _step(
            graphdef, optimizer, imitation, params, opt_state, states, idx, known
        )
        if step % log_every == 0 or step == steps - 1:
            losses.append((step, float(loss)))
        if on_step is not None:
            on_step(step + 1, float(loss))
        if save is not None and (step + 1) % save_every == 0 and step + 1 < steps:
            save(step + 1, params, opt_state)
    return params, opt_state, losses


class TrainResult(NamedTuple):
    losses: list[tuple[int, float]]  # (step, mean relaxed loss over the batch) every log step
    step: int
    validation: dict[str, float]
    held_out_loss: tuple[float, float]  # relaxed loss on the held-out states, before and after


def train(
    settings: TrainSettings,
    steps: int,
    out: Path,
    *,
    resume: bool = False,
    save_every: int = 250,
    log_every: int = 50,
    on_data: Callable[[], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Trains (or resumes) to `steps` optimizer steps and writes the checkpoint `out`.

    Args:
      settings: the run's settings (with resume, must equal the checkpoint's).
      steps: the total optimizer steps to reach.
      out: the checkpoint file (written every `save_every` steps and at the end).
      resume: continue from `out`'s step instead of starting afresh.
      on_data: called after each (world, budget) block of training states is made.
      on_step: called with (step, loss) after every step.

    Returns:
      TrainResult; `validation` is the mean posterior expected failure (`bayes_risk`) on the
      states of the held-out problems (the last `validation_fraction` of each world's), of dora,
      rebase, the exact optimum with the TRUE directions and κ, and the trained network (κ
      hidden, the rule's default), all as integer allocations.
    """
    worlds = [world_config(w) for w in settings.worlds]
    keys = _keys(settings)
    all_states, problem = make_states(
        keys["data"],
        worlds,
        settings.budgets,
        slots=settings.slots,
        problems=settings.problems,
        rounds=settings.rounds,
        own_slots=settings.own_slots,
        progress=on_data,
    )
    held = problem >= round(settings.problems * (1 - settings.validation_fraction))
    states = jax.tree.map(lambda x: x[np.flatnonzero(~held)], all_states)
    validation = jax.tree.map(lambda x: x[np.flatnonzero(held)], all_states)
    config, graphdef, params, optimizer = _init(settings, keys["init"])
    opt_state = optimizer.init(params)
    start = 0
    if resume:
        record = resume_point(out, settings)
        params, opt_state = restore(record, params, opt_state)
        start = int(record["step"])

    def held_out(params) -> float:
        known = jnp.zeros(validation.budget.shape, bool)
        return float(jax.jit(relaxed_loss, static_argnums=0)(graphdef, params, validation, known))

    before = held_out(params)

    def save(step, params, opt_state):
        save_checkpoint(out, settings, config, params, opt_state, step)

    params, opt_state, losses = fit(
        (graphdef, params, opt_state, optimizer),
        states,
        keys,
        settings.batch,
        start,
        steps,
        save=save,
        save_every=save_every,
        log_every=log_every,
        on_step=on_step,
        imitation=settings.imitation,
    )
    save_checkpoint(out, settings, config, params, opt_state, max(steps, start))
    return TrainResult(
        losses,
        max(steps, start),
        evaluate(graphdef, params, validation),
        (before, held_out(params)),
    )


def world_config(name: str) -> world_lib.WorldConfig:
    """A training world by name: `TRAINING_WORLDS` or a preset (one-line ValueError)."""
    if name in TRAINING_WORLDS:
        return TRAINING_WORLDS[name]
    try:
        return world_lib.preset(name)
    except ValueError:
        known = ", ".join(sorted({*TRAINING_WORLDS, *world_lib.PRESETS}))
        raise ValueError(f"unknown training world {name!r}; choose from {known}") from None


def evaluate(graphdef, params, states: States) -> dict[str, float]:
    """Mean posterior expected failure (`bayes_risk`) of integer allocations on `states`."""
    from flax import nnx

    from dora_jax.optimal import optimal_counts

    model = nnx.merge(graphdef, params)

    def network(s, e, v, n):
        logits = learned.learned_logits(model, s, n, v, e, jnp.float32(1), jnp.asarray(False))
        shares = jnp.where(v, jax.nn.softmax(logits), 0)
        from dora_jax.apportion import apportion_shares

        return apportion_shares(shares, n, v)

    args = (states.scores, states.budget, states.valid, states.embeddings)
    counts = {
        "dora": jax.vmap(lambda s, n, v, e: rules.dora(None, s, n, mask=v, embeddings=e))(*args),
        "rebase": jax.vmap(lambda s, n, v, e: rules.rebase(None, s, n, mask=v))(*args),
        "optimal_true_directions": jax.vmap(optimal_counts)(
            states.w, states.budget, states.kappa, states.valid, states.directions
        ),
        "learned": jax.jit(jax.vmap(network))(
            states.scores, states.embeddings, states.valid, states.budget
        ),
    }
    out = {name: float(bayes_risk(c, states)) for name, c in counts.items()}
    out["states"] = float(states.scores.shape[0])
    return out


def validation_summary(result: TrainResult) -> str:
    v = result.validation
    names = ("rebase", "dora", "learned", "optimal_true_directions")
    parts = [f"{n} {v[n]:.4f}" for n in names]
    return f"mean posterior expected failure on {int(v['states'])} held-out states: " + ", ".join(
        parts
    )
