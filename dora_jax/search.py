"""One batched search engine: the paper's Algorithm 1 as fixed-shape, masked array updates.

Per problem the engine holds N *slots* (active partial solutions). One round:

1. every alive slot generates one step (`world.expand`; the last round, t = T_max − 1, finishes
   every path: the reference code's "generate to EOS");
2. every expanded slot is scored by the PRM (`world.score`, the last-step score, as the reference
   code scores all beams before filtering); slots that finished are appended to a finished buffer
   (a masked scatter at a running count) with their score, answer, correctness and tokens;
3. the search stops when ≥ N solutions are finished, at T_max, or when nothing is left alive;
4. otherwise the rule allocates N over the survivors, and the next round's N slots are the
   survivors repeated B_i times: an exclusive cumsum of B gives each new slot its parent (a
   gather; no lists, no copies).

What a rule needs is read from its registry record (`dora_jax.registry.RuleInfo`), never from its
name: rules that read embeddings get the survivors embedded (`world.embed`), rules that read the
truth get the world's true p instead of the scores, a rule that does not reallocate lets every
survivor continue on its own slot (N independent samples: best-of-N), and a rule with groups
gets the slots' subtree ids, which travel with the slots.

The vote uses the first N finished solutions (in finish order; within a round by slot index).
A finished buffer of F = 2N slots suffices: fewer than N are finished before the last round and
at most N finish in it.

The state is one NamedTuple of fixed-shape arrays, the round is a pure function of named steps
(`plan_round`, `expand_and_score`, `append_finished`, `close_round`), and the loop is injectable
(mctx style): `search` runs a `lax.while_loop` that stops when the problem is done (under `vmap`,
when every problem is), fully compiled for the synthetic world; `search_batch` runs the rounds
from a Python loop with the same compiled steps and a host world's generation, scoring and
embedding (a real LLM, `HostBatchWorld`) called between them, outside jit. The engine knows
nothing of the world beyond the `World` protocol (`dora_jax.base`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from dora_jax import voting, world
from dora_jax.base import HostBatchWorld, PathWorld, Step, World
from dora_jax.ledger import Ledger
from dora_jax.registry import RuleInfo, rule_info

__all__ = [
    "MAX_ROUNDS",
    "Finished",
    "HostBatchWorld",
    "Outcome",
    "PathWorldSwitch",
    "PoolRun",
    "Rule",
    "SearchConfig",
    "SearchResult",
    "SearchState",
    "Step",
    "SyntheticWorld",
    "Trace",
    "World",
    "WorldSwitch",
    "finalize",
    "init_state",
    "python_loop",
    "round_keys",
    "search",
    "search_batch",
    "search_pool",
    "search_round",
    "while_loop",
    "world_switch",
]

MAX_ROUNDS = 40  # T_max, the paper's num_iterations
# Hyperparameters that are per-candidate arrays: the engine supplies them (the slots' subtree
# groups), a search cannot fix them.
_PER_CANDIDATE = ("groups", "directions")


@dataclasses.dataclass(frozen=True)
class Rule:
    """A registered allocation rule with its hyperparameters ((name, value) pairs, hashable).

    What the engine does with it (embed, reallocate, keep groups, …) is read from its registry
    record, `info` (`dora_jax.registry.RuleInfo`).
    """

    method: str
    hyperparameters: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, method: str, **hp) -> Rule:
        return cls(method, tuple(sorted(hp.items())))

    def __post_init__(self):
        info = rule_info(self.method)
        allowed = set(info.defaults) - set(_PER_CANDIDATE)
        for name, _ in self.hyperparameters:
            if name not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                raise ValueError(f"{self.method} has no hyperparameter {name!r} (takes: {names})")
        if info.check is not None:
            info.check(self.resolved)

    @property
    def info(self) -> RuleInfo:
        return rule_info(self.method)

    @property
    def resolved(self) -> dict[str, Any]:
        """Every hyperparameter: the record's defaults overridden by this rule's."""
        return self.info.resolve(dict(self.hyperparameters))

    @property
    def min_budget(self) -> int:
        return self.info.min_budget(self.resolved)

    @property
    def group_width(self) -> int:
        """Slots per initial subtree group (1: every slot its own; groups unused)."""
        width = self.info.group_width
        return 1 if width is None else width(self.resolved)

    @property
    def uses_embeddings(self) -> bool:
        return self.info.reads_embeddings

    @property
    def refills(self) -> bool:
        return self.info.reallocates

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.hyperparameters)
        return f"{self.method}({extra})" if extra else self.method


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Static settings of a search: N, T_max and the rule(s).

    With several rules, one compiled search serves them all: `search(..., rule=i)` picks rule i
    (i may be traced; unbatched under vmap it stays a real branch, so only rule i runs).
    """

    budget: int
    rules: tuple[Rule, ...]
    max_rounds: int = MAX_ROUNDS

    @classmethod
    def make(cls, method: str, budget: int, *, max_rounds: int = MAX_ROUNDS, **hp) -> SearchConfig:
        return cls(budget, (Rule.make(method, **hp),), max_rounds)

    def __post_init__(self):
        if not isinstance(self.budget, int) or isinstance(self.budget, bool) or self.budget < 1:
            raise ValueError(f"budget must be an integer >= 1, got {self.budget!r}")
        if not isinstance(self.max_rounds, int) or self.max_rounds < 1:
            raise ValueError(f"max_rounds must be an integer >= 1, got {self.max_rounds!r}")
        if not self.rules:
            raise ValueError("a search needs at least one rule")
        for rule in self.rules:
            if self.budget < rule.min_budget:
                raise ValueError(
                    f"budget {self.budget} is smaller than the {rule.info.min_budget_reason} "
                    f"{rule.min_budget} of {rule.method}"
                )

    @property
    def uses_embeddings(self) -> bool:
        return any(rule.uses_embeddings for rule in self.rules)

    @property
    def finished_capacity(self) -> int:
        return 2 * self.budget


class Finished(NamedTuple):
    """Finished solutions of one problem in finish order; leading axis F = 2N."""

    answer: Int[Array, " F"]
    correct: Bool[Array, " F"]
    score: Float[Array, " F"]
    tokens: Int[Array, " F"]
    round: Int[Array, " F"]
    direction: Int[Array, " F"]


class Trace(NamedTuple):
    """What happened each round (the evidence); leading axis T = T_max."""

    active: Int[Array, " T"]  # slots that generated a step
    finished: Int[Array, " T"]  # of which finished
    directions: Int[Array, " T"]  # distinct directions among the survivors
    parent: Int[Array, "T N"]  # [t, s]: the slot of round t that slot s of round t+1 continues
    allocation: Int[Array, "T N"]  # [t, s]: rollouts given to survivor slot s at the end of round t


class SearchState(NamedTuple):
    """The whole search of one problem: fixed shapes, masks, no Python objects."""

    keys: PRNGKeyArray  # [T, 4] per-round keys, drawn once (one RNG call site, not one per round)
    round: Int[Array, ""]
    done: Bool[Array, ""]
    slots: Any
    alive: Bool[Array, " N"]
    group: Int[Array, " N"]  # subtree group of each slot (for rules with groups)
    num_finished: Int[Array, ""]
    finished: Finished  # None in `search_pool`'s lanes (its rounds write to its output)
    trace: Trace  # None in `search_pool`'s lanes
    ledger: Ledger


class SearchResult(NamedTuple):
    """The engine's output for one problem: the verdicts and what led to them."""

    accuracy: Bool[Array, ""]  # PRM-weighted majority vote is correct (the paper's metric)
    majority: Bool[Array, ""]
    best_of_n: Bool[Array, ""]
    pass_at_n: Bool[Array, ""]
    correct_fraction: Float[Array, ""]  # of the counted solutions (the paper's "pass rate")
    rounds: Int[Array, ""]
    num_finished: Int[Array, ""]
    finished: Finished
    trace: Trace
    ledger: Ledger


