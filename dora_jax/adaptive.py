"""Adaptive compute: per-problem optimal stopping and a cross-problem pool of rollouts.

The paper's Algorithm 1 (§2.1) spends the same width N on every problem in every round and stops a
problem only when N solutions have finished (or at T_max). Its allocation (Eq. 7) is optimal for
ONE step, while the evidence about the answer builds up over the steps. This module adds two
decisions between the engine's steps, leaving the within-problem rule (DORA, REBASE, `bayes`, …)
untouched:

1. **Stopping.** After a round's finished solutions are appended, a problem stops early when the
   answer its vote would pick now is settled. The evidence is what the search has seen: the
   finished solutions' answers and last-step PRM scores, and κ (Eq. 6). The model
   (`leader_posterior`) reads the PRM score s as the prior mean of a success probability
   p ~ Beta(κ s̄, κ(1 − s̄)) shared by the solutions that reached the same answer (wrong
   solutions that agree came from one direction; the premise of Theorem 1), and at most one
   answer is correct:

       P(answer a is correct | D) = ρ_a / (1 + Σ_b ρ_b),
       ρ_a = E[p^{n_a}] / E[(1 − p)^{n_a}] = Π_{r<n_a} (κ s̄_a + r) / (κ (1 − s̄_a) + r),

   with n_a the number of finished solutions with answer a and s̄_a their mean score (the product
   is Prop. 1's Beta identity, App. B.1). The "1" is the hypothesis that no observed answer is
   correct. Large κ counts agreeing solutions as independent evidence (ρ_a → Π s/(1 − s)); small
   κ counts a cluster of agreeing solutions as one observation. Two rules read it (either may
   stop a problem; both need `min_votes` finished solutions):
   - threshold θ: stop when P(leader correct) ≥ θ;
   - price c (accuracy per rollout): stop when 1 − P(leader correct), an upper bound on what any
     further round can still gain, is at most c × the rollouts of the next round.

   A stopped problem votes over ALL its finished solutions (fewer than its target, so every one
   counts): stopping never discards a finished solution.

2. **A cross-problem pool.** A batch of P problems shares a pool of P·N slots per round (the
   paper's unit of budget: parallel rollouts per step). Each round the pool is divided among the
   problems still running: equal shares, exact integers (Σ = min(pool, running × C)), each capped
   at C slots, the problem's slot array (`SearchConfig.budget` ≥ C, a static shape). Shapes stay
   fixed: C is declared up front (`cap`, a multiple of N), every problem holds C slots from the
   start and uses the first w_p of them. A problem running at width w_p allocates w_p rollouts over
   its survivors (the rule's budget argument) and needs w_p finished solutions before its vote
   (the target grows with the width, which only grows, as problems only leave the pool). Every
   problem gets its first round at width N. The ledger counts the slots that actually generated;
   each round's total is recorded and never exceeds the pool.

3. **A total budget** (optional, `total` = R rollouts per problem on average): the batch shares
   P·R rollouts over the WHOLE search, and what a round leaves unused carries to later rounds.
   Round t's pool is min((t + 1)·P·N, P·R) minus what the batch has spent in rounds < t: the
   per-round pool's schedule with the unspent slots carried forward, capped by the total. (Per
   round, the pool is P·N exactly as without a total, plus what earlier rounds saved.) A share
   may now shrink: a problem whose share no longer exceeds the solutions it has finished stops
   (reason "budget") and votes over all of them, so when the total runs out the running problems
   stop and vote over what they have finished. With `finish`, a round the total left could not
   repeat is made the last instead: it generates to EOS like the paper's round T_max, so every
   path ends with an answer, at the tokens of whole solutions (its problems end with reason
   "budget"). The
   batch never generates more than P·R (a test pins it); R ≥ N (every problem's first round).

With stopping off, C = N and no total, every running problem's share is exactly N, and
`search_pooled` returns the engine's `jax.vmap(search)` result bit for bit, and
`search_pooled_batch` (the host-driven loop, for text backends) returns `search_batch`'s (tests
pin both).

Padding: rows at or beyond `StopParams.rows` (a sharded batch padded to the device count) are
done from the start: they take no share of the pool, and the pool is (real rows)·N.

Everything that is not a shape (N, C, θ, c, κ, min_votes, R, rows) is a traced argument
(`StopParams`), so one compiled search serves every setting. Pure: arrays in, arrays out (but
`search_pooled_batch`, which calls a host world between its compiled steps, as `search_batch`
does).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from dora_jax import voting
from dora_jax.base import HostBatchWorld
from dora_jax.search import (
    SearchConfig,
    SearchResult,
    SearchState,
    World,
    append_finished,
    close_round,
    expand_and_score,
    finalize,
    init_state,
    plan_round,
    pure_batch_world,
    truth_reader,
)

__all__ = [
    "DEFAULT_KAPPA",
    "DEFAULT_MIN_VOTES",
    "REASONS",
    "Adaptive",
    "AdaptiveError",
    "PoolRecord",
    "StopParams",
    "leader_posterior",
    "pool_widths",
    "search_pooled",
    "search_pooled_batch",
]

DEFAULT_KAPPA = 15.0  # the paper-like world's κ; `dora calibrate` gives a measured one
DEFAULT_MIN_VOTES = 2  # a lone finished solution never settles a problem
# Why a problem stopped (PoolRecord.reason).
RUNNING, VOTES, LIMIT, SETTLED, PRICED, BUDGET = 0, 1, 2, 3, 4, 5
REASONS = ("running", "votes", "limit", "settled", "price", "budget")
_NEVER = 2.0  # a threshold no probability reaches: the threshold rule off
_EPS = 1e-6  # scores are clipped into (0, 1) before the Beta parameters


class AdaptiveError(ValueError):
    """A bad adaptive setting (one line)."""


@dataclasses.dataclass(frozen=True)
class Adaptive:
    """Adaptive-compute settings (host side; `params` gives the traced `StopParams`).

    Attributes:
      threshold: θ in (0, 1): stop when P(leader correct) ≥ θ (None: off).
      price: c ≥ 0 in accuracy per rollout: stop when 1 − P(leader correct) ≤ c × next width
        (None: off).
      kappa: κ > 0 of the stopping posterior (Eq. 6).
      cap: C / N, an integer ≥ 1: the most slots a running problem may take from the pool, in
        multiples of N (1: no problem ever runs wider than N).
      min_votes: finished solutions a problem needs before it may stop early (≥ 1).
      total: R, rollouts per problem on average over the whole search (None: no total; the
        batch shares P·R, unspent slots carry across rounds; R ≥ N, checked by `check_budget`).
      finish: when the total runs short, the coming round generates to EOS (every path ends
        with an answer, at the tokens of whole solutions); False (default): problems simply
        stop there and vote over what has finished (in the levels world the EOS round cost more
        FLOPs than it gained: `simulations.adaptive_eval --totals`).
    """

    threshold: float | None = None
    price: float | None = None
    kappa: float = DEFAULT_KAPPA
    cap: int = 1
    min_votes: int = DEFAULT_MIN_VOTES
    total: int | None = None
    finish: bool = False

    def __post_init__(self):
        t = self.threshold
        if t is not None and not (_real(t) and 0.0 < t < 1.0):
            raise AdaptiveError(f"stop threshold must be in (0, 1), got {t!r}")
        c = self.price
        if c is not None and not (_real(c) and math.isfinite(c) and c >= 0.0):
            raise AdaptiveError(f"stop price must be a finite number >= 0, got {c!r}")
        k = self.kappa
        if not (_real(k) and math.isfinite(k) and k > 0.0):
            raise AdaptiveError(f"stop kappa must be a finite number > 0, got {k!r}")
        if not _integer(self.cap) or self.cap < 1:
            raise AdaptiveError(
                f"pool cap must be an integer >= 1 (a multiple of N), got {self.cap!r}"
            )
        if not _integer(self.min_votes) or self.min_votes < 1:
            raise AdaptiveError(f"min votes must be an integer >= 1, got {self.min_votes!r}")
        if not isinstance(self.finish, bool):
            raise AdaptiveError(f"finish must be true or false, got {self.finish!r}")
        if self.total is not None and (not _integer(self.total) or self.total < 1):
            raise AdaptiveError(
                f"total rollouts must be an integer >= 1 (per problem), got {self.total!r}"
            )

    def check_budget(self, budget: int) -> None:
        """Raises AdaptiveError when budget N cannot run under these settings (R < N)."""
        if self.total is not None and self.total < budget:
            raise AdaptiveError(
                f"total rollouts {self.total} per problem is below the budget N = {budget} "
                "(every problem's first round takes N)"
            )

    @property
    def stops(self) -> bool:
        return self.threshold is not None or self.price is not None

    @property
    def enabled(self) -> bool:
        """Anything differs from the fixed-N engine."""
        return self.stops or self.cap > 1 or self.total is not None

    def slots(self, budget: int) -> int:
        """C: the slots per problem a search at budget N needs."""
        return self.cap * budget

    def params(self, budget: int, *, control: bool = False) -> StopParams:
        """The traced settings for budget N (`control`: the stopping rule reads another problem's
        votes: the negative control of the `adaptive-pareto` claim)."""
        return StopParams(
            budget=jnp.int32(budget),
            cap=jnp.int32(self.slots(budget)),
            threshold=jnp.float32(_NEVER if self.threshold is None else self.threshold),
            price=jnp.float32(-1.0 if self.price is None else self.price),
            kappa=jnp.float32(self.kappa),
            min_votes=jnp.int32(self.min_votes),
            shuffle=jnp.asarray(control),
            total=jnp.int32(-1 if self.total is None else self.total),
            finish=jnp.asarray(bool(self.finish)),
            rows=jnp.int32(-1),
        )

    def describe(self) -> dict[str, Any]:
        """The settings as plain data. `total` and `finish` appear only when a total is set, so
        a setting without one describes (and fingerprints) as it did before totals existed."""
        found = dataclasses.asdict(self)
        if self.total is None:
            del found["total"], found["finish"]
        return found


def _real(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and not math.isnan(x)


def _integer(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class StopParams(NamedTuple):
    """The traced adaptive settings (scalars; one compiled search serves them all)."""

    budget: Int[Array, ""]  # N: the first round's width and each problem's pool share
    cap: Int[Array, ""]  # C ≤ SearchConfig.budget: the widest a problem may run
    threshold: Float[Array, ""]  # θ (> 1: off)
    price: Float[Array, ""]  # c (< 0: off)
    kappa: Float[Array, ""]
    min_votes: Int[Array, ""]
    shuffle: Bool[Array, ""]  # control: problem p reads problem p − 1's posterior
    total: Int[Array, ""]  # R, rollouts per problem over the search (< 0: no total)
    finish: Bool[Array, ""]  # the total's last round generates to EOS
    rows: Int[Array, ""]  # the real problems: rows ≥ rows are padding (< 0: every row is real)


class PoolRecord(NamedTuple):
    """What the adaptive decisions did (leading P, or T for the pool)."""

    width: Int[Array, "P T"]  # the width each problem ran in each round (0 once stopped)
    stop_round: Int[Array, " P"]  # the round in which it stopped
    reason: Int[Array, " P"]  # REASONS index
    posterior: Float[Array, " P"]  # P(leader correct) when it stopped (the value it read)
    pool_used: Int[Array, " T"]  # slots that generated, per round, over the batch
    pool: Int[Array, ""]  # P·N (P: the real rows)
    total: Int[Array, ""]  # P·R, the batch's total (−1: none)


def leader_posterior(
    answers: Int[Array, " F"],
    scores: Float[Array, " F"],
    valid: Bool[Array, " F"],
    kappa: Float[Array, ""],
) -> Float[Array, ""]:
    """P(the answer the PRM-weighted vote picks now is correct | the finished solutions).

    Args:
      answers, scores, valid: one problem's finished solutions (F slots, `valid` marking those the
        vote counts; answer −1 never wins, as in `voting`).
      kappa: κ of the Beta prior p ~ Beta(κ s̄, κ(1 − s̄)) per answer (module docstring).

    Returns:
      Float[] in [0, 1); 0 when no valid solution has an answer.
    """
    eligible = valid & (answers != voting.NO_ANSWER)
    same = (answers[:, None] == answers[None, :]) & eligible[None, :] & eligible[:, None]
    count = jnp.sum(same, axis=1).astype(jnp.float32)
    total = jnp.sum(jnp.where(same, scores[None, :].astype(jnp.float32), 0.0), axis=1)
    mean = jnp.clip(total / jnp.maximum(count, 1.0), _EPS, 1.0 - _EPS)
    a, b = kappa * mean, kappa * (1.0 - mean)
    # Σ_{r<n} log((a + r)/(b + r)) term by term: gammaln differences lose digits at large κ.
    r = jnp.arange(answers.shape[0], dtype=jnp.float32)[None, :]
    steps = jnp.log(a[:, None] + r) - jnp.log(b[:, None] + r)
    log_rho = jnp.sum(jnp.where(r < count[:, None], steps, 0.0), axis=1)
    # One term per distinct answer: its first eligible solution represents it.
    earlier = jnp.tril(same, k=-1)
    first = eligible & ~jnp.any(earlier, axis=1)
    terms = jnp.where(first, log_rho, -jnp.inf)
    log_norm = jnp.logaddexp(0.0, jax.nn.logsumexp(terms))
    leader = voting.pick(total, eligible)  # the weighted vote's pick, its tie-break included
    return jnp.where(jnp.any(eligible), jnp.exp(log_rho[leader] - log_norm), 0.0)


def pool_widths(
    running: Bool[Array, " P"], pool: Int[Array, ""], cap: Int[Array, ""]
) -> Int[Array, " P"]:
    """Equal shares of `pool` slots among the running problems, each at most `cap`.

    Exact integers: Σ = min(pool, running × cap); the remainder of the division goes one slot
    each to the first running problems (by index); stopped problems get 0.
    """
    running = running.astype(bool)
    count = jnp.sum(running).astype(jnp.int32)
    base = pool // jnp.maximum(count, 1)
    extra = pool - base * count
    rank = jnp.cumsum(running, dtype=jnp.int32) - 1
    width = jnp.minimum(base + (rank < extra).astype(jnp.int32), cap)
    return jnp.where(running, width, 0).astype(jnp.int32)


class _Pool(NamedTuple):
    """The adaptive decisions' carry between rounds (leading P, or scalars)."""

    width: Int[Array, " P"]  # each problem's width in the coming round (its last once stopped)
    final: Bool[Array, " P"]  # the coming round is the last (the total budget runs out)
    spent: Int[Array, ""]  # rollouts the batch generated so far
    record: PoolRecord


