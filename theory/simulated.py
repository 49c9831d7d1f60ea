"""Paired simulated searches for the empirical claims (Table 1's FLOPs, the Pareto claim).

One compiled search per (world, slots, problems, max rounds), shared by every claim that runs
in that world (`dora_jax.montecarlo`'s batches, as `dora simulate`'s: for a seed, the
problems and search keys are the same for every method and budget). Besides the paper's methods
it holds Eq. 7's exact one-step optimum with the world's κ ("optimal") and with κ × MISCALIBRATION
("optimal-miscalibrated"): the rule index is a runtime argument, so two more rules cost a little
compile time, not a second compile.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dora_jax import ledger as ledger_lib
from dora_jax import montecarlo
from dora_jax import world as world_lib
from dora_jax.montecarlo import PAPER_METHODS
from dora_jax.search import Rule, SearchConfig, SyntheticWorld, WorldSwitch, search

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


MODEL_SIZES = ledger_lib.ModelSizes.for_policy("llama-3.2-1b")  # `dora simulate`'s default


def _group_key(config: world_lib.WorldConfig) -> tuple:
    """Worlds with equal keys can share one compiled search (`WorldSwitch`)."""
    return (_rules(config), config.embed_dim, config.prompt_tokens)


def _compile(group: tuple[world_lib.WorldConfig, ...], slots: int, problems: int, max_rounds: int):
    """The vmapped search over `group`'s worlds with `slots` slots: (keys, problems, rule index,
    budget ≤ slots, world index in `group`)."""
    config = SearchConfig(slots, _rules(group[0]), max_rounds)
    worlds = tuple(SyntheticWorld(c) for c in group)

    def one(key, problem, rule, budget, index):
        world = WorldSwitch(worlds, index)
        return search(key, problem, world, config, rule=rule, budget=budget)

    problems_b, keys = montecarlo.global_batch(worlds[0], 0, problems)
    fn = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None, None)))
    return fn.lower(keys, problems_b, jnp.int32(0), jnp.int32(slots), jnp.int32(0)).compile()


# Compiled searches by (worlds, slots, problems, max rounds), each compiled once: by the first
# claim that needs it, or ahead of time in the background (`prefetch`, then `launch`: XLA
# compiles without the GIL, so the searches compile on the second core while the analytic claims
# run). Worlds prefetched together with the same shapes share one compiled search (the world
# index is a runtime argument: one compile of the engine instead of one per world); a world
# never prefetched compiles alone. Which worlds share a search changes no result: a world's
# branch is its own code, and its runs equal those of the search compiled for it alone bit for
# bit (tests/test_theory_pareto.py checks it).
_COMPILED: dict[tuple, concurrent.futures.Future] = {}
_GROUP: dict[tuple, tuple] = {}  # (world, slots, problems, max rounds) -> its _COMPILED key
_WANTED: list[tuple] = []  # prefetched, not launched: (world, slots, problems, max rounds)
_JOBS: list[tuple[concurrent.futures.Future, Callable[[], Any]]] = []  # other work, launched after
_LOCK = threading.Lock()
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="theory-compile")


def _fill(future: concurrent.futures.Future, work: Callable[[], Any]) -> None:
    try:
        future.set_result(work())
    except BaseException as error:  # handed to whoever waits on it
        future.set_exception(error)


def _compiled(config: world_lib.WorldConfig, slots: int, problems: int, max_rounds: int):
    """(the compiled search that runs `config`, the world's index in it)."""
    shape = (slots, problems, max_rounds)
    with _LOCK:
        mine = (config, *shape) not in _GROUP
        if mine:
            _GROUP[config, *shape] = ((config,), *shape)
            _COMPILED[(config,), *shape] = concurrent.futures.Future()
        key = _GROUP[config, *shape]
        future = _COMPILED[key]
    if mine:
        _fill(future, functools.partial(_compile, *key))
    return future.result(), key[0].index(config)


def prefetch(
    config: world_lib.WorldConfig, budgets: list[int], problems: int, max_rounds: int
) -> None:
    """Registers the searches that `runs` will need for `budgets`, to be compiled in the
    background by `launch` (a claim's `prepare`; single-process only: a multi-host run
    compiles on demand)."""
    if jax.process_count() > 1:
        return
    with _LOCK:
        for slots in sorted({montecarlo.slots_for(b) for b in budgets}, reverse=True):
            wanted = (config, slots, problems, max_rounds)
            if wanted not in _GROUP and wanted not in _WANTED:
                _WANTED.append(wanted)


def prefetch_job(work: Callable[[], Any]) -> concurrent.futures.Future:
    """A future for `work()`, run in the background after the prefetched searches compile
    (started by `launch`; single-process only: elsewhere it runs now)."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    if jax.process_count() > 1:
        _fill(future, work)
        return future
    with _LOCK:
        _JOBS.append((future, work))
    return future


def launch() -> None:
    """Starts compiling every prefetched search in the background, the worlds that can share a
    search (same shapes, rules, embedding width and prompt) in one, the largest first; then
    the other prefetched jobs, in the order they were registered."""
    with _LOCK:
        groups: dict[tuple, list[world_lib.WorldConfig]] = {}
        for config, *shape in _WANTED:
            groups.setdefault((*shape, _group_key(config)), []).append(config)
        _WANTED.clear()
        work: list[tuple[concurrent.futures.Future, Callable[[], Any]]] = []
        for (*shape, _), configs in sorted(groups.items(), key=lambda g: -g[0][0]):
            key = (tuple(configs), *shape)
            future: concurrent.futures.Future = concurrent.futures.Future()
            _COMPILED[key] = future
            for config in configs:
                _GROUP[config, *shape] = key
            work.append((future, functools.partial(_compile, *key)))
        work += _JOBS
        _JOBS.clear()
    for future, job in work:
        _POOL.submit(_fill, future, job)


@functools.cache
def _batch(config: world_lib.WorldConfig, seed: int, problems: int, max_rounds: int):
    # Sharded over every device (every process's under jax.distributed; padding rows dropped
    # by `montecarlo.summarize`).
    return montecarlo.global_batch(SyntheticWorld(config), seed, problems)


def _run(
    config: world_lib.WorldConfig, method: str, budget: int, seed: int, problems: int,
    max_rounds: int,
) -> dict[str, Any]:  # fmt: skip
    """One (method, budget) on one seed's batch: the runner's summary, with per-problem FLOPs
    and rounds."""
    problems_b, keys = _batch(config, seed, problems, max_rounds)
    fn, index = _compiled(config, montecarlo.slots_for(budget), problems, max_rounds)
    result = montecarlo.gather(jax.block_until_ready(
        fn(keys, problems_b, np.int32(INDEX[method]), np.int32(budget), np.int32(index))
    ))  # fmt: skip
    summary = montecarlo.summarize(result, MODEL_SIZES, problems)
    # Per problem (for ratios of means with a delta-method SE over paired problems).
    led = ledger_lib.Ledger(*(np.asarray(x, np.float64)[:problems] for x in result.ledger))
    summary["per_problem_flops"] = np.asarray(ledger_lib.flops(led, MODEL_SIZES)["total"])
    summary["per_problem_rounds"] = np.asarray(result.rounds, np.float64)[:problems]
    return summary


# Runs, memoized: claims that share a run (REBASE@16 on seed 0 is in table1-flops, pareto and
# optimal-multiround) pay for it once. They execute on RUN_WORKERS threads (XLA runs without the
# GIL), so a claim that submits its runs ahead (`submit`) keeps both cores busy; each run is
# independent of the others, so the summaries do not depend on the order they finish in.
RUN_WORKERS = 2
_RUNS: dict[tuple, concurrent.futures.Future] = {}
_RUN_POOL = concurrent.futures.ThreadPoolExecutor(
    max_workers=RUN_WORKERS, thread_name_prefix="theory-run"
)


def _future(config, method, budget, seed, problems, max_rounds) -> concurrent.futures.Future:
    key = (config, method, budget, seed, problems, max_rounds)
    with _LOCK:
        future = _RUNS.get(key)
        mine = future is None
        if mine:
            future = _RUNS[key] = concurrent.futures.Future()
    assert future is not None
    if mine:
        work = functools.partial(_run, *key)
        if jax.process_count() > 1:
            _fill(future, work)  # every process issues the same gathers in the same order
        else:
            _batch(config, seed, problems, max_rounds)  # once, on this thread
            _RUN_POOL.submit(_fill, future, work)
    return future


def submit(
    config: world_lib.WorldConfig,
    wanted: list[tuple[str, int]],
    *,
    seeds: Iterable[int],
    problems: int,
    max_rounds: int,
) -> None:
    """Starts every (method, budget) of `wanted` on every seed in the background and returns;
    `runs` then collects them."""
    for seed in seeds:
        for method, budget in wanted:
            _future(config, method, budget, seed, problems, max_rounds)


def runs(
    config: world_lib.WorldConfig,
    wanted: list[tuple[str, int]],
    *,
    seed: int,
    problems: int,
    max_rounds: int,
) -> dict[tuple[str, int], dict[str, Any]]:
    """{(method, budget): the runner's summary} for one seed's batch of `problems` problems
    (shared, memoized summaries: callers must not modify them)."""
    futures = {
        (method, budget): _future(config, method, budget, seed, problems, max_rounds)
        for method, budget in wanted
    }
    return {key: future.result() for key, future in futures.items()}


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
    summaries for one seed (shared, memoized runs: do not modify them). The first call starts
    every seed's pair in the background (`submit`)."""
    n = region["N"]
    wanted = [("rebase", n), ("dora", dora_budget)]
    config, problems, max_rounds = (
        world_lib.preset("paper-like"),
        region["problems"],
        region["max_rounds"],
    )
    submit(config, wanted, seeds=range(region["seeds"]), problems=problems, max_rounds=max_rounds)
    got = runs(config, wanted, seed=seed, problems=problems, max_rounds=max_rounds)
    return got["rebase", n], got["dora", dora_budget]
