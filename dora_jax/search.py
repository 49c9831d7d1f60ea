"""One batched search engine: the paper's Algorithm 1 as fixed-shape, masked array updates.

Per problem the engine holds N *slots* (active partial solutions). One round:

1. every alive slot generates one step (`world.expand`; the last round, t = T_max − 1, finishes
   every path: the reference code's "generate to EOS");
2. every expanded slot is scored by the PRM (`world.score`, the last-step score, as the reference
   code scores all beams before filtering); slots that finished are appended to a finished buffer
   (a masked scatter at a running count) with their score, answer, correctness and tokens;
3. the search stops when ≥ N solutions are finished, at T_max, or when nothing is left alive;
4. otherwise the rule allocates N over the survivors (DORA also embeds them, `world.embed`), and
   the next round's N slots are the survivors repeated B_i times: an exclusive cumsum of B gives
   each new slot its parent (a gather; no lists, no copies). Temperature sampling does not
   reallocate: each survivor simply continues, so a run is N independent samples (best-of-N).
   Beam search and DVTS refill to N (DVTS's subtree ids travel with the slots).

The vote uses the first N finished solutions (in finish order; within a round by slot index).
A finished buffer of F = 2N slots suffices: fewer than N are finished before the last round and
at most N finish in it.

The state is one NamedTuple of fixed-shape arrays, the round is a pure function, and the loop is
injectable (mctx style): `search` runs a `lax.while_loop` that stops when the problem is done (under
`vmap`, when every problem is), fully compiled for the synthetic world; a host-side backend (a real
LLM) runs the same `search_round` from a Python loop. The engine knows nothing of the world beyond
the `World` protocol.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from dora_jax import voting, world
from dora_jax.api import RULES
from dora_jax.ledger import Ledger
from dora_jax.rules import BEAM_WIDTH

MAX_ROUNDS = 40  # T_max, the paper's num_iterations
EMBEDDING_RULES = ("dora", "bayes")  # rules that read embeddings (only these pay for the embedder)
REFILL_RULES = ("beam_search", "dvts", "rebase", "dora", "optimal", "oracle", "bayes")
TRUTH_RULES = ("oracle",)  # rules that read the ground truth (`World.truth`; simulators only)


class World(Protocol):
    """What the engine needs from where rollouts come from (synthetic world or a real LLM).

    All methods act on ONE problem's N slots (`Slots` is any pytree with leading axis N).
    """

    def init(self, problem: Any, num_slots: int) -> Any: ...

    def expand(
        self, key: PRNGKeyArray, problem: Any, slots: Any, final: Bool[Array, ""], active=None
    ):
        """Every slot generates one step → (new slots, step) with step fields finished,
        correct, answer, tokens, direction (each [N]). `active` (Bool[N] or None = all): the
        slots whose result the engine reads; a costly backend skips the others."""

    def score(self, key: PRNGKeyArray, problem: Any, slots: Any, active=None) -> Float[Array, " N"]:
        """The PRM score of each slot's last step (only `active` ones are read)."""

    def embed(
        self, key: PRNGKeyArray, problem: Any, slots: Any, active=None
    ) -> Float[Array, "N E"]:
        """Unit embeddings of the slots' partial solutions (only `active` ones are read)."""

    def path_tokens(self, slots: Any) -> Int[Array, " N"]: ...

    def prompt_tokens(self, problem: Any) -> Int[Array, ""]: ...