def _start(
    keys: PRNGKeyArray, problems: Any, world: Any, config: SearchConfig, params: StopParams, rule
) -> tuple[SearchState, _Pool]:
    """Every problem's initial state (padding rows done) and the pool's carry."""
    p_count, t_max = keys.shape[0], config.max_rounds
    present = (params.rows < 0) | (jnp.arange(p_count) < params.rows)
    real = jnp.sum(present, dtype=jnp.int32)
    state = jax.vmap(lambda k, pr: init_state(k, pr, world, config, rule, budget=params.budget))(
        keys, problems
    )
    state = state._replace(done=state.done | ~present)
    record = PoolRecord(
        width=jnp.zeros((p_count, t_max), jnp.int32),
        stop_round=jnp.full((p_count,), -1, jnp.int32),
        reason=jnp.zeros((p_count,), jnp.int32),
        posterior=jnp.zeros((p_count,), jnp.float32),
        pool_used=jnp.zeros((t_max,), jnp.int32),
        pool=real * params.budget,
        total=jnp.where(params.total >= 0, real * params.total, -1).astype(jnp.int32),
    )
    carry = _Pool(
        width=jnp.full((p_count,), params.budget, jnp.int32),  # everyone's first round at N
        final=jnp.zeros((p_count,), bool),
        spent=jnp.zeros((), jnp.int32),
        record=record,
    )
    return state, carry


