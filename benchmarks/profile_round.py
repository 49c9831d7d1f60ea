"""Where one search round's time goes: the world's expand (and its parts), score, embed, the
allocation rules and the engine's bookkeeping, each compiled alone on P × N slots.

A second table (skipped with --no-engine) splits the round of the pool engine (`search_pool`) for
REBASE and DORA into the engine's own steps, each compiled alone and `jax.vmap`ped over the pool's
lanes (P/8 problems in flight, N slots each, taken after --rounds rounds of that rule), in ns per
lane slot: expand + score, the round's finished entries (compacted to the slots that finished),
the rule's weights (DORA: and the survivors' embedding), the apportionment to exactly N (and,
within it, the ranking of the remainders), the parents, the re-slot gather, the trace row, the
ledger, the pool's writes of the round to its output (the entries, the trace row, the stopped
lanes' counts and ledger) and its refill, and the vote (once per problem: per slot of one round).
The lanes carry no finished buffer or trace (the pool writes them to its output), so neither do
the parts here. "pool round" is a whole
`search_pool` run divided by the lane slot-steps it computed; "rest" is the pool round less the
parts above it (loop overhead, and what XLA fuses differently when the parts run together).

Every part is `jax.jit(jax.vmap(...))` over P problems of N slots taken from a mid-search state
(the slots after --rounds rounds of REBASE), timed interleaved (medians of --repeats), and reported
in ns per slot. The parts of `expand` are the world's own private functions (GEM child choice,
child id, node-level values, the two Beta draws, the child vector, tokens); their sum exceeds
`expand` where XLA fuses across them.

    python benchmarks/profile_round.py                 # P = 2000, N = 64
    python benchmarks/profile_round.py --problems 200 --budget 16 --repeats 2
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import jax.numpy as jnp

from dora_jax import world as W
from dora_jax.apportion import apportion_shares, rank_pairwise

# --- the world's private parts (to move with the counter hash at merge) ---------------------
from dora_jax.counter_rng import beta as _beta
from dora_jax.counter_rng import digest as _digest
from dora_jax.counter_rng import normal as _normal
from dora_jax.registry import RULES
from dora_jax.search import (
    SearchConfig,
    SyntheticWorld,
    _compact,
    _count_distinct,
    _initial_outcome,
    _play_round,
    _write_round,
    append_finished,
    expand_and_score,
    finalize,
    finished_entries,
    init_state,
    parents_from_counts,
    plan_round,
    search_pool,
    search_round,
    trace_row,
    update_ledger,
)
from dora_jax.world import (
    _child,
    _child_id,
    _child_index,
    _node_values,
    _orthogonal_unit,
)

ENGINE_RULES = ("rebase", "dora")


def _parts(config: W.WorldConfig, n: int):
    """name → function of (key [2], slots [N]) for one problem (vmapped over P below)."""
    fields, _ = W._node_layout(config)

    def child_index(key, slots):
        x = 1e4 * slots.vector[:, 0]  # ≈ uniform fractional parts: no RNG in the timing
        u = jnp.clip(x - jnp.floor(x), 1e-7, 1 - 1e-7)
        return jax.vmap(lambda node, u, i: _child_index(node, u, i, config))(
            slots.node, u, jnp.arange(n)
        )

    def child_id(key, slots):
        index = slots.depth
        return jax.vmap(_child_id)(slots.node, index)

    def node_values(key, slots):
        del key
        return jax.vmap(lambda node: _node_values(_digest(node, 1), config))(slots.node)

    def betas(key, slots):
        del key
        c = config.branch_concentration

        def two(node, p):
            digest = _digest(node, 1)
            w = _beta(digest, fields["branch"].start, c * p, c * (1.0 - p))
            return _beta(digest, fields["p"].start, config.kappa * w, config.kappa * (1.0 - w))

        return jax.vmap(two)(slots.node, slots.p)

    def child(key, slots):
        del key
        return jax.vmap(lambda *a: _child(*a, config))(
            slots.node, slots.p, slots.label, slots.vector, slots.depth
        )

    def normals(key, slots):  # uniforms in (0, 1) from the vector: no RNG in the timing
        del key
        return _normal(slots.vector * 0.49 + 0.5)

    def orthogonal(key, slots):
        return _orthogonal_unit(slots.vector[::-1] + slots.vector[:, ::-1], slots.vector)

    def distinct(key, slots):
        del key
        return _count_distinct(W.direction_id(slots), slots.depth >= 0)

    def reslot(key, slots):
        parent = (jnp.arange(n) * 7 + slots.depth) % n
        return jax.tree.map(lambda x: x[parent], slots)

    def expand(key, slots):
        return W.expand(key, None, slots, config)

    def embed(key, slots):
        return W.embed(key, None, slots, config)

    def rebase(key, slots):
        return RULES["rebase"].allocate(None, slots.w, n, mask=jnp.ones((n,), bool))

    def dora(key, slots):
        e = W.embed(key, None, slots, config)
        return RULES["dora"].allocate(None, slots.w, n, mask=jnp.ones((n,), bool), embeddings=e)

    return {
        "expand": expand,
        "  GEM child choice": child_index,
        "  child id": child_id,
        "  node values (all)": node_values,
        "  two Beta draws": betas,
        "  child (values+Betas+vector)": child,
        "  E normals (erf_inv)": normals,
        "  orthogonal unit (tree sums)": orthogonal,
        "embed": embed,
        "count distinct directions (sort)": distinct,
        "re-slot gather": reslot,
        "allocate rebase": rebase,
        "embed + allocate dora": dora,
    }


def _interleaved(compiled: dict, repeats: int) -> dict[str, float]:
    """name → median seconds of `compiled[name]()` over `repeats` interleaved runs."""
    for fn in compiled.values():
        jax.block_until_ready(fn())
    times: dict[str, list[float]] = {name: [] for name in compiled}
    for _ in range(repeats):
        for name, fn in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


ENGINE_PARTS = (
    "pool round (search_pool)",
    "  search_round (vmapped lanes)",
    "    expand + score",
    "    finished entries (compacted)",
    "    embed survivors (DORA)",
    "    rule weights",
    "    apportionment (hamilton)",
    "      remainder ranks (keyed ties)",
    "    parents (cumsum → slots)",
    "    re-slot gather",
    "    trace row (+ distinct dirs)",
    "    ledger",
    "  pool output writes",
    "  pool refill (fresh + select)",
    "  rest (loop, fusion)",
    "vote (finalize, once a problem)",
)


def _engine_parts(args, world, rule: str, problems, keys) -> dict[str, float]:
    """ns per lane slot of each step of a pool round for `rule` (see the module docstring)."""
    p, n = args.problems, args.budget
    lanes = max(1, -(-p // 8))
    config = SearchConfig.make(rule, n)
    info = config.rules[0].info
    hp = dict(config.rules[0].hyperparameters)

    def advance(key, problem):
        state = init_state(key, problem, world, config)
        for _ in range(args.rounds):
            state = search_round(state, problem, world, config, freeze=False)
        return state

    lane_keys, lane_problems = keys[:lanes], jax.tree.map(lambda x: x[:lanes], problems)
    # The pool's lanes carry no finished buffer or trace.
    states = _lanes(jax.jit(jax.vmap(advance))(lane_keys, lane_problems))

    def settle(state, problem):
        plan = plan_round(state, config)
        slots, step, scores = expand_and_score(plan, problem, world, state.slots)
        settled = append_finished(state, plan, config, slots, step, scores, slots.tokens)
        return plan, settled

    plans, settled = jax.jit(jax.vmap(settle))(states, lane_problems)

    def entries(state, st):
        return _compact(finished_entries(st.step, st.scores, st.path_tokens, state.round), st.ended)

    def embeddings(plan, settled, problem):
        return world.embed(plan.k_embed, problem, settled.slots, active=settled.survivors)

    emb = jax.jit(jax.vmap(embeddings))(plans, settled, lane_problems)

    def weights(settled, e):
        extra = {"embeddings": e, "budget": n} if info.reads_embeddings else {}
        return info.weights(settled.scores, mask=settled.survivors, **hp, **extra)

    shares = jax.jit(jax.vmap(weights))(settled, emb)

    def apportion(plan, settled, w):
        return apportion_shares(w, n, settled.survivors, key=plan.k_alloc)

    counts = jax.jit(jax.vmap(apportion))(plans, settled, shares)

    def remainders(plan, settled, w):
        quota = n * w
        return rank_pairwise(quota - jnp.floor(quota), settled.survivors, plan.k_alloc)

    parents = jax.jit(jax.vmap(parents_from_counts))(counts)

    def regather(settled, parent, state):
        return jax.tree.map(lambda x: x[parent], settled.slots), state.group[parent]

    def trace(plan, settled, c, parent):
        return trace_row(plan, settled, c, parent[0], parent[1])

    def ledger(state, plan, settled):
        return update_ledger(state.ledger, plan, settled, config, 0, jnp.int32(7), state.round)

    def lane_round(s, q):
        return _play_round(s, q, world, config, 0, budget=None, freeze=False)

    after, record = jax.jit(jax.vmap(lane_round))(states, lane_problems)
    out = jax.tree.map(lambda x: jnp.broadcast_to(x, (p, *x.shape)), _initial_outcome(config))
    index = jnp.arange(lanes, dtype=jnp.int32)
    done = after.done | (index % 8 == 0)  # at least 1 lane in 8 stops

    def writes(out, record, state):
        return _write_round(out, index, states.round, record, state._replace(done=done))

    def refill(state, problem, stopped):
        fresh = _lanes(jax.vmap(lambda k, q: init_state(k, q, world, config))(lane_keys, problem))

        def pick(a, b):
            return jnp.where(stopped.reshape(stopped.shape + (1,) * (b.ndim - 1)), a, b)

        return jax.tree.map(pick, fresh, state)

    pool = jax.jit(lambda k, q: search_pool(k, q, world, config, lanes=lanes))
    pool_steps = int(pool(keys, problems).slot_steps)
    vm = jax.vmap
    compiled = {
        "pool round (search_pool)": lambda: pool(keys, problems),
        "  search_round (vmapped lanes)": functools.partial(
            jax.jit(vm(lane_round)), states, lane_problems
        ),
        "    expand + score": functools.partial(
            jax.jit(vm(lambda s, q: settle(s, q)[1].scores)), states, lane_problems
        ),
        "    finished entries (compacted)": functools.partial(
            jax.jit(vm(entries)), states, settled
        ),
        "    rule weights": functools.partial(jax.jit(vm(weights)), settled, emb),
        "    apportionment (hamilton)": functools.partial(
            jax.jit(vm(apportion)), plans, settled, shares
        ),
        "      remainder ranks (keyed ties)": functools.partial(
            jax.jit(vm(remainders)), plans, settled, shares
        ),
        "    parents (cumsum → slots)": functools.partial(jax.jit(vm(parents_from_counts)), counts),
        "    re-slot gather": functools.partial(jax.jit(vm(regather)), settled, parents[0], states),
        "    trace row (+ distinct dirs)": functools.partial(
            jax.jit(vm(trace)), plans, settled, counts, parents
        ),
        "    ledger": functools.partial(jax.jit(vm(ledger)), states, plans, settled),
        "  pool output writes": functools.partial(jax.jit(writes), out, record, after),
        "  pool refill (fresh + select)": functools.partial(
            jax.jit(refill), after, lane_problems, done
        ),
        "vote (finalize, once a problem)": functools.partial(
            jax.jit(vm(lambda o: finalize(o, config))),
            jax.tree.map(lambda x: x[:lanes], jax.jit(writes)(out, record, after)),
        ),
    }
    if info.reads_embeddings:
        compiled["    embed survivors (DORA)"] = functools.partial(
            jax.jit(vm(embeddings)), plans, settled, lane_problems
        )
    seconds = _interleaved(compiled, args.repeats)
    slots = lanes * n
    ns = {name: 1e9 * s / slots for name, s in seconds.items()}
    ns["pool round (search_pool)"] = 1e9 * seconds["pool round (search_pool)"] / pool_steps
    ns["  rest (loop, fusion)"] = ns["pool round (search_pool)"] - sum(
        ns[name] for name in ENGINE_PARTS[1:2] + ENGINE_PARTS[12:14]
    )
    return ns


def _lanes(states):
    """States as the pool's lanes hold them: without the finished buffer and trace."""
    return states._replace(finished=None, trace=None)


