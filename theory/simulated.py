"""Paired simulated searches for the empirical claims (Table 1's FLOPs, the Pareto claim).

One compiled search per (world, slots, problems, max rounds), shared by every claim that runs
in that world (`simulations.runner.compile_search`, the runner's own pairing: for a seed, the
problems and search keys are the same for every method and budget). Besides the paper's methods
it holds Eq. 7's exact one-step optimum with the world's κ ("optimal") and with κ × MISCALIBRATION
("optimal-miscalibrated"): the rule index is a runtime argument, so two more rules cost a little
compile time, not a second compile.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from typing import Any

import jax
import numpy as np

from dora_jax import ledger as ledger_lib
from dora_jax import world as world_lib
from dora_jax.search import Rule
from simulations import runner
from simulations.spec import PAPER_METHODS, ExperimentSpec

MISCALIBRATION = 1000.0  # the κ factor of "optimal-miscalibrated"
METHODS = (*PAPER_METHODS, "optimal", "optimal-miscalibrated")
INDEX = {m: i for i, m in enumerate(METHODS)}


def _rules(config: world_lib.WorldConfig) -> tuple[Rule, ...]:
    # A world without a finite κ (p = w') has no Beta prior for "optimal": the oracle's limit.
    kappa = config.kappa if config.kappa < float("inf") else 1e12
    return (
        *(Rule.make(m) for m in PAPER_METHODS),
        Rule.make("optimal", kappa=float(kappa)),
        Rule.make("optimal", kappa=float(kappa) * MISCALIBRATION),
    )


@functools.cache
def _spec(config: world_lib.WorldConfig, problems: int, max_rounds: int) -> ExperimentSpec:
    return ExperimentSpec(
        world=config,
        world_name="theory",
        rules=_rules(config),
        budgets=(64,),  # a placeholder: each run passes its own budget
        problems=problems,
        max_rounds=max_rounds,
    )


def _compile(config: world_lib.WorldConfig, slots: int, problems: int, max_rounds: int):
    spec = _spec(config, problems, max_rounds)
    return runner.compile_search(spec, slots, runner.global_batch(spec, 0, problems))


# Compiled searches by (world, slots, problems, max rounds), each compiled once: by the first
# claim that needs it, or ahead of time by `prefetch` on one background thread (XLA compiles
# without the GIL, so a search compiles on the second core while the analytic claims run).
_COMPILED: dict[tuple, concurrent.futures.Future] = {}
_LOCK = threading.Lock()
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="theory-compile")


def _fill(future: concurrent.futures.Future, key: tuple) -> None:
    try:
        future.set_result(_compile(*key))
    except BaseException as error:  # handed to whoever waits on it
        future.set_exception(error)


def _compiled(config: world_lib.WorldConfig, slots: int, problems: int, max_rounds: int):
    key = (config, slots, problems, max_rounds)
    with _LOCK:
        future = _COMPILED.get(key)
        mine = future is None
        if mine:
            future = _COMPILED[key] = concurrent.futures.Future()
    if mine:
        _fill(future, key)
    return future.result()


def prefetch(
    config: world_lib.WorldConfig, budgets: list[int], problems: int, max_rounds: int
) -> None:
    """Starts compiling, in the background, the searches that `runs` will need for `budgets`
    (a claim's `prepare`; single-process only: a multi-host run compiles on demand)."""
    if jax.process_count() > 1:
        return
    for slots in sorted({runner.slots_for(b) for b in budgets}, reverse=True):
        key = (config, slots, problems, max_rounds)
        with _LOCK:
            if key in _COMPILED:
                continue
            future = _COMPILED[key] = concurrent.futures.Future()
        _POOL.submit(_fill, future, key)


@functools.cache
def _batch(config: world_lib.WorldConfig, seed: int, problems: int, max_rounds: int):
    # Sharded over every device (every process's under jax.distributed; padding rows dropped
    # by `runner.summarize`).
    return runner.global_batch(_spec(config, problems, max_rounds), seed, problems)


@functools.cache
def _run(
    config: world_lib.WorldConfig, method: str, budget: int, seed: int, problems: int,
    max_rounds: int,
) -> dict[str, Any]:  # fmt: skip
    """One (method, budget) on one seed's batch, memoized: claims that share a run (REBASE@16
    on seed 0 is in table1-flops, pareto and optimal-multiround) pay for it once. Callers
    must not modify the summary."""
    spec = _spec(config, problems, max_rounds)
    problems_b, keys = _batch(config, seed, problems, max_rounds)
    fn = _compiled(config, runner.slots_for(budget), problems, max_rounds)
    result = runner.gather(jax.block_until_ready(fn(keys, problems_b, np.int32(INDEX[method]),
                                                    np.int32(budget))))  # fmt: skip
    summary = runner.summarize(result, spec, problems)
    # Per problem (for ratios of means with a delta-method SE over paired problems).
    led = ledger_lib.Ledger(*(np.asarray(x, np.float64)[:problems] for x in result.ledger))
    summary["per_problem_flops"] = np.asarray(ledger_lib.flops(led, spec.model_sizes)["total"])
    summary["per_problem_rounds"] = np.asarray(result.rounds, np.float64)[:problems]
    return summary


def runs(
    config: world_lib.WorldConfig,
    wanted: list[tuple[str, int]],
    *,
    seed: int,
    problems: int,
    max_rounds: int,
) -> dict[tuple[str, int], dict[str, Any]]:
    """{(method, budget): the runner's summary} for one seed's batch of `problems` problems."""
    return {
        (method, budget): _run(config, method, budget, seed, problems, max_rounds)
        for method, budget in wanted
    }


def ratio_of_means(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """mean(num) / mean(den) over paired samples [n] and its delta-method standard error,
    sqrt(Var(num − r·den) / n) / mean(den) (large-n normal: n in the hundreds here)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    r = float(num.mean() / den.mean())
    se = float((num - r * den).std(ddof=1) / np.sqrt(num.size) / den.mean())
    return r, se


def prepare_table1(region: dict[str, Any]) -> None:
    """`prefetch` for Table 1's pair (a claim's `prepare`)."""
    n = region["N"]
    prefetch(world_lib.preset("paper-like"), [n, n // 4], region["problems"], region["max_rounds"])


def table1_pair(
    region: dict[str, Any], seed: int, dora_budget: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Table 1's pair in the paper-like world: (REBASE at region["N"], DORA at `dora_budget`)
    summaries for one seed (shared, memoized runs: do not modify them)."""
    n = region["N"]
    got = runs(
        world_lib.preset("paper-like"),
        [("rebase", n), ("dora", dora_budget)],
        seed=seed,
        problems=region["problems"],
        max_rounds=region["max_rounds"],
    )
    return got["rebase", n], got["dora", dora_budget]