def _plan(state: SearchState, final: Bool[Array, ""], config: SearchConfig):
    plan = plan_round(state, config)
    return plan._replace(final=plan.final | final)


def _decide(t, state: SearchState, plan, settled, carry: _Pool, params: StopParams):
    """Between `append_finished` and `close_round` (batched): which problems stop, and every
    running problem's width in the next round (module docstring). Returns (settled with the
    stops, the next carry)."""
    width, rec = carry.width, carry.record

    def posterior_of(fin, num_finished, w):
        valid = jnp.arange(fin.answer.shape[0]) < jnp.minimum(num_finished, w)
        return leader_posterior(fin.answer, fin.score, valid, params.kappa)

    seen = jax.vmap(posterior_of)(settled.finished, settled.num_finished, width)
    read = jnp.where(params.shuffle, jnp.roll(seen, 1), seen)
    running = ~state.done
    used = jnp.sum(plan.alive, dtype=jnp.int32)
    spent = carry.spent + used
    may = running & ~settled.stop & (settled.num_finished >= params.min_votes)
    by_threshold = may & (read >= params.threshold)
    by_price = may & (params.price >= 0) & (1.0 - read <= params.price * width.astype(jnp.float32))
    stop = settled.stop | by_threshold | by_price
    # The next round's pool: P·N, or with a total the schedule (t + 2)·P·N capped by P·R, less
    # what is spent.
    limited = rec.total >= 0
    pool = jnp.where(limited, jnp.minimum((t + 2) * rec.pool, rec.total) - spent, rec.pool)
    share = pool_widths(~stop, pool, params.cap)
    # A share that cannot add to the vote ends the problem (only a total shrinks shares).
    starved = limited & ~stop & (share <= settled.num_finished)
    stop = stop | starved
    share = pool_widths(~stop, pool, params.cap)
    next_width = jnp.where(stop, width, share)
    coming = jnp.sum(jnp.where(stop, 0, share), dtype=jnp.int32)
    # The round after the coming one could not be as wide: the coming one is the last.
    next_final = limited & params.finish & ~stop & (rec.total - spent - coming < coming)
    ended = running & stop
    reason = jnp.where(
        by_threshold,
        SETTLED,
        jnp.where(
            by_price,
            PRICED,
            # A round the total made the last ends its problems by the budget, complete or not.
            jnp.where(
                carry.final | starved,
                BUDGET,
                jnp.where(settled.num_finished >= width, VOTES, LIMIT),
            ),
        ),
    )
    rec = rec._replace(
        width=rec.width.at[:, t].set(jnp.where(running, width, 0)),
        stop_round=jnp.where(ended, t, rec.stop_round),
        reason=jnp.where(ended, reason, rec.reason),
        posterior=jnp.where(ended, read, rec.posterior),
        pool_used=rec.pool_used.at[t].set(used),
    )
    return settled._replace(stop=stop), _Pool(next_width, next_final, spent, rec)