@dataclasses.dataclass(frozen=True)
class Rule:
    """A named allocation rule with its hyperparameters ((name, value) pairs, hashable)."""

    method: str
    hyperparameters: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, method: str, **hp) -> Rule:
        return cls(method, tuple(sorted(hp.items())))

    def __post_init__(self):
        if self.method not in RULES:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(RULES)}")
        allowed = set(RULES[self.method].defaults) - {"groups", "directions"}
        for name, _ in self.hyperparameters:
            if name not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                raise ValueError(f"{self.method} has no hyperparameter {name!r} (takes: {names})")

    @property
    def beam_width(self) -> int:
        return dict(self.hyperparameters).get("beam_width", BEAM_WIDTH)

    @property
    def uses_embeddings(self) -> bool:
        return self.method in EMBEDDING_RULES

    @property
    def refills(self) -> bool:
        return self.method in REFILL_RULES

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
            if rule.method in ("beam_search", "dvts") and self.budget < rule.beam_width:
                raise ValueError(
                    f"budget {self.budget} is smaller than the beam width {rule.beam_width} "
                    f"of {rule.method}"
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
    group: Int[Array, " N"]  # DVTS subtree of each slot
    num_finished: Int[Array, ""]
    finished: Finished
    trace: Trace
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


def init_state(
    key: PRNGKeyArray, problem: Any, world: World, config: SearchConfig, rule=0, *, budget=None
) -> SearchState:
    n, f, t = config.budget, config.finished_capacity, config.max_rounds
    widths = jnp.asarray([r.beam_width for r in config.rules], jnp.int32)
    return SearchState(
        # = jax.random.split(key, (t, 4)) bit for bit (threefry_partitionable), which XLA CPU takes
        # ~1.5 s longer to compile
        keys=jax.random.split(key, t * 4).reshape(t, 4),
        round=jnp.zeros((), jnp.int32),
        done=jnp.zeros((), bool),
        slots=world.init(problem, n),
        alive=jnp.arange(n) < _budget(config, budget),
        group=jnp.arange(n, dtype=jnp.int32) // widths[jnp.asarray(rule, jnp.int32)],
        num_finished=jnp.zeros((), jnp.int32),
        finished=Finished(
            answer=jnp.full((f,), voting.NO_ANSWER, jnp.int32),
            correct=jnp.zeros((f,), bool),
            score=jnp.zeros((f,), jnp.float32),
            tokens=jnp.zeros((f,), jnp.int32),
            round=jnp.full((f,), -1, jnp.int32),
            direction=jnp.zeros((f,), jnp.int32),
        ),
        trace=Trace(
            active=jnp.zeros((t,), jnp.int32),
            finished=jnp.zeros((t,), jnp.int32),
            directions=jnp.zeros((t,), jnp.int32),
            parent=jnp.full((t, n), -1, jnp.int32),
            allocation=jnp.zeros((t, n), jnp.int32),
        ),
        ledger=Ledger.zeros(),
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


def reallocate(
    rule: Rule, config: SearchConfig, key, scores, survivors, embed, truth, group, budget=None
):
    """Counts B over the survivors and the next round's slots: (counts, parent, next_alive).

    `embed()` computes the survivors' embeddings and `truth()` their true success probabilities;
    only rules that read them call them, so inside a multi-rule search the other branches never
    pay for the embedder.
    """
    n = config.budget
    if rule.method in TRUTH_RULES:
        scores = truth()
    if not rule.refills:  # temperature sampling: every survivor continues on its own slot
        return survivors.astype(jnp.int32), jnp.arange(n, dtype=jnp.int32), survivors
    hp = dict(rule.hyperparameters)
    if rule.method == "dvts":
        hp["groups"] = group
    embeddings = embed() if rule.uses_embeddings else None
    counts = RULES[rule.method].allocate(
        key, scores, _budget(config, budget), mask=survivors, embeddings=embeddings, **hp
    )
    parent, filled = parents_from_counts(counts)
    return counts, parent, filled


def search_round(
    state: SearchState, problem: Any, world: World, config: SearchConfig, rule=0, *, budget=None
) -> SearchState:
    """One round of Algorithm 1 (a no-op once `state.done`) with rule `config.rules[rule]`.

    `rule` is deliberately not part of the carried state: kept outside, it stays unbatched under
    `vmap`, so `lax.switch` remains a real branch and only the chosen rule runs. So is `budget`
    (see `search`).
    """
    n = _budget(config, budget)
    t = state.round
    k_expand, k_score, k_embed, k_alloc = state.keys[t]
    final = t >= config.max_rounds - 1
    alive = state.alive & ~state.done

    slots, step = world.expand(k_expand, problem, state.slots, final, active=alive)
    scores = world.score(k_score, problem, slots, active=alive).astype(jnp.float32)
    ended = alive & step.finished
    survivors = alive & ~step.finished

    # Append the finished slots to the buffer, in slot order.
    position = state.num_finished + jnp.cumsum(ended, dtype=jnp.int32) - ended.astype(jnp.int32)
    where = jnp.where(ended, position, config.finished_capacity)  # out of range: dropped
    path_tokens = world.path_tokens(slots)
    fin = state.finished
    fin = Finished(
        answer=fin.answer.at[where].set(step.answer, mode="drop"),
        correct=fin.correct.at[where].set(step.correct, mode="drop"),
        score=fin.score.at[where].set(scores, mode="drop"),
        tokens=fin.tokens.at[where].set(path_tokens, mode="drop"),
        round=fin.round.at[where].set(t, mode="drop"),
        direction=fin.direction.at[where].set(step.direction, mode="drop"),
    )
    num_finished = state.num_finished + jnp.sum(ended).astype(jnp.int32)
    stop = state.done | final | (num_finished >= n) | ~jnp.any(survivors)

    # Allocate N over the survivors and re-slot.
    def embed():
        return world.embed(k_embed, problem, slots, active=survivors)

    def truth():
        if not hasattr(world, "truth"):
            raise ValueError(
                f"the oracle rule needs a world that knows the truth (World.truth); "
                f"{type(world).__name__} has none"
            )
        return world.truth(slots).astype(jnp.float32)

    branches = [
        functools.partial(
            reallocate, r, config, k_alloc, scores, survivors, embed, truth, budget=budget
        )
        for r in config.rules
    ]
    if len(branches) == 1:
        counts, parent, next_alive = branches[0](state.group)
    else:
        counts, parent, next_alive = lax.switch(rule, branches, state.group)
    counts = jnp.where(stop, 0, counts)
    next_alive = next_alive & ~stop
    next_slots = jax.tree.map(lambda x: x[parent], slots)

    active = jnp.sum(alive).astype(jnp.int32)
    prompt = jnp.asarray(world.prompt_tokens(problem), jnp.int32)
    reads = jnp.asarray([r.uses_embeddings for r in config.rules])[rule]
    embedded = survivors & ~stop & reads
    led = state.ledger
    ledger = Ledger(
        rollouts=led.rollouts + active,
        policy_tokens=led.policy_tokens
        + jnp.sum(jnp.where(alive, step.tokens, 0), dtype=jnp.int32)
        + jnp.where(t == 0, prompt, 0),
        prm_calls=led.prm_calls + active,
        prm_tokens=led.prm_tokens
        + jnp.sum(jnp.where(alive, path_tokens + prompt, 0), dtype=jnp.int32),
        prm_tokens_cached=led.prm_tokens_cached
        + jnp.sum(jnp.where(alive, step.tokens, 0), dtype=jnp.int32)
        + jnp.where(t == 0, prompt, 0),
        embed_calls=led.embed_calls + jnp.sum(embedded).astype(jnp.int32),
        embed_tokens=led.embed_tokens
        + jnp.sum(jnp.where(embedded, path_tokens, 0), dtype=jnp.int32),
    )
    tr = state.trace
    trace = Trace(
        active=tr.active.at[t].set(active),
        finished=tr.finished.at[t].set(jnp.sum(ended).astype(jnp.int32)),
        directions=tr.directions.at[t].set(_count_distinct(step.direction, survivors)),
        parent=tr.parent.at[t].set(jnp.where(next_alive, parent, -1)),
        allocation=tr.allocation.at[t].set(counts),
    )
    new = SearchState(
        keys=state.keys,
        round=t + 1,
        done=stop,
        slots=next_slots,
        alive=next_alive,
        group=state.group[parent],
        num_finished=num_finished,
        finished=fin,
        trace=trace,
        ledger=ledger,
    )
    # Rounds after the stop change nothing.
    return jax.tree.map(lambda a, b: jnp.where(state.done, a, b), state, new)


def while_loop(state: SearchState, round_fn: Callable[[SearchState], SearchState], max_rounds):
    """The default loop: compiled, stops at `done` (under vmap: when all problems are done)."""
    return lax.while_loop(lambda s: ~s.done & (s.round < max_rounds), round_fn, state)


def python_loop(state: SearchState, round_fn, max_rounds):
    """A host loop over the same round function (for backends that call a real LLM)."""
    while not bool(state.done) and int(state.round) < max_rounds:
        state = round_fn(state)
    return state


def finalize(state: SearchState, config: SearchConfig, *, budget=None) -> SearchResult:
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
        (SyntheticWorld's do not), bit for bit except that DORA's sums over the slots may round
        differently in the last bit (and so rarely break a float near-tie the other way). The
        result keeps the `config.budget` shapes (F = 2·config.budget, trace [T, config.budget]).
      loop: `while_loop` (compiled, default) or `python_loop` (host backends).

    Returns:
      SearchResult: votes (weighted = the paper's accuracy, majority, best-of-N, pass@N), the
      finished solutions, the per-round trace and the cost ledger.
    """
    state = init_state(key, problem, world, config, rule, budget=budget)
    rule = jnp.asarray(rule, jnp.int32)

    def round_fn(s):
        return search_round(s, problem, world, config, rule, budget=budget)

    state = loop(state, round_fn, config.max_rounds)
    return finalize(state, config, budget=budget)


def search_batch(
    keys: PRNGKeyArray,
    problems: Any,
    world: World,
    config: SearchConfig,
    *,
    rule: int = 0,
) -> SearchResult:
    """Runs Algorithm 1 on a batch of problems with the round loop on the host.

    Each round is one compiled, vmapped `search_round`, so a host backend (`backends.host_world`)
    receives every problem's work of the round in one call; the loop stops when every problem
    is done. Same results as `jax.vmap(search)` (the rounds are the same functions).

    Args:
      keys: PRNGKey[P], one per problem.
      problems: a batch of problems (leading axis P).
      world, config: as in `search`.
      rule: which of `config.rules` to run (a Python int: one compiled round per rule).

    Returns:
      SearchResult with leading axis P.
    """
    init, step, final = _batch_functions(world, config, int(rule))
    state = init(keys, problems)
    for _ in range(config.max_rounds):
        if bool(jnp.all(state.done)):
            break
        state = step(state, problems)
    return final(state)


@functools.lru_cache(maxsize=64)
def _batch_functions(world: World, config: SearchConfig, rule: int):
    """The compiled pieces of `search_batch`, once per (world, config, rule)."""
    index = jnp.int32(rule)
    init = jax.jit(jax.vmap(lambda k, p: init_state(k, p, world, config, index)))
    step = jax.jit(jax.vmap(lambda s, p: search_round(s, p, world, config, index)))
    final = jax.jit(jax.vmap(lambda s: finalize(s, config)))
    return init, step, final


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

    def embed(self, key, problem, slots, active=None):
        del active
        return world.embed(key, problem, slots, self.config)

    def path_tokens(self, slots):
        return slots.tokens

    def prompt_tokens(self, problem=None) -> int:
        del problem  # every problem's prompt has the same length here
        return self.config.prompt_tokens

    def truth(self, slots):
        """The ground-truth success probability p of each slot's node (for oracle rules)."""
        return slots.p