def _world_table(args, world, config, problems, keys) -> None:
    """The first table: the REBASE round, the world's parts and the rules on P × N slots."""
    p, n = args.problems, args.budget
    search_config = SearchConfig.make("rebase", n)

    def advance(key, problem):
        state = init_state(key, problem, world, search_config)
        for _ in range(args.rounds):
            state = search_round(state, problem, world, search_config)
        return state

    states = jax.jit(jax.vmap(advance))(keys[:, 1], problems)
    slots = states.slots
    round_fn = jax.jit(jax.vmap(lambda s, q: search_round(s, q, world, search_config)))
    after = round_fn(states, problems)
    select = jax.jit(
        jax.vmap(lambda s, t: jax.tree.map(lambda a, b: jnp.where(s.done, a, b), s, t))
    )
    compiled = {
        "search_round (rebase)": lambda: round_fn(states, problems),
        "select whole state on done": lambda: select(states, after),
    }
    part_keys = jax.random.split(jax.random.key(args.seed + 1), p)
    for name, fn in _parts(config, n).items():
        f = jax.jit(jax.vmap(fn))
        compiled[name] = lambda f=f: f(part_keys, slots)
    seconds = _interleaved(compiled, args.repeats)
    print(f"P = {p}, N = {n}, slots after {args.rounds} REBASE rounds; ns per slot (medians)")
    for name, s in seconds.items():
        print(f"{name:<32}{1e9 * s / (p * n):>10.1f}")