def _trim(state: SearchState, width: Int[Array, ""]) -> SearchState:
    """At most `width` slots generate next round: a rule that keeps every survivor on its own
    slot (best-of-N) would otherwise outgrow a share that shrank (a no-op while shares only
    grow: a reallocating rule fills exactly the first `width` slots). The round's trace still
    names the trimmed slots' parents; the ledger counts only what generates."""
    alive = state.alive & (jnp.cumsum(state.alive, dtype=jnp.int32) <= width)
    return state._replace(alive=alive)


def search_pooled(
    keys: PRNGKeyArray,
    problems: Any,
    world: World,
    config: SearchConfig,
    params: StopParams,
    *,
    rule: int | Int[Array, ""] = 0,
) -> tuple[SearchResult, PoolRecord]:
    """Algorithm 1 on a batch of P problems with early stopping and a shared pool of slots.

    The engine's named steps (`plan_round`, `expand_and_score`, `append_finished`, `close_round`)
    run vmapped over the problems; between `append_finished` and `close_round` the stopping rule
    and the pool decide which problems continue and how wide (module docstring).

    Args:
      keys: PRNGKey[P], one per problem (the same keys give the same searches as `search`).
      problems: a batch of P problems of `world`.
      world: a pure `World` (static).
      config: the slot count S ≥ params.cap, T_max and the rule(s) (static).
      params: N, C, θ, c, κ, min_votes, R, real rows, control flag (`Adaptive.params`; traced).
      rule: which of `config.rules` runs (may be traced, unbatched).

    Returns:
      (SearchResult with leading P, PoolRecord).
    """
    rule = jnp.asarray(rule, jnp.int32)
    state, carry = _start(keys, problems, world, config, params, rule)

    def settle(s, plan, problem, w):
        slots, step, scores = expand_and_score(plan, problem, world, s.slots)
        return append_finished(
            s, plan, config, slots, step, scores, world.path_tokens(slots), budget=w
        )

    def close(s, plan, settled, problem, w):
        def embed():
            return world.embed(plan.k_embed, problem, settled.slots, active=settled.survivors)

        def truth():
            return world.truth(settled.slots).astype(jnp.float32)  # type: ignore[attr-defined]

        prompt = world.prompt_tokens(problem)
        new = close_round(s, plan, settled, config, rule, embed, truth, prompt, budget=w)
        return _trim(new, w)

    def body(loop):
        t, state, carry = loop
        plan = jax.vmap(lambda s, f: _plan(s, f, config))(state, carry.final)
        settled = jax.vmap(settle)(state, plan, problems, carry.width)
        settled, carry = _decide(t, state, plan, settled, carry, params)
        state = jax.vmap(close)(state, plan, settled, problems, carry.width)
        return t + 1, state, carry

    def cond(loop):
        t, state, _ = loop
        return jnp.any(~state.done) & (t < config.max_rounds)

    _, state, carry = lax.while_loop(cond, body, (jnp.int32(0), state, carry))
    result = jax.vmap(lambda s, w: finalize(s, config, budget=w))(state, carry.width)
    return result, carry.record


