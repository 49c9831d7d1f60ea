"""dora_jax.montecarlo: the per-device pool equals the vmapped search; batches are paired."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from dora_jax import montecarlo, world
from dora_jax.search import Rule, SearchConfig, SyntheticWorld

WORLD = SyntheticWorld(world.preset("paper-like"))
CONFIG = SearchConfig(8, (Rule.make("rebase"), Rule.make("dora")), 6)  # 8 slots: budgets ≤ 8


@pytest.mark.slow
def test_pool_equals_vmap_for_every_lane_count_rule_and_budget():
    """Bit for bit, with one lane (every problem refills it) and a few; a budget below the slot
    count (dead slots) and the full one."""
    batch = montecarlo.global_batch(WORLD, 3, 7)
    problems, keys = batch
    reference = montecarlo.compile_vmap(WORLD, CONFIG, batch)
    pools = {lanes: montecarlo.compile_pool(WORLD, CONFIG, batch, lanes=lanes) for lanes in (1, 3)}
    for rule in range(len(CONFIG.rules)):
        for budget in (5, 8):
            args = (keys, problems, np.int32(rule), np.int32(budget))
            want = jax.tree.map(np.asarray, reference(*args))
            for lanes, pool in pools.items():
                got = jax.tree.map(np.asarray, pool(*args))
                same = jax.tree.map(np.array_equal, got, want)
                assert all(jax.tree.leaves(same)), (lanes, rule, budget, same)


def test_batches_are_paired_and_padded_to_the_devices():
    problems, keys = montecarlo.make_batch(WORLD, 0, 5)
    again, again_keys = montecarlo.make_batch(WORLD, 0, 5)
    other, _ = montecarlo.make_batch(WORLD, 1, 5)
    assert np.array_equal(jax.random.key_data(keys), jax.random.key_data(again_keys))
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, problems, again)))
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, problems, other)))
    assert montecarlo.padded_count(7, 2) == 8 and montecarlo.padded_count(8, 2) == 8
    assert [montecarlo.slots_for(b) for b in (1, 64, 65, 256, 300)] == [64, 64, 256, 256, 300]
    assert [montecarlo.default_lanes(r) for r in (1, 8, 9, 200)] == [1, 1, 2, 25]