def _budget(config: SearchConfig, budget) -> Int[Array, ""]:
    """The rollout budget N: `config.budget` (the number of slots) unless a smaller one is given."""
    return jnp.asarray(config.budget if budget is None else budget, jnp.int32)


def round_keys(key: PRNGKeyArray, config: SearchConfig) -> PRNGKeyArray:
    """The per-round keys [T, 4] of a search (expand, score, embed, allocate), drawn once."""
    t = config.max_rounds
    # = jax.random.split(key, (t, 4)) bit for bit (threefry_partitionable), which XLA CPU takes
    # ~1.5 s longer to compile
    return jax.random.split(key, t * 4).reshape(t, 4)


def init_state(
    key: PRNGKeyArray, problem: Any, world: World, config: SearchConfig, rule=0, *, budget=None
) -> SearchState:
    return _init_from_keys(round_keys(key, config), problem, world, config, rule, budget=budget)


def _init_from_keys(
    keys: PRNGKeyArray, problem: Any, world: World, config: SearchConfig, rule=0, *, budget=None
) -> SearchState:
    n, f, t = config.budget, config.finished_capacity, config.max_rounds
    widths = jnp.asarray([r.group_width for r in config.rules], jnp.int32)
    return SearchState(
        keys=keys,
        round=jnp.zeros((), jnp.int32),
        done=jnp.zeros((), bool),
        slots=world.init(problem, n),
        alive=jnp.arange(n) < _budget(config, budget),
        group=jnp.arange(n, dtype=jnp.int32) // widths[jnp.asarray(rule, jnp.int32)],
        num_finished=jnp.zeros((), jnp.int32),
        finished=_empty_finished(f),
        trace=_empty_trace(t, n),
        ledger=Ledger.zeros(),
    )


def _empty_trace(rounds: int, n: int) -> Trace:
    """A trace of `rounds` rows over `n` slots, none written yet (the fill values)."""
    return Trace(
        active=jnp.zeros((rounds,), jnp.int32),
        finished=jnp.zeros((rounds,), jnp.int32),
        directions=jnp.zeros((rounds,), jnp.int32),
        parent=jnp.full((rounds, n), -1, jnp.int32),
        allocation=jnp.zeros((rounds, n), jnp.int32),
    )


def _empty_finished(size: int) -> Finished:
    """A finished buffer of `size` entries, none written yet (the fill values)."""
    return Finished(
        answer=jnp.full((size,), voting.NO_ANSWER, jnp.int32),
        correct=jnp.zeros((size,), bool),
        score=jnp.zeros((size,), jnp.float32),
        tokens=jnp.zeros((size,), jnp.int32),
        round=jnp.full((size,), -1, jnp.int32),
        direction=jnp.zeros((size,), jnp.int32),
    )


def _count_distinct(ids: Int[Array, " N"], mask: Bool[Array, " N"]) -> Int[Array, ""]:
    big = jnp.iinfo(jnp.int32).max
    s = jnp.sort(jnp.where(mask, ids, big))
    new = jnp.concatenate([s[:1] != big, (s[1:] != s[:-1]) & (s[1:] != big)])
    return jnp.sum(new).astype(jnp.int32)


def parents_from_counts(counts: Int[Array, " N"]) -> tuple[Int[Array, " N"], Bool[Array, " N"]]:
    """New slot s continues the candidate j with cumsum(B)_{j-1} ≤ s < cumsum(B)_j."""
    n = counts.shape[0]
    ends = jnp.cumsum(counts, dtype=jnp.int32)
    slot = jnp.arange(n, dtype=jnp.int32)
    parent = jnp.searchsorted(ends, slot, side="right").astype(jnp.int32)
    filled = slot < ends[-1]
    return jnp.where(filled, jnp.minimum(parent, n - 1), 0), filled


class RoundPlan(NamedTuple):
    """The start of a round: its keys, whether it is the last, and which slots generate."""

    k_expand: PRNGKeyArray
    k_score: PRNGKeyArray
    k_embed: PRNGKeyArray
    k_alloc: PRNGKeyArray
    final: Bool[Array, ""]
    alive: Bool[Array, " N"]  # the slots that generate a step this round


class Settled(NamedTuple):
    """A round after generation and scoring, before the reallocation."""

    slots: Any  # the expanded slots
    step: Step
    scores: Float[Array, " N"]
    path_tokens: Int[Array, " N"]
    ended: Bool[Array, " N"]  # generated and finished this round
    survivors: Bool[Array, " N"]  # generated and not finished
    finished: Finished
    num_finished: Int[Array, ""]
    stop: Bool[Array, ""]  # the search ends with this round


def plan_round(state: SearchState, config: SearchConfig) -> RoundPlan:
    """Step 0: the round's keys (drawn in `init_state`), T_max, the slots that generate."""
    t = state.round
    k_expand, k_score, k_embed, k_alloc = state.keys[t]
    return RoundPlan(
        k_expand,
        k_score,
        k_embed,
        k_alloc,
        final=t >= config.max_rounds - 1,
        alive=state.alive & ~state.done,
    )


def expand_and_score(
    plan: RoundPlan, problem: Any, world: World, slots: Any
) -> tuple[Any, Step, Float[Array, " N"]]:
    """Step 1: every alive slot generates one step and the PRM scores it (a pure world)."""
    slots, step = world.expand(plan.k_expand, problem, slots, plan.final, active=plan.alive)
    scores = world.score(plan.k_score, problem, slots, active=plan.alive)
    return slots, step, scores


def finish_positions(
    num_finished: Int[Array, ""], ended: Bool[Array, " N"], config: SearchConfig
) -> Int[Array, " N"]:
    """Where each slot that ended joins the finished buffer (after the `num_finished` already
    there, in slot order); F (out of range: a write there is dropped) for the others."""
    position = num_finished + jnp.cumsum(ended, dtype=jnp.int32) - ended.astype(jnp.int32)
    return jnp.where(ended, position, config.finished_capacity)


def finished_entries(
    step: Step, scores: Float[Array, " N"], path_tokens: Int[Array, " N"], round_index
) -> Finished:
    """Each slot's entry of the finished buffer, were it to finish this round (leading axis N)."""
    return Finished(
        answer=step.answer,
        correct=step.correct,
        score=scores,
        tokens=path_tokens,
        round=jnp.broadcast_to(jnp.asarray(round_index, jnp.int32), scores.shape),
        direction=step.direction,
    )


def append_finished(
    state: SearchState,
    plan: RoundPlan,
    config: SearchConfig,
    slots: Any,
    step: Step,
    scores: Float[Array, " N"],
    path_tokens: Int[Array, " N"],
    *,
    budget=None,
) -> Settled:
    """Step 2: the slots that finished join the finished buffer in slot order; stop or not."""
    n = _budget(config, budget)
    scores = jnp.asarray(scores).astype(jnp.float32)
    alive = plan.alive
    ended = alive & step.finished
    survivors = alive & ~step.finished
    where = finish_positions(state.num_finished, ended, config)
    entries = finished_entries(step, scores, path_tokens, state.round)
    fin = state.finished
    if fin is not None:  # None: a `search_pool` lane, which writes the entries to its output
        fin = jax.tree.map(lambda f, x: f.at[where].set(x, mode="drop"), fin, entries)
    num_finished = state.num_finished + jnp.sum(ended).astype(jnp.int32)
    stop = state.done | plan.final | (num_finished >= n) | ~jnp.any(survivors)
    return Settled(slots, step, scores, path_tokens, ended, survivors, fin, num_finished, stop)