def search_pooled_batch(
    keys: PRNGKeyArray,
    problems: Any,
    world: World | HostBatchWorld,
    config: SearchConfig,
    params: StopParams,
    *,
    rule: int = 0,
) -> tuple[SearchResult, PoolRecord]:
    """`search_pooled` with the round loop on the host, for text backends (`search_batch`'s
    design): each round runs the same compiled, vmapped steps and the same decisions, and
    between them the world generates, scores and (for rules that read embeddings) embeds every
    problem's active slots — one `expand_batch`, one `score_batch` and at most one `embed_batch`
    call per round for the whole batch, outside jit (a host world such as
    `backends.host_world.HostWorld`; a pure `World` runs its methods compiled). Stopped problems
    send nothing, and only the survivors of running problems are embedded.

    Args: as `search_pooled`, but `rule` is a Python int (one compiled set of steps per rule).

    Returns:
      (SearchResult with leading P, PoolRecord): with stopping off, C = N and no total, the
      result equals `search_batch`'s bit for bit.
    """
    fns = _pooled_functions(cast(Hashable, world), config, int(rule))
    host = world if isinstance(world, HostBatchWorld) else pure_batch_world(cast(Hashable, world))
    state, carry = fns.init(keys, problems, params)
    for t in range(config.max_rounds):
        if bool(jnp.all(state.done)):
            break
        plan = fns.plan(state, carry.final)
        slots, step = host.expand_batch(
            plan.k_expand, problems, state.slots, plan.final, plan.alive
        )
        scores = host.score_batch(plan.k_score, problems, slots, plan.alive)
        settled, carry = fns.settle(jnp.int32(t), state, plan, slots, step, scores, carry, params)
        embeddings = None
        if fns.reads_embeddings:
            wanted = settled.survivors & ~settled.stop[:, None]
            embeddings = host.embed_batch(plan.k_embed, problems, settled.slots, wanted)
        state = fns.close(state, plan, settled, problems, embeddings, carry.width)
    return fns.final(state, carry.width), carry.record


