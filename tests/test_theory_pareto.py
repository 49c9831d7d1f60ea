"""The `pareto` claim (theory/pareto_claims.py) in fast mode: DORA@N/4 against each baseline@N,
sequential batches until decided or capped, and a record the protocol judged."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import theory.pareto_claims as pareto_claims
from dora_jax import world as world_lib
from theory import simulated
from theory.core import run_cached


def fast(claim_id: str, control: bool = False):
    return run_cached(claim_id, "fast", control=control)


def test_sequential_record():
    v = fast("pareto")
    assert v.k_se is not None and v.interval is not None
    worlds = v.details["worlds"]
    assert set(worlds) == set(v.region["worlds"])
    schedule = v.region["schedule (cumulative batches at each look)"]
    assert len(schedule) <= pareto_claims.LOOKS
    for world in worlds.values():
        assert world["batches"] == schedule[world["looks"] - 1]
        assert world["problems"] == world["batches"] * v.region["batch_problems"]
        assert set(world["comparisons"]) == set(pareto_claims.BASELINES)
        for row in world["comparisons"].values():
            lo, hi = row["interval"]
            assert lo <= row["difference"] <= hi
            assert row["problems"] <= world["problems"]
            # a decided comparison stopped sampling; an undecided one says what would decide it
            if row["decided"] == "undecided":
                assert row["problems"] == world["problems"] and row["look decided"] is None
            else:
                assert (row["decided"] == "non-inferior") == (lo >= -pareto_claims.MARGIN)
                assert row["problems to decide"] is None
            # DORA@N/4 costs less than every baseline@N (the other half of Table 1's claim)
            assert row["FLOPs(DORA@N/4) / FLOPs(baseline@N)"] < 1
    if v.verdict == "inconclusive":
        assert v.samples_to_decide is not None


def test_control_is_a_tie():
    control = fast("pareto", True)
    assert control.verdict == "holds" and control.value == 0.0


@pytest.mark.slow
def test_worlds_sharing_one_compiled_search_run_as_each_world_alone():
    """`theory.simulated` compiles the worlds prefetched together into one search (the world index
    a runtime argument): every run equals the search compiled for its world alone, bit for bit,
    whichever world, rule and budget (so sharing a compile changes no verdict)."""
    shape = (16, 8, 6)  # slots, problems, max rounds: small, the worlds' branches all taken
    worlds = (world_lib.preset("paper-like"), world_lib.preset("noisy-prm"))
    group = simulated._compile(worlds, *shape)
    for index, config in enumerate(worlds):
        alone = simulated._compile((config,), *shape)
        problems, keys = simulated._batch(config, 0, shape[1], shape[2])
        for method in simulated.METHODS:
            for budget in (4, 16):
                args = (keys, problems, np.int32(simulated.INDEX[method]), np.int32(budget))
                shared = group(*args, np.int32(index))
                own = alone(*args, np.int32(0))
                for a, b in zip(jax.tree.leaves(shared), jax.tree.leaves(own), strict=True):
                    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