def main(args: argparse.Namespace) -> None:
    config = W.preset(args.preset)
    world = SyntheticWorld(config)
    p, n = args.problems, args.budget
    keys = jax.random.split(jax.random.key(args.seed), (p, 2))
    problems = jax.vmap(world.sample_problem)(keys[:, 0])
    if not args.no_world:
        _world_table(args, world, config, problems, keys)
    if args.no_engine:
        return
    parts = {rule: _engine_parts(args, world, rule, problems, keys[:, 1]) for rule in ENGINE_RULES}
    lanes = max(1, -(-p // 8))
    print(
        f"the pool's round: {lanes} lanes × N = {n}, after {args.rounds} rounds of each rule; "
        "ns per lane slot (medians)"
    )
    print(f"{'':<36}" + "".join(f"{rule:>10}" for rule in ENGINE_RULES))
    for name in ENGINE_PARTS:
        cells = [parts[rule].get(name) for rule in ENGINE_RULES]
        print(f"{name:<36}" + "".join(f"{'—':>10}" if c is None else f"{c:>10.1f}" for c in cells))


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--preset", default="paper-like")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-engine", action="store_true", help="skip the pool round's parts")
    parser.add_argument("--no-world", action="store_true", help="skip the first table")
    args = parser.parse_args(argv)
    if min(args.problems, args.budget, args.repeats) < 1 or args.rounds < 0:
        parser.error("--problems, --budget and --repeats must be >= 1, --rounds >= 0")
    return args


if __name__ == "__main__":
    main(parse())