def reallocate(
    rule: Rule, config: SearchConfig, key, scores, survivors, embed, truth, group, budget=None
):
    """Step 3 for one rule: counts B over the survivors and the next round's slots:
    (counts, parent, next_alive).

    `embed()` computes the survivors' embeddings and `truth()` their true success probabilities;
    only rules whose record reads them call them, so inside a multi-rule search the other
    branches never pay for the embedder.
    """
    n = config.budget
    info = rule.info
    if info.reads_truth:
        scores = truth()
    if not info.reallocates:  # every survivor continues on its own slot
        return survivors.astype(jnp.int32), jnp.arange(n, dtype=jnp.int32), survivors
    hp = dict(rule.hyperparameters)
    if info.group_width is not None:
        hp["groups"] = group
    embeddings = embed() if info.reads_embeddings else None
    counts = info.allocate(
        key, scores, _budget(config, budget), mask=survivors, embeddings=embeddings, **hp
    )
    parent, filled = parents_from_counts(counts)
    return counts, parent, filled


def reallocate_any(
    state: SearchState,
    plan: RoundPlan,
    settled: Settled,
    config: SearchConfig,
    rule,
    embed: Callable[[], Float[Array, "N E"]],
    truth: Callable[[], Float[Array, " N"]],
    *,
    budget=None,
):
    """Step 3: rule `config.rules[rule]` (a real branch when `rule` is unbatched) allocates N
    over the survivors; nothing once the search stops."""
    branches = [
        functools.partial(
            reallocate,
            r,
            config,
            plan.k_alloc,
            settled.scores,
            settled.survivors,
            embed,
            truth,
            budget=budget,
        )
        for r in config.rules
    ]
    if len(branches) == 1:
        counts, parent, next_alive = branches[0](state.group)
    else:
        counts, parent, next_alive = lax.switch(rule, branches, state.group)
    return jnp.where(settled.stop, 0, counts), parent, next_alive & ~settled.stop


def update_ledger(
    ledger: Ledger,
    plan: RoundPlan,
    settled: Settled,
    config: SearchConfig,
    rule,
    prompt: Int[Array, ""],
    round_index: Int[Array, ""],
) -> Ledger:
    """Step 5: what the round cost each model (see `dora_jax.ledger`)."""
    alive, step, path_tokens = plan.alive, settled.step, settled.path_tokens
    active = jnp.sum(alive).astype(jnp.int32)
    first = round_index == 0
    reads = jnp.asarray([r.uses_embeddings for r in config.rules])[rule]
    embedded = settled.survivors & ~settled.stop & reads
    return Ledger(
        rollouts=ledger.rollouts + active,
        policy_tokens=ledger.policy_tokens
        + jnp.sum(jnp.where(alive, step.tokens, 0), dtype=jnp.int32)
        + jnp.where(first, prompt, 0),
        prm_calls=ledger.prm_calls + active,
        prm_tokens=ledger.prm_tokens
        + jnp.sum(jnp.where(alive, path_tokens + prompt, 0), dtype=jnp.int32),
        prm_tokens_cached=ledger.prm_tokens_cached
        + jnp.sum(jnp.where(alive, step.tokens, 0), dtype=jnp.int32)
        + jnp.where(first, prompt, 0),
        embed_calls=ledger.embed_calls + jnp.sum(embedded).astype(jnp.int32),
        embed_tokens=ledger.embed_tokens
        + jnp.sum(jnp.where(embedded, path_tokens, 0), dtype=jnp.int32),
    )


def record_trace(
    trace: Trace,
    plan: RoundPlan,
    settled: Settled,
    counts: Int[Array, " N"],
    parent: Int[Array, " N"],
    next_alive: Bool[Array, " N"],
    round_index: Int[Array, ""],
) -> Trace:
    """Step 6: the round's evidence (who generated, finished, continued whom, got what)."""
    row = trace_row(plan, settled, counts, parent, next_alive)
    return jax.tree.map(lambda a, x: a.at[round_index].set(x), trace, row)


def trace_row(
    plan: RoundPlan,
    settled: Settled,
    counts: Int[Array, " N"],
    parent: Int[Array, " N"],
    next_alive: Bool[Array, " N"],
) -> Trace:
    """The round's row of the trace (a `Trace` without its leading T axis)."""
    return Trace(
        active=jnp.sum(plan.alive).astype(jnp.int32),
        finished=jnp.sum(settled.ended).astype(jnp.int32),
        directions=_count_distinct(settled.step.direction, settled.survivors),
        parent=jnp.where(next_alive, parent, -1),
        allocation=counts,
    )


def reslot(
    state: SearchState,
    plan: RoundPlan,
    settled: Settled,
    config: SearchConfig,
    rule,
    prompt: Int[Array, ""] | int,
    counts: Int[Array, " N"],
    parent: Int[Array, " N"],
    next_alive: Bool[Array, " N"],
) -> SearchState:
    """Steps 4–6 for an allocation already made (`counts`, its `parent` per next-round slot and
    which of them are alive): the next round's state, its trace row and its ledger."""
    prompt = jnp.asarray(prompt, jnp.int32)
    return SearchState(
        keys=state.keys,
        round=state.round + 1,
        done=settled.stop,
        slots=jax.tree.map(lambda x: x[parent], settled.slots),
        alive=next_alive,
        group=state.group[parent],
        num_finished=settled.num_finished,
        finished=settled.finished,
        trace=(
            None  # a `search_pool` lane, which writes the rows to its output
            if state.trace is None
            else record_trace(state.trace, plan, settled, counts, parent, next_alive, state.round)
        ),
        ledger=update_ledger(state.ledger, plan, settled, config, rule, prompt, state.round),
    )


def close_round(
    state: SearchState,
    plan: RoundPlan,
    settled: Settled,
    config: SearchConfig,
    rule,
    embed: Callable[[], Float[Array, "N E"]],
    truth: Callable[[], Float[Array, " N"]],
    prompt: Int[Array, ""] | int,
    *,
    budget=None,
    freeze: bool = True,
) -> SearchState:
    """Steps 3–6: reallocate, re-slot (step 4: the next round's slot s continues survivor
    parent[s], a gather), the ledger and the trace; a no-op once `state.done`.

    `freeze=False` skips the whole-state select that makes a round after the stop a no-op, for
    loops that never run a round on a done state: `while_loop` (its condition reads `done`; under
    `vmap`, `lax.while_loop` runs the body on every lane while any lane's condition holds and
    keeps the old carry of the lanes whose condition is false, the same select) and `python_loop`
    (one problem). `search_batch` runs every problem until all are done, so it freezes.
    """
    return _close_round(
        state, plan, settled, config, rule, embed, truth, prompt, budget=budget, freeze=freeze
    )[0]


def _close_round(
    state, plan, settled, config, rule, embed, truth, prompt, *, budget, freeze
) -> tuple[SearchState, Trace]:
    """`close_round`, and the round's trace row."""
    counts, parent, next_alive = reallocate_any(
        state, plan, settled, config, rule, embed, truth, budget=budget
    )
    new = reslot(state, plan, settled, config, rule, prompt, counts, parent, next_alive)
    row = trace_row(plan, settled, counts, parent, next_alive)
    if not freeze:
        return new, row
    # Rounds after the stop change nothing.
    return jax.tree.map(lambda a, b: jnp.where(state.done, a, b), state, new), row


def truth_reader(world: Any, config: SearchConfig, slots: Any) -> Callable[[], Float[Array, " N"]]:
    """What `close_round` calls for the truth of `slots` (read only by rules that need it): the
    world's `truth`, or, for a world without one, an error naming the rules that read it."""
    if hasattr(world, "truth"):
        return lambda: world.truth(slots).astype(jnp.float32)

    def truth():
        raise ValueError(
            f"{_truth_readers(config)} needs a world that knows the truth (World.truth); "
            f"{type(world).__name__} has none"
        )

    return truth