class _PooledFunctions(NamedTuple):
    init: Callable
    plan: Callable
    settle: Callable
    close: Callable
    final: Callable
    reads_embeddings: bool


@functools.lru_cache(maxsize=64)
def _pooled_functions(world: Any, config: SearchConfig, rule: int) -> _PooledFunctions:
    """The compiled steps of `search_pooled_batch`, once per (world, config, rule)."""
    chosen = config.rules[rule]
    one = SearchConfig(config.budget, (chosen,), config.max_rounds)

    def init(keys, problems, params):
        return _start(keys, problems, world, one, params, jnp.int32(0))

    def settle(t, state, plan, slots, step, scores, carry, params):
        def one_problem(s, pl, sl, st, sc, w):
            return append_finished(s, pl, one, sl, st, sc, world.path_tokens(sl), budget=w)

        settled = jax.vmap(one_problem)(state, plan, slots, step, scores, carry.width)
        return _decide(t, state, plan, settled, carry, params)

    def close(state, plan, settled, problems, embeddings, width):
        def one_problem(s, pl, se, problem, e, w):
            prompt = world.prompt_tokens(problem)
            new = close_round(
                s, pl, se, one, 0, lambda: e, truth_reader(world, one, se.slots), prompt, budget=w
            )
            return _trim(new, w)

        return jax.vmap(one_problem)(state, plan, settled, problems, embeddings, width)

    return _PooledFunctions(
        init=jax.jit(init),
        plan=jax.jit(jax.vmap(lambda s, f: _plan(s, f, one))),
        settle=jax.jit(settle),
        close=jax.jit(close),
        final=jax.jit(jax.vmap(lambda s, w: finalize(s, one, budget=w))),
        reads_embeddings=chosen.uses_embeddings,
    )
