"""Where one search round's time goes: the world's expand (and its parts), score, embed, the
allocation rules and the engine's bookkeeping, each compiled alone on P × N slots.

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
import statistics
import time

import jax
import jax.numpy as jnp

from dora_jax import world as W

# --- the world's private parts (to move with the counter hash at merge) ---------------------
from dora_jax.counter_rng import beta as _beta
from dora_jax.counter_rng import digest as _digest
from dora_jax.counter_rng import normal as _normal
from dora_jax.registry import RULES
from dora_jax.search import (
    SearchConfig,
    SyntheticWorld,
    _count_distinct,
    init_state,
    search_round,
)
from dora_jax.world import (
    _child,
    _child_id,
    _child_index,
    _node_values,
    _orthogonal_unit,
)


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


def main(args: argparse.Namespace) -> None:
    config = W.preset(args.preset)
    world = SyntheticWorld(config)
    p, n = args.problems, args.budget
    keys = jax.random.split(jax.random.key(args.seed), (p, 2))
    problems = jax.vmap(world.sample_problem)(keys[:, 0])
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
    for fn in compiled.values():
        jax.block_until_ready(fn())
    times: dict[str, list[float]] = {name: [] for name in compiled}
    for _ in range(args.repeats):
        for name, fn in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
    print(f"P = {p}, N = {n}, slots after {args.rounds} REBASE rounds; ns per slot (medians)")
    for name, ts in times.items():
        print(f"{name:<32}{1e9 * statistics.median(ts) / (p * n):>10.1f}")


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--preset", default="paper-like")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.problems, args.budget, args.repeats) < 1 or args.rounds < 0:
        parser.error("--problems, --budget and --repeats must be >= 1, --rounds >= 0")
    return args


if __name__ == "__main__":
    main(parse())