def search_round(
    state: SearchState,
    problem: Any,
    world: World,
    config: SearchConfig,
    rule=0,
    *,
    budget=None,
    freeze: bool = True,
) -> SearchState:
    """One round of Algorithm 1 (a no-op once `state.done`, unless `freeze=False`: see
    `close_round`) with rule `config.rules[rule]`.

    The named steps: `plan_round`, `expand_and_score`, `append_finished`, then `close_round`
    (`reallocate_any`, the re-slot gather, `update_ledger`, `record_trace`). `search_batch`
    runs the same steps with a host world's generation between them.

    `rule` is deliberately not part of the carried state: kept outside, it stays unbatched under
    `vmap`, so `lax.switch` remains a real branch and only the chosen rule runs. So is `budget`
    (see `search`).
    """
    return _play_round(state, problem, world, config, rule, budget=budget, freeze=freeze)[0]


class RoundRecord(NamedTuple):
    """What a round leaves in the finished buffer and the trace (for `search_pool`'s lanes,
    which write it straight to the output instead of carrying the buffers)."""

    start: Int[Array, ""]  # where the round's entries go in the finished buffer
    entries: Finished  # [N] the entries of the slots that finished, in slot order; then fill
    row: Trace  # the round's trace row (no T axis)


def _play_round(
    state: SearchState, problem, world, config: SearchConfig, rule, *, budget, freeze: bool
) -> tuple[SearchState, RoundRecord]:
    """`search_round`, and its record."""
    plan = plan_round(state, config)
    slots, step, scores = expand_and_score(plan, problem, world, state.slots)
    path_tokens = world.path_tokens(slots)
    settled = append_finished(state, plan, config, slots, step, scores, path_tokens, budget=budget)

    def embed():
        return world.embed(plan.k_embed, problem, slots, active=settled.survivors)

    truth = truth_reader(world, config, slots)
    prompt = world.prompt_tokens(problem)
    new, row = _close_round(
        state, plan, settled, config, rule, embed, truth, prompt, budget=budget, freeze=freeze
    )
    entries = finished_entries(settled.step, settled.scores, path_tokens, state.round)
    return new, RoundRecord(state.num_finished, _compact(entries, settled.ended), row)


def _compact(entries: Finished, ended: Bool[Array, " N"]) -> Finished:
    """The entries of the slots that `ended`, in slot order, then the buffer's fill values: what
    `append_finished` writes at positions num_finished, num_finished + 1, … of the buffer (where
    nothing was written yet, so the fill leaves them as they were)."""
    n = ended.shape[0]
    # k-th entry: the first slot with more than k ended slots up to it (Σ of an [N, N] compare:
    # no scatter, no loop).
    upto = jnp.cumsum(ended, dtype=jnp.int32)
    k = jnp.arange(n, dtype=jnp.int32)
    source = jnp.sum(upto[None, :] <= k[:, None], axis=1, dtype=jnp.int32)
    taken = k < upto[-1]
    fill = _empty_finished(1)
    return jax.tree.map(
        lambda x, f: jnp.where(taken, x[jnp.minimum(source, n - 1)], f[0]), entries, fill
    )


def _truth_readers(config: SearchConfig) -> str:
    return ", ".join(r.method for r in config.rules if r.info.reads_truth) or "this rule"


def while_loop(state: SearchState, round_fn: Callable[[SearchState], SearchState], max_rounds):
    """The default loop: compiled, stops at `done` (under vmap: when all problems are done)."""
    return lax.while_loop(lambda s: ~s.done & (s.round < max_rounds), round_fn, state)


def python_loop(state: SearchState, round_fn, max_rounds):
    """A Python loop over the same round function (one problem; see `search_batch` for a batch
    with a host world)."""
    while not bool(state.done) and int(state.round) < max_rounds:
        state = round_fn(state)
    return state


class Outcome(NamedTuple):
    """What `finalize` reads of a search's last state (the part `search_pool` keeps per problem)."""

    round: Int[Array, ""]
    num_finished: Int[Array, ""]
    finished: Finished
    trace: Trace
    ledger: Ledger


def _initial_outcome(config: SearchConfig) -> Outcome:
    """A search's outcome before its first round: the fill values of every field, which depend
    on no problem (what `_init_from_keys` starts a state with)."""
    n, f, t = config.budget, config.finished_capacity, config.max_rounds
    zero = jnp.zeros((), jnp.int32)
    return Outcome(zero, zero, _empty_finished(f), _empty_trace(t, n), Ledger.zeros())


def finalize(state: SearchState | Outcome, config: SearchConfig, *, budget=None) -> SearchResult:
    """Votes over the first N finished solutions."""
    fin = state.finished
    # Only the first N slots of the buffer can count: vote over them alone (the pairwise votes
    # cost O(F²), a quarter of it this way).
    n = config.budget
    answer, score, correct = fin.answer[:n], fin.score[:n], fin.correct[:n]
    valid = jnp.arange(n) < jnp.minimum(state.num_finished, _budget(config, budget))
    return SearchResult(
        accuracy=voting.weighted_vote(answer, score, correct, valid),
        majority=voting.majority_vote(answer, correct, valid),
        best_of_n=voting.best_of_n(answer, score, correct, valid),
        pass_at_n=voting.pass_at_n(correct, valid),
        correct_fraction=voting.correct_fraction(correct, valid),
        rounds=state.round,
        num_finished=state.num_finished,
        finished=fin,
        trace=state.trace,
        ledger=state.ledger,
    )


def search(
    key: PRNGKeyArray,
    problem: Any,
    world: World,
    config: SearchConfig,
    *,
    rule: int | Int[Array, ""] = 0,
    budget: int | Int[Array, ""] | None = None,
    loop: Callable = while_loop,
) -> SearchResult:
    """Runs Algorithm 1 on ONE problem (vmap over problems at the edge).

    Args:
      key: the search's randomness (the world's own per-node draws come from the problem).
      problem: a problem of `world`.
      world: a `World` (static; e.g. `SyntheticWorld(config)`).
      config: N, T_max and the rule(s) (static).
      rule: which of `config.rules` to run (may be traced).
      budget: the rollout budget N, 1 ≤ N ≤ `config.budget` (the default; may be traced, is not
        checked). A smaller budget runs in the `config.budget` slots with the extra ones dead
        from the start, so one compiled search serves several budgets: the same search as one
        compiled for N when the world's draws for slot i do not depend on the number of slots
        (SyntheticWorld's do not), bit for bit except that a rule's float sums over the slots may
        round differently in the last bit (and so rarely break a float near-tie the other way). The
        result keeps the `config.budget` shapes (F = 2·config.budget, trace [T, config.budget]).
      loop: `while_loop` (compiled, default) or `python_loop` (the same rounds from Python;
        a host world runs through `search_batch`).

    Returns:
      SearchResult: votes (weighted = the paper's accuracy, majority, best-of-N, pass@N), the
      finished solutions, the per-round trace and the cost ledger.
    """
    state = init_state(key, problem, world, config, rule, budget=budget)
    rule = jnp.asarray(rule, jnp.int32)
    # The built-in loops never run a round on a done problem (see `close_round`); an injected
    # loop might, so it gets the no-op rounds.
    freeze = loop not in (while_loop, python_loop)

    def round_fn(s):
        return search_round(s, problem, world, config, rule, budget=budget, freeze=freeze)

    state = loop(state, round_fn, config.max_rounds)
    return finalize(state, config, budget=budget)


