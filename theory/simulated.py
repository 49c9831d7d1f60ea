"""Paired simulated searches for the empirical claims (Table 1's FLOPs, the Pareto claim).

One compiled search per (world, slots, problems, max rounds), shared by every claim that runs
in that world (`simulations.runner.compile_search`, the runner's own pairing: for a seed, the
problems and search keys are the same for every method and budget).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from dora_jax import world as world_lib
from dora_jax.search import Rule
from simulations import runner
from simulations.spec import PAPER_METHODS, ExperimentSpec

INDEX = {m: i for i, m in enumerate(PAPER_METHODS)}


@functools.cache
def _spec(config: world_lib.WorldConfig, problems: int, max_rounds: int) -> ExperimentSpec:
    return ExperimentSpec(
        world=config,
        world_name="theory",
        rules=tuple(Rule.make(m) for m in PAPER_METHODS),
        budgets=(64,),  # a placeholder: each run passes its own budget
        problems=problems,
        max_rounds=max_rounds,
    )


@functools.cache
def _compiled(config: world_lib.WorldConfig, slots: int, problems: int, max_rounds: int):
    spec = _spec(config, problems, max_rounds)
    return runner.compile_search(spec, slots, runner.make_batch(spec, 0, problems))


def runs(
    config: world_lib.WorldConfig,
    wanted: list[tuple[str, int]],
    *,
    seed: int,
    problems: int,
    max_rounds: int,
) -> dict[tuple[str, int], dict[str, Any]]:
    """{(method, budget): the runner's summary} for one seed's batch of `problems` problems."""
    spec = _spec(config, problems, max_rounds)
    problems_b, keys = runner.make_batch(spec, seed, problems)
    out = {}
    for method, budget in wanted:
        fn = _compiled(config, runner.slots_for(budget), problems, max_rounds)
        result = fn(keys, problems_b, jnp.int32(INDEX[method]), jnp.int32(budget))
        out[method, budget] = runner.summarize(jax.block_until_ready(result), spec, problems)
    return out
