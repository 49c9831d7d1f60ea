"""`search_pool`'s path lanes (rules that never reallocate) against `jax.vmap(search)`.

Under temperature sampling a problem's N paths are independent, so the pool runs one path per
lane and rebuilds each problem's result from its paths' records. The comparison is EXACT (every
leaf of the SearchResult, bit for bit): a path reads the same words of the same round keys as its
slot does among the problem's N slots (`world.expand_path`), and the rebuilt finished buffer,
trace and ledger follow the engine's order. The control: a world whose paths read the words of
the wrong slot must give a different result, so the comparison can fail.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dora_jax.world as W
from dora_jax import search as S
from dora_jax.base import PathWorld

SEED = 20261206
P = 8  # problems per run
TS = "temperature_sampling"


@functools.cache
def problems(config: W.WorldConfig, size: int = P):
    """(search keys [size], problems [size]) of the world `config`."""
    keys = jax.random.split(jax.random.fold_in(jax.random.key(SEED), size), (size, 2))
    batch = jax.vmap(functools.partial(W.sample_problem, config=config))(keys[:, 0])
    return keys[:, 1], batch


def world_of(preset: str, **fields) -> S.SyntheticWorld:
    return S.SyntheticWorld(dataclasses.replace(W.preset(preset), **fields))


def runs(world, n: int, *, max_rounds: int = S.MAX_ROUNDS, budgets=None, lanes: int = 2):
    """(jax.vmap(search), search_pool) on the same problems, as host arrays."""
    config = S.SearchConfig.make(TS, n, max_rounds=max_rounds)
    keys, batch = problems(world.config)
    if budgets is None:
        budgets = jnp.full((P,), n, jnp.int32)

    def one(k, p, b):
        return S.search(k, p, world, config, budget=b)

    expected = jax.jit(jax.vmap(one))(keys, batch, budgets)
    pool = jax.jit(lambda k, p, b: S.search_pool(k, p, world, config, lanes=lanes, budget=b))
    return jax.device_get(expected), jax.device_get(pool(keys, batch, budgets))


def assert_same_bits(a, b, what: str) -> None:
    leaves_a, _ = jax.tree_util.tree_flatten_with_path(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert jax.tree.structure(a) == tree_b, what
    for (path, x), y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(
            np.asarray(x), np.asarray(y), err_msg=f"{what}: {jax.tree_util.keystr(path)}"
        )


def check(world, n: int, what: str, **kw) -> S.PoolRun:
    expected, run = runs(world, n, **kw)
    assert_same_bits(run.result, expected, what)
    # The work: every alive slot-step once, plus the lanes idle at the end; never more than the
    # vmapped loop's P · N · (most rounds).
    alive = int(np.sum(expected.trace.active))
    assert alive <= int(run.slot_steps) <= P * n * int(np.max(expected.rounds))
    return run


# ---------------------------------------------------------------------------------------------
# the world: one path reads what its slot reads


def test_path_step_is_its_slots_step():
    """Slot i of `expand`/`score` equals `expand_path`/`score_path` with index i, bit for bit
    (with per-candidate score noise, so that the score reads its words too)."""
    world = world_of("paper-like", candidate_score_noise=0.5)
    keys, batch = problems(world.config)
    problem = jax.tree.map(lambda x: x[0], batch)
    n = 8
    slots = world.init(problem, n)
    key = keys[0]

    @jax.jit
    def both(key, slots, final):
        stepped, step = world.expand(key, problem, slots, final)
        scores = world.score(key, problem, stepped)
        index = jnp.arange(n, dtype=jnp.int32)
        one = jax.vmap(world.expand_path, in_axes=(None, None, 0, 0, None))
        stepped_1, step_1 = one(key, problem, slots, index, final)
        score_one = jax.vmap(world.score_path, in_axes=(None, None, 0, 0))
        return (stepped, step, scores), (
            stepped_1,
            step_1,
            score_one(key, problem, stepped_1, index),
        )

    for final in (False, True):
        batched, alone = both(key, slots, jnp.asarray(final))
        assert_same_bits(alone, batched, f"final={final}")
        slots = batched[0]
    root = world.init_path(problem)
    assert_same_bits(root, jax.tree.map(lambda x: x[3], world.init(problem, n)), "root")


def test_synthetic_world_is_a_path_world():
    assert isinstance(world_of("paper-like"), PathWorld)


def test_paths_need_a_rule_that_never_reallocates():
    keys, batch = problems(W.preset("paper-like"))
    config = S.SearchConfig.make("rebase", 4)
    with pytest.raises(ValueError, match="paths=True needs a PathWorld"):
        S.search_pool(keys, batch, world_of("paper-like"), config, lanes=2, paths=True)


# ---------------------------------------------------------------------------------------------
# the pool: every problem's result is the vmapped search's


def test_path_pool_equals_vmap():
    check(world_of("paper-like"), 4, "paper-like N=4")


@pytest.mark.slow
@pytest.mark.parametrize("n", [16, 64])
def test_path_pool_equals_vmap_larger_budgets(n):
    check(world_of("paper-like"), n, f"paper-like N={n}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("preset", "fields"),
    [
        ("paper-llama-1b-aime2024", {}),
        ("redundant", {}),
        ("independent", {"candidate_score_noise": 0.5}),
        ("paper-like", {"trap_rate": 0.2}),
    ],
    ids=["paper-llama-1b-aime2024", "redundant", "independent-noisy-scores", "traps"],
)
def test_path_pool_equals_vmap_other_worlds(preset, fields):
    check(world_of(preset, **fields), 16, f"{preset} {fields}")


@pytest.mark.slow
def test_path_pool_with_budgets_below_the_slots():
    """Budgets 0..16 in 16 slots: the slots past a problem's budget never run."""
    budgets = jnp.asarray([16, 1, 5, 0, 9, 16, 2, 12], jnp.int32)
    check(world_of("paper-like"), 16, "budgets", budgets=budgets, lanes=1)