class PoolRun(NamedTuple):
    """`search_pool`'s output: the results and the work the lanes did."""

    result: SearchResult  # leading axis P, as `jax.vmap(search)` gives
    lane_rounds: Int[Array, ""]  # rounds the pool ran
    slot_steps: Int[Array, ""]  # slot-steps its rounds computed, the idle ones included


class _Pool(NamedTuple):
    state: SearchState  # [L, ...] the lanes' searches
    problem: Any  # [L, ...] the lanes' problems
    budget: Int[Array, " L"]
    problem_index: Int[Array, " L"]  # the problem each lane runs; P: idle (the queue is empty)
    next: Int[Array, ""]  # the first problem no lane has taken yet
    out: Outcome  # [P, ...] each finished problem's outcome, at its index
    lane_rounds: Int[Array, ""]


def search_pool(
    keys: PRNGKeyArray,
    problems: Any,
    world: World,
    config: SearchConfig,
    *,
    lanes: int,
    rule: int | Int[Array, ""] = 0,
    budget: int | Int[Array, ""] | Int[Array, " P"] | None = None,
    paths: bool | None = None,
) -> PoolRun:
    """Runs Algorithm 1 on P problems through a fixed pool of `lanes` problem lanes.

    `jax.vmap(search)` runs every problem for as many rounds as the slowest one needs (a vmapped
    while loop runs while any lane's condition holds); here each round runs `lanes` searches,
    each lane writes its round's finished entries and trace row straight to the output (at its
    problem's index: a lane carries no buffer of its own, so a round copies none), and a lane
    whose search stopped writes its counts and ledger there and takes the next problem of the
    queue (in lane order). A problem's search reads only
    its own key, problem and budget, so its result is the one `jax.vmap(search)` gives, bit for
    bit, whichever lane runs it and whenever. The work is rounds × lanes × N slot-steps, about
    Σ rounds × N plus the drain at the end (when the queue is empty and lanes fall idle); fewer
    lanes mean a shorter drain and smaller (less vectorized) rounds.

    A rule that never reallocates (temperature sampling: N independent paths) wastes most of a
    problem lane: its paths end at different rounds, yet the lane steps all N slots until the
    last one ends. For such rules, on a `PathWorld`, the pool runs PATHS instead (`paths`, by
    default whenever it can): `lanes`·N path lanes, each one path of one problem, refilled from
    the queue of every problem's paths, and each problem's result rebuilt from its paths'
    records, again bit for bit (see `_search_paths`).

    Args:
      keys: PRNGKey[P], one per problem (as for `jax.vmap(search)`).
      problems: a batch of problems of `world` (leading axis P).
      world: a pure `World` (static).
      config: as in `search`.
      lanes: L, the problems in flight (static; clipped to P).
      rule: which of `config.rules` to run (may be traced; stays a real branch).
      budget: as in `search`: one for every problem, or Int[P], one each (traced).
      paths: run path lanes (True), problem lanes (False), or path lanes when the world is a
        `PathWorld` and the rule (`rule` a Python int; otherwise every rule of `config`) never
        reallocates (None, the default).

    Returns:
      PoolRun: the SearchResult with leading axis P, the rounds the pool ran and the slot-steps
      they computed.
    """
    total = keys.shape[0]
    if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
        raise ValueError(f"lanes must be an integer >= 1, got {lanes!r}")
    if paths is None:
        paths = _runs_by_path(world, config, rule)
    elif paths and not _runs_by_path(world, config, rule):
        raise ValueError(
            "paths=True needs a PathWorld and rules that never reallocate "
            f"(got {type(world).__name__}, {', '.join(r.label for r in config.rules)})"
        )
    if paths:
        return _search_paths(
            keys, problems, world, config, lanes=lanes * config.budget, rule=rule, budget=budget
        )
    width = min(lanes, total)
    rule = jnp.asarray(rule, jnp.int32)
    budgets = jnp.broadcast_to(_budget(config, budget), (total,))
    all_keys = jax.vmap(lambda k: round_keys(k, config))(keys)

    def lane_budget(b):
        # No budget given: the constant config.budget, as `search` uses it.
        return None if budget is None else b

    def fresh_lane(k, p, b):
        # A lane carries no finished buffer nor trace: its rounds write them to the output.
        state = _init_from_keys(k, p, world, config, rule, budget=lane_budget(b))
        return state._replace(finished=cast(Finished, None), trace=cast(Trace, None))

    fresh = jax.vmap(fresh_lane)

    def take(index):
        i = jnp.minimum(index, total - 1)
        return jax.tree.map(lambda x: x[i], (all_keys, problems, budgets))

    first = jnp.arange(width, dtype=jnp.int32)
    k0, p0, b0 = take(first)
    # The output starts as every problem's initial outcome: the rounds write their entries and
    # rows into it.
    empty = jax.tree.map(lambda x: jnp.broadcast_to(x, (total, *x.shape)), _initial_outcome(config))
    pool = _Pool(fresh(k0, p0, b0), p0, b0, first, jnp.int32(width), empty, jnp.int32(0))

    def one_round(s, problem, b):
        return _play_round(s, problem, world, config, rule, budget=lane_budget(b), freeze=False)

    def body(pool: _Pool) -> _Pool:
        state, record = jax.vmap(one_round)(pool.state, pool.problem, pool.budget)
        out = _write_round(pool.out, pool.problem_index, pool.state.round, record, state)
        stopped = state.done
        # Lanes that stopped take the next problems in lane order; past the queue they idle.
        rank = jnp.cumsum(stopped, dtype=jnp.int32) - stopped.astype(jnp.int32)
        index = jnp.where(stopped, jnp.minimum(pool.next + rank, total), pool.problem_index)
        refill = stopped & (index < total)
        k, problem, b = take(index)

        def pick(new, old):
            return jnp.where(refill.reshape(refill.shape + (1,) * (old.ndim - 1)), new, old)

        return _Pool(
            state=jax.tree.map(pick, fresh(k, problem, b), state),
            problem=jax.tree.map(pick, problem, pool.problem),
            budget=pick(b, pool.budget),
            problem_index=index,
            next=jnp.minimum(pool.next + jnp.sum(stopped, dtype=jnp.int32), total),
            out=out,
            lane_rounds=pool.lane_rounds + 1,
        )

    pool = lax.while_loop(lambda p: jnp.any(p.problem_index < total), body, pool)
    result = jax.vmap(lambda o, b: finalize(o, config, budget=lane_budget(b)))(pool.out, budgets)
    return PoolRun(result, pool.lane_rounds, pool.lane_rounds * width * config.budget)


def _write_round(
    out: Outcome,
    problem_index: Int[Array, " L"],
    round_index: Int[Array, " L"],
    record: RoundRecord,
    state: SearchState,
) -> Outcome:
    """`search_pool`'s writes of one round to its output [P, ...]: each lane's finished entries
    and trace row (lane l ran round `round_index[l]` of problem `problem_index[l]`; an idle lane's
    index P is out of range, its writes dropped), and the round count, finished count and ledger
    of the lanes whose search stopped (`state`: the lanes after the round).

    A lane runs round t of a problem once, so each entry and row is written once; the rows past a
    problem's last round and the buffer past its last entry keep the fill values `out` starts
    with (an initial state's)."""
    total = out.round.shape[0]
    # Each lane's entries as one window at (problem, start): start < N (the lane ran a round, so
    # fewer than N had finished) and the window is N long, so it ends within F = 2N.
    at = jnp.stack([problem_index, record.start], axis=-1)
    window = lax.ScatterDimensionNumbers(
        update_window_dims=(1,), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0, 1)
    )
    finished = jax.tree.map(
        lambda o, x: lax.scatter(
            o, at, x.astype(o.dtype), window, mode=lax.GatherScatterMode.FILL_OR_DROP
        ),
        out.finished,
        record.entries,
    )
    trace = jax.tree.map(
        lambda o, x: o.at[problem_index, round_index].set(x, mode="drop"), out.trace, record.row
    )
    where = jnp.where(state.done, problem_index, total)
    last = (state.round, state.num_finished, state.ledger)
    kept = (out.round, out.num_finished, out.ledger)
    r, num_finished, ledger = jax.tree.map(lambda o, x: o.at[where].set(x, mode="drop"), kept, last)
    return Outcome(r, num_finished, finished, trace, ledger)


def _runs_by_path(world: Any, config: SearchConfig, rule) -> bool:
    """Whether `search_pool` can run paths: a `PathWorld`, and no rule that may run reallocates."""
    chosen = (config.rules[rule],) if isinstance(rule, int) else config.rules
    return isinstance(world, PathWorld) and not any(r.refills for r in chosen)


# Path lanes narrow as the queue drains: once it is empty and at most 1/_NARROW of the lanes still
# run, the running paths move to a pool of 1/_NARROW the width (down to _MIN_PATH_LANES lanes), so
# the tail of long paths at the end does not keep every lane stepping.
_NARROW = 4
_MIN_PATH_LANES = 256


class _PathRecord(NamedTuple):
    """What each path leaves behind; leading axis Q = P·N (path q: problem q // N, slot q % N)."""

    end: Int[Array, " Q"]  # the round of its last step; -1: never ran (a slot beyond the budget)
    finished: Bool[Array, " Q"]  # it finished (else the search stopped it at T_max)
    answer: Int[Array, " Q"]
    correct: Bool[Array, " Q"]
    score: Float[Array, " Q"]
    tokens: Int[Array, " Q"]  # its path tokens at the end
    direction: Int[Array, " Q"]
    policy_tokens: Int[Array, " Q"]  # Σ of its steps' tokens
    prm_tokens: Int[Array, " Q"]  # Σ over its rounds of its path tokens
    embed_tokens: Int[Array, " Q"]  # Σ over the rounds it went on of its path tokens
    directions: Int[Array, "Q T"]  # the direction it reached each round


class _PathLanes(NamedTuple):
    path: Int[Array, " L"]  # the path each lane runs; Q: idle
    round: Int[Array, " L"]
    slot: Any  # [L, ...]
    policy_tokens: Int[Array, " L"]
    prm_tokens: Int[Array, " L"]
    embed_tokens: Int[Array, " L"]


class _PathPool(NamedTuple):
    lanes: _PathLanes
    next: Int[Array, ""]  # the queue position of the next path to take
    record: _PathRecord
    rounds: Int[Array, ""]
    slot_steps: Int[Array, ""]