@pytest.mark.slow
def test_path_pool_at_a_forced_final_round():
    """T_max = 4 cuts most paths: they finish in the forced final round."""
    check(world_of("paper-like"), 16, "T_max=4", max_rounds=4)


@pytest.mark.slow
def test_path_pool_narrows_and_equals_problem_lanes():
    """1024 path lanes (16 problem lanes × N) narrow to 256 in the drain; the problem lanes give
    the same bits and compute more slot-steps."""
    world = world_of("paper-like")
    config = S.SearchConfig.make(TS, 64)
    keys, batch = problems(world.config, 40)

    def pool(by_path):
        fn = jax.jit(lambda k, p: S.search_pool(k, p, world, config, lanes=16, paths=by_path))
        return jax.device_get(fn(keys, batch))

    by_path, by_problem = pool(None), pool(False)
    assert_same_bits(by_path.result, by_problem.result, "paths vs problems")
    assert int(by_path.slot_steps) < int(by_problem.slot_steps)


@dataclasses.dataclass(frozen=True)
class _WrongSlot(S.SyntheticWorld):
    """The broken twin: every path reads the words of slot 0."""

    def expand_path(self, key, problem, slot, index, final):
        return super().expand_path(key, problem, slot, jnp.zeros_like(index), final)


@pytest.mark.slow
def test_control_a_path_reading_the_wrong_words_differs():
    expected, run = runs(_WrongSlot(W.preset("paper-like")), 4)
    with pytest.raises(AssertionError):
        assert_same_bits(run.result, expected, "wrong slot")


@pytest.mark.slow
def test_world_switch_of_path_worlds_runs_each_world_on_path_lanes():
    """`world_switch` of two path worlds is a `PathWorld`, and its path pool with index i equals
    world i's own path pool bit for bit; the control: index 1 on world 0's problems differs."""
    worlds = (world_of("paper-like"), world_of("paper-like", label_keep=0.5, kappa=5.0))
    config = S.SearchConfig.make(TS, 4)
    assert isinstance(S.world_switch(worlds, 0), PathWorld)
    assert not isinstance(S.world_switch((worlds[0], object()), 0), PathWorld)

    @jax.jit
    def switched(keys, batch, index):
        world = S.world_switch(worlds, index)
        return S.search_pool(keys, batch, world, config, lanes=2).result

    for i, world in enumerate(worlds):
        keys, batch = problems(world.config)
        alone = jax.jit(lambda k, p, w=world: S.search_pool(k, p, w, config, lanes=2).result)
        assert_same_bits(switched(keys, batch, i), alone(keys, batch), f"world {i}")
    keys, batch = problems(worlds[0].config)
    other = jax.device_get(switched(keys, batch, 1))
    same = jax.device_get(switched(keys, batch, 0))
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(other), jax.tree.leaves(same), strict=True)
    )


@pytest.mark.slow
def test_world_switch_draws_what_the_world_alone_draws_up_to_the_last_bit_of_its_vectors():
    """A round of `world_switch` with index i draws world i's steps: the same discrete outcomes
    (directions, finishes, answers) and scores bit for bit, and node vectors / embeddings equal
    up to float rounding (inside the branch XLA fuses, and so contracts into FMAs, differently:
    `WorldSwitch`'s note), 4 float32 ulps of a unit vector's largest entry at most; the control:
    index 1 (another parent-child cosine) on world 0's problems draws other vectors."""
    worlds = (world_of("paper-like"), world_of("paper-like", parent_child_cosine=0.5))
    config = S.SearchConfig.make("dora", 16)
    keys, batch = problems(worlds[0].config)

    def one_round(key, problem, index, switched):
        world = S.world_switch(worlds, index) if switched else worlds[0]
        state = S.init_state(key, problem, world, config)
        plan = S.plan_round(state, config)
        slots, step, scores = S.expand_and_score(plan, problem, world, state.slots)
        return step, scores, slots.vector, world.embed(plan.k_embed, problem, slots)

    def run(index, switched):
        fn = jax.vmap(functools.partial(one_round, switched=switched), in_axes=(0, 0, None))
        return jax.device_get(jax.jit(fn)(keys, batch, jnp.int32(index)))

    step, scores, vector, embedding = run(0, True)
    step0, scores0, vector0, embedding0 = run(0, False)
    assert_same_bits((step, scores), (step0, scores0), "discrete outcomes and scores")
    tolerance = 4 * np.finfo(np.float32).eps
    np.testing.assert_allclose(vector, vector0, rtol=0, atol=tolerance)
    np.testing.assert_allclose(embedding, embedding0, rtol=0, atol=tolerance)
    _, _, other_vector, _ = run(1, True)
    assert np.max(np.abs(other_vector - vector)) > 1000 * tolerance