def _search_paths(
    keys: PRNGKeyArray,
    problems: Any,
    world: Any,
    config: SearchConfig,
    *,
    lanes: int,
    rule: int | Int[Array, ""] = 0,
    budget: int | Int[Array, ""] | Int[Array, " P"] | None = None,
) -> PoolRun:
    """`search_pool` for a rule that never reallocates, one path per lane.

    Under such a rule a problem's slot i is one path: it generates a step each round until its
    step finishes it, and the search stops when every path has (or at T_max, which finishes them
    all). Nothing of path i depends on the others: its round-t step is slot i's step of
    `expand(keys[t, 0], …)` (`PathWorld.expand_path(…, i, …)`: the same words), its score slot i's
    of `score(keys[t, 1], …)`; the stop decision only ends a round after every path has ended.
    So each lane runs one path (problem p, slot i) from the root to its end and writes its record
    at p·N + i, then takes the next path of the queue (every problem's live slots, in order); a
    problem's `Outcome` is rebuilt from its N records (`_paths_outcome`). Identical to
    `jax.vmap(search)`: the finished buffer in the engine's order (by round, then slot), the
    votes, trace (active, finished, distinct directions of the survivors, parents, allocations)
    and ledger (integer sums: their order cannot change them).

    The pool narrows as the queue drains (`_NARROW`), each width its own compiled loop.
    """
    total = keys.shape[0]
    n, t_max = config.budget, config.max_rounds
    count_all = total * n
    rule = jnp.asarray(rule, jnp.int32)
    budgets = jnp.broadcast_to(_budget(config, budget), (total,))
    all_keys = jax.vmap(lambda k: round_keys(k, config))(keys)  # [P, T, 4]
    roots = jax.vmap(world.init_path)(problems)  # [P, ...]: every slot starts as this copy
    live = (jnp.arange(n, dtype=jnp.int32)[None, :] < budgets[:, None]).reshape(-1)
    count = jnp.sum(live, dtype=jnp.int32)
    queue = jnp.nonzero(live, size=count_all, fill_value=count_all)[0].astype(jnp.int32)

    def gather(tree, index):
        return jax.tree.map(lambda x: x[index], tree)

    def problem_of(path):
        return jnp.minimum(path // n, total - 1)  # an idle lane reads the last problem

    def fresh(path, width):
        zeros = jnp.zeros((width,), jnp.int32)
        return _PathLanes(path, zeros, gather(roots, problem_of(path)), zeros, zeros, zeros)

    def path_tokens(slot):
        return world.path_tokens(jax.tree.map(lambda x: x[None], slot))[0]

    def body(pool: _PathPool) -> _PathPool:
        lanes_ = pool.lanes
        q, t = lanes_.path, lanes_.round
        busy = q < count_all
        p, i = problem_of(q), q % n
        k = all_keys[p, jnp.minimum(t, t_max - 1)]
        problem = gather(problems, p)
        final = t >= t_max - 1
        slot, step = jax.vmap(world.expand_path)(k[:, 0], problem, lanes_.slot, i, final)
        scores = jax.vmap(world.score_path)(k[:, 1], problem, slot, i).astype(jnp.float32)
        tokens = jax.vmap(path_tokens)(slot)
        ends = step.finished | final
        policy = lanes_.policy_tokens + step.tokens
        prm = lanes_.prm_tokens + tokens
        embed = lanes_.embed_tokens + jnp.where(ends, 0, tokens)
        done = busy & ends
        at = jnp.where(done, q, count_all)  # running or idle lanes: out of range, dropped

        def put(old, new):
            return old.at[at].set(new, mode="drop")

        rec = pool.record
        record = _PathRecord(
            end=put(rec.end, t),
            finished=put(rec.finished, step.finished),
            answer=put(rec.answer, step.answer),
            correct=put(rec.correct, step.correct),
            score=put(rec.score, scores),
            tokens=put(rec.tokens, tokens),
            direction=put(rec.direction, step.direction),
            policy_tokens=put(rec.policy_tokens, policy),
            prm_tokens=put(rec.prm_tokens, prm),
            embed_tokens=put(rec.embed_tokens, embed),
            directions=rec.directions.at[jnp.where(busy, q, count_all), t].set(
                step.direction, mode="drop"
            ),
        )
        # Lanes whose path ended take the next paths of the queue in lane order.
        rank = jnp.cumsum(done, dtype=jnp.int32) - done.astype(jnp.int32)
        position = pool.next + rank
        taken = jnp.where(position < count, queue[jnp.minimum(position, count_all - 1)], count_all)
        width = q.shape[0]
        new = fresh(jnp.where(done, taken, q), width)

        def pick(a, b):
            return jnp.where(done.reshape(done.shape + (1,) * (b.ndim - 1)), a, b)

        lanes_ = _PathLanes(
            path=new.path,
            round=jnp.where(done, 0, t + 1),
            slot=jax.tree.map(pick, new.slot, slot),
            policy_tokens=jnp.where(done, 0, policy),
            prm_tokens=jnp.where(done, 0, prm),
            embed_tokens=jnp.where(done, 0, embed),
        )
        return _PathPool(
            lanes=lanes_,
            next=jnp.minimum(pool.next + jnp.sum(done, dtype=jnp.int32), count),
            record=record,
            rounds=pool.rounds + 1,
            slot_steps=pool.slot_steps + width,
        )

    widths = [max(1, min(lanes, count_all))]
    while widths[-1] // _NARROW >= _MIN_PATH_LANES:
        widths.append(widths[-1] // _NARROW)
    first = jnp.arange(widths[0], dtype=jnp.int32)
    start = jnp.where(first < count, queue[first], count_all)
    q_shape = (count_all,)
    record = _PathRecord(
        end=jnp.full(q_shape, -1, jnp.int32),
        finished=jnp.zeros(q_shape, bool),
        answer=jnp.full(q_shape, voting.NO_ANSWER, jnp.int32),
        correct=jnp.zeros(q_shape, bool),
        score=jnp.zeros(q_shape, jnp.float32),
        tokens=jnp.zeros(q_shape, jnp.int32),
        direction=jnp.zeros(q_shape, jnp.int32),
        policy_tokens=jnp.zeros(q_shape, jnp.int32),
        prm_tokens=jnp.zeros(q_shape, jnp.int32),
        embed_tokens=jnp.zeros(q_shape, jnp.int32),
        directions=jnp.zeros((count_all, t_max), jnp.int32),
    )
    pool = _PathPool(
        fresh(start, widths[0]),
        jnp.minimum(jnp.int32(widths[0]), count),
        record,
        jnp.int32(0),
        jnp.int32(0),
    )
    for stage, width in enumerate(widths):
        if stage:  # at most `width` lanes still run: keep those (a stable sort puts them first)
            keep = jnp.argsort(pool.lanes.path >= count_all, stable=True)[:width]
            pool = pool._replace(lanes=gather(pool.lanes, keep))
        narrower = widths[stage + 1] if stage + 1 < len(widths) else 0

        def going(pool: _PathPool, narrower=narrower) -> Bool[Array, ""]:
            running = jnp.sum(pool.lanes.path < count_all, dtype=jnp.int32)
            return (running > 0) & ((pool.next < count) | (running > narrower))

        pool = lax.while_loop(going, body, pool)

    per_problem = jax.tree.map(lambda x: x.reshape(total, n, *x.shape[1:]), pool.record)
    reads = jnp.asarray([r.uses_embeddings for r in config.rules])[rule]
    outcome = jax.vmap(lambda r, pr: _paths_outcome(r, world.prompt_tokens(pr), reads, config))(
        per_problem, problems
    )

    def lane_budget(b):
        return None if budget is None else b

    result = jax.vmap(lambda o, b: finalize(o, config, budget=lane_budget(b)))(outcome, budgets)
    return PoolRun(result, pool.rounds, pool.slot_steps)


def _paths_outcome(
    record: _PathRecord, prompt, reads_embeddings: Bool[Array, ""], config: SearchConfig
) -> Outcome:
    """One problem's `Outcome` from its N paths' records (leading axis N), as its search ends.

    Round t of the search: path i generates iff it ran and end_i ≥ t; it finishes at t iff
    end_i = t and it finished; it goes on (a survivor the rule keeps on slot i) iff end_i > t. The
    search stops after the round of the last end, so its rounds are max end + 1 (at least the
    one round a search with no live slot runs). The finished buffer is in the engine's order:
    by round, and within a round by slot.
    """
    n, f, t_max = config.budget, config.finished_capacity, config.max_rounds
    slot = jnp.arange(n, dtype=jnp.int32)
    ran = record.end >= 0
    end = record.end
    ended = ran & record.finished
    rounds = jnp.maximum(jnp.max(jnp.where(ran, end, -1)) + 1, 1).astype(jnp.int32)
    num_finished = jnp.sum(ended, dtype=jnp.int32)

    order = jnp.argsort(jnp.where(ended, end * n + slot, t_max * n + slot))
    order = jnp.concatenate([order, jnp.zeros((f - n,), order.dtype)]).astype(jnp.int32)
    filled = jnp.arange(f) < num_finished

    def buffer(values, empty):
        return jnp.where(filled, values[order], jnp.asarray(empty, values.dtype))

    finished = Finished(
        answer=buffer(record.answer, voting.NO_ANSWER),
        correct=buffer(record.correct, False),
        score=buffer(record.score, 0.0),
        tokens=buffer(record.tokens, 0),
        round=buffer(end, -1),
        direction=buffer(record.direction, 0),
    )

    t = jnp.arange(t_max, dtype=jnp.int32)[:, None]  # [T, 1] against the paths [N]
    generates = ran & (end >= t)
    finishes = ended & (end == t)
    survives = generates & ~finishes
    goes_on = ran & (end > t)
    trace = Trace(
        active=jnp.sum(generates, axis=1, dtype=jnp.int32),
        finished=jnp.sum(finishes, axis=1, dtype=jnp.int32),
        directions=jax.vmap(_count_distinct)(record.directions.T, survives),
        parent=jnp.where(goes_on, slot, -1),
        allocation=goes_on.astype(jnp.int32),
    )

    prompt = jnp.asarray(prompt, jnp.int32)
    steps = jnp.where(ran, end + 1, 0)
    rollouts = jnp.sum(steps, dtype=jnp.int32)
    policy = jnp.sum(jnp.where(ran, record.policy_tokens, 0), dtype=jnp.int32) + prompt
    embedded = jnp.where(reads_embeddings & ran, end, 0)
    ledger = Ledger(
        rollouts=rollouts,
        policy_tokens=policy,
        prm_calls=rollouts,
        prm_tokens=jnp.sum(jnp.where(ran, record.prm_tokens + steps * prompt, 0), dtype=jnp.int32),
        prm_tokens_cached=policy,
        embed_calls=jnp.sum(embedded, dtype=jnp.int32),
        embed_tokens=jnp.sum(
            jnp.where(reads_embeddings & ran, record.embed_tokens, 0), dtype=jnp.int32
        ),
    )
    return Outcome(rounds, num_finished, finished, trace, ledger)


def search_batch(
    keys: PRNGKeyArray,
    problems: Any,
    world: World | HostBatchWorld,
    config: SearchConfig,
    *,
    rule: int = 0,
) -> SearchResult:
    """Runs Algorithm 1 on a batch of problems with the round loop on the host.

    The design's "Python loop": each round runs the engine's named steps as compiled, vmapped,
    pure functions on the same state arrays (`plan_round`; `append_finished`; `close_round`), and
    between them the world generates, scores and (for rules that read embeddings) embeds every
    problem's active slots. A host world (`HostBatchWorld`, e.g. `backends.host_world.HostWorld`)
    does that on the host with plain NumPy arrays — one `expand_batch`, one `score_batch` and at
    most one `embed_batch` call per round for all problems, outside any jit, so its tree store
    may mutate freely; a pure `World` runs its own methods compiled and vmapped. The loop stops
    when every problem is done. Same results as `jax.vmap(search)` (the same steps).

    Args:
      keys: PRNGKey[P], one per problem.
      problems: a batch of problems (leading axis P).
      world: a `HostBatchWorld` or a pure `World`.
      config: as in `search`.
      rule: which of `config.rules` to run (a Python int: one compiled set of steps per rule).

    Returns:
      SearchResult with leading axis P.
    """
    # Worlds are cached by identity (a host world holds a mutable store: it hashes by id).
    fns = _batch_functions(cast(Hashable, world), config, int(rule))
    host = world if isinstance(world, HostBatchWorld) else pure_batch_world(cast(Hashable, world))
    state = fns.init(keys, problems)
    for _ in range(config.max_rounds):
        if bool(jnp.all(state.done)):
            break
        plan = fns.plan(state)
        slots, step = host.expand_batch(
            plan.k_expand, problems, state.slots, plan.final, plan.alive
        )
        scores = host.score_batch(plan.k_score, problems, slots, plan.alive)
        settled = fns.settle(state, plan, slots, step, scores)
        embeddings = None
        if fns.reads_embeddings:
            # Only slots that the rule will reallocate over: none once a problem stops.
            wanted = settled.survivors & ~settled.stop[:, None]
            embeddings = host.embed_batch(plan.k_embed, problems, settled.slots, wanted)
        state = fns.close(state, plan, settled, problems, embeddings)
    return fns.final(state)


class _BatchFunctions(NamedTuple):
    init: Callable
    plan: Callable
    settle: Callable
    close: Callable
    final: Callable
    reads_embeddings: bool


@functools.lru_cache(maxsize=64)
def _batch_functions(world: Any, config: SearchConfig, rule: int) -> _BatchFunctions:
    """The compiled steps of `search_batch`, once per (world, config, rule)."""
    chosen = config.rules[rule]
    one = SearchConfig(config.budget, (chosen,), config.max_rounds)

    def settle(state, plan, slots, step, scores):
        tokens = world.path_tokens(slots)
        return append_finished(state, plan, one, slots, step, scores, tokens)

    def close(state, plan, settled, problem, embeddings):
        prompt = world.prompt_tokens(problem)
        truth = truth_reader(world, one, settled.slots)
        return close_round(state, plan, settled, one, 0, lambda: embeddings, truth, prompt)

    return _BatchFunctions(
        init=jax.jit(jax.vmap(lambda k, p: init_state(k, p, world, one))),
        plan=jax.jit(jax.vmap(lambda s: plan_round(s, one))),
        settle=jax.jit(jax.vmap(settle)),
        close=jax.jit(jax.vmap(close)),
        final=jax.jit(jax.vmap(lambda s: finalize(s, one))),
        reads_embeddings=chosen.uses_embeddings,
    )


class PureBatch(NamedTuple):
    """A pure `World`'s methods compiled and vmapped over problems (`HostBatchWorld`-shaped)."""

    expand_batch: Callable
    score_batch: Callable
    embed_batch: Callable


@functools.lru_cache(maxsize=64)
def pure_batch_world(world: Any) -> PureBatch:
    return PureBatch(
        expand_batch=jax.jit(jax.vmap(lambda k, p, s, f, a: world.expand(k, p, s, f, active=a))),
        score_batch=jax.jit(jax.vmap(lambda k, p, s, a: world.score(k, p, s, active=a))),
        embed_batch=jax.jit(jax.vmap(lambda k, p, s, a: world.embed(k, p, s, active=a))),
    )


@dataclasses.dataclass(frozen=True)
class SyntheticWorld:
    """The synthetic reasoning-tree world (`dora_jax.world`) behind the `World` protocol."""

    config: world.WorldConfig

    def sample_problem(self, key: PRNGKeyArray):
        return world.sample_problem(key, self.config)

    def init(self, problem, num_slots: int):
        return world.init_slots(problem, self.config, num_slots)

    def expand(self, key, problem, slots, final, active=None):
        del active  # every slot costs the same here
        return world.expand(key, problem, slots, self.config, final=final)

    def score(self, key, problem, slots, active=None):
        del active
        return world.score(key, problem, slots, self.config)

    def init_path(self, problem):
        return jax.tree.map(lambda x: x[0], world.init_slots(problem, self.config, 1))

    def expand_path(self, key, problem, slot, index, final):
        return world.expand_path(key, problem, slot, index, self.config, final=final)

    def score_path(self, key, problem, slot, index):
        return world.score_path(key, problem, slot, index, self.config)

    def embed(self, key, problem, slots, active=None):
        del active
        return world.embed(key, problem, slots, self.config)

    def path_tokens(self, slots):
        return slots.tokens

    def prompt_tokens(self, problem=None) -> int:
        del problem  # every problem's prompt has the same length here
        return self.config.prompt_tokens

    def truth(self, slots):
        """The ground-truth success probability p of each slot's node (for rules that read it)."""
        return slots.p


@dataclasses.dataclass(frozen=True)
class WorldSwitch:
    """Several synthetic worlds behind one `World`: the traced `index` picks the world that runs
    (a real branch: `lax.switch`, unbatched under the problems' vmap), so one compiled search
    serves them all. The engine and the rules compile once; each world adds only its own code,
    and a world's runs are those of a search compiled for it alone: the same draws and discrete
    steps, but not always the same float bits. Inside the branch XLA fuses the world's float
    arithmetic differently (on CPU it contracts a·b + c into FMAs, likely not the same ones in
    another fusion: `dora_jax.world`'s note on sums over E), so node vectors and embeddings can
    differ in the last bit (the normals drawn stay the same bits), and DORA's uniqueness (Eq. 11,
    whose T_s = 0.01 multiplies a cosine's rounding by 100) can then flip a near-tie of its
    apportionment: measured on the Fig. 3 grid at 40 problems per cell, one problem-run of its
    9,000 (paper-llama-3b-aime2025, N = 256, problem 33: at round 0 the remainders
    of slots 150 and 116, 0.32080987 > 0.32080927 alone and 0.32081056 < 0.3208107 switched,
    0.3208106 > 0.3208097 in float64, swap one rollout, and the search runs 9 rounds, not 8).

    The worlds share their slot layout (embedding width) and prompt length. With path methods
    (`PathWorldSwitch`, from `world_switch` when every world is a `PathWorld`) `search_pool` can
    run a rule that never reallocates on path lanes."""

    worlds: tuple[Any, ...]
    index: Any  # Int[] (traced)

    def _switch(self, method: str, *args, **static):
        """The chosen world's `method` on `args` (arrays); `static` are Python values."""
        branches = [functools.partial(getattr(w, method), **static) for w in self.worlds]
        if len(branches) == 1:
            return branches[0](*args)
        return lax.switch(self.index, branches, *args)

    def init(self, problem, num_slots: int):
        return self._switch("init", problem, num_slots=num_slots)

    def expand(self, key, problem, slots, final, active=None):
        del active  # every slot costs the same in a synthetic world
        return self._switch("expand", key, problem, slots, final)

    def score(self, key, problem, slots, active=None):
        del active
        return self._switch("score", key, problem, slots)

    def embed(self, key, problem, slots, active=None):
        del active
        return self._switch("embed", key, problem, slots)

    def path_tokens(self, slots):
        return slots.tokens

    def prompt_tokens(self, problem=None) -> int:
        return self.worlds[0].prompt_tokens(problem)

    def truth(self, slots):
        return slots.p


@dataclasses.dataclass(frozen=True)
class PathWorldSwitch(WorldSwitch):
    """A `WorldSwitch` of `PathWorld`s, itself a `PathWorld`."""

    def init_path(self, problem):
        return self._switch("init_path", problem)

    def expand_path(self, key, problem, slot, index, final):
        return self._switch("expand_path", key, problem, slot, index, final)

    def score_path(self, key, problem, slot, index):
        return self._switch("score_path", key, problem, slot, index)


def world_switch(worlds: tuple[Any, ...], index: Any) -> WorldSwitch:
    """`worlds` behind one `World`, `index` (Int[], may be traced) picking the one that runs: a
    `PathWorldSwitch` when every world is a `PathWorld`, else a `WorldSwitch`."""
    if all(isinstance(w, PathWorld) for w in worlds):
        return PathWorldSwitch(tuple(worlds), index)
    return WorldSwitch(tuple(worlds), index)
