"""The Monte Carlo runner behind `dora simulate`: methods × budgets × seeds on a synthetic world.

The batch machinery is `dora_jax.montecarlo`'s (pairing, sharding, gathers, shared slot counts):
for a seed s, the P problems and the search keys are the same for every method and every budget,
so method differences are paired. The batch is sharded over all visible devices, across processes
too (`jax.distributed`, one per host), and the per-problem results are gathered to every process,
so the records equal a single process's.

Engine: the fixed-N search runs as `search_pool` on each device's own rows
(`montecarlo.compile_pool`, LANES problems in flight per device): the vmapped search's
(`montecarlo.compile_vmap`, ENGINE = "vmap") searches, with the equality and its one limit
stated in `dora_jax.montecarlo`; the adaptive search (`spec.adaptive`) is
`dora_jax.adaptive.search_pooled` on the whole batch.

Compilation: one compiled search serves every method (the rule index is a runtime argument) and
every budget of one slot count (`slots_for`), because compiling a search costs more CPU (~10 s)
than running the smaller budgets on more slots. Compiles and runs share WORKERS threads (XLA
releases the GIL), the largest search first, so that the cores stay busy.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from backends.files import atomic_write, jsonl_text
from dora_jax import adaptive as adaptive_lib
from dora_jax import montecarlo
from dora_jax.montecarlo import SHARED_SLOTS, gather, padded_count, slots_for
from dora_jax.search import SearchConfig, SyntheticWorld
from simulations.spec import ExperimentSpec

__all__ = [
    "SHARED_SLOTS",
    "compile_search",
    "gather",
    "global_batch",
    "make_batch",
    "padded_count",
    "run",
    "slots_for",
    "summarize",
]

WORKERS = 2  # threads for compiles and runs (the 2-core machine this is tuned on)
ENGINE = "pool"  # the fixed-N engine: "pool" (search_pool per device) or "vmap" (the reference)
LANES: int | None = None  # problems in flight per device; None: montecarlo.default_lanes
# Searches compiling on the pool's threads lower (Python, under the GIL) one at a time: the first
# then compiles (XLA, without the GIL) on one core while the next lowers on the other.
_LOWERING = threading.Lock()


def global_batch(spec: ExperimentSpec, seed: int, problems: int):
    """One seed's batch of `problems` problems of the spec's world, padded to a multiple of the
    global device count and sharded over every device; run a search on it and `gather` it."""
    return montecarlo.global_batch(SyntheticWorld(spec.world), seed, problems)


def make_batch(spec: ExperimentSpec, seed: int, count: int):
    """Problems and search keys for one seed (identical for every method and budget)."""
    return montecarlo.make_batch(SyntheticWorld(spec.world), seed, count)


def compile_search(spec: ExperimentSpec, slots: int, batch, *, engine: str | None = None):
    """The search with `slots` slots on `batch`: (keys, problems, rule index, budget ≤ slots)
    -> SearchResult, by `engine` ("pool" or "vmap"; default ENGINE: the same records).

    With `spec.adaptive` it is `dora_jax.adaptive.search_pooled` on the whole batch instead:
    (keys, problems, rule index, StopParams), returning (SearchResult, PoolRecord).
    """
    config = SearchConfig(slots, spec.rules, spec.max_rounds)
    world = SyntheticWorld(spec.world)
    if spec.adaptive is not None:
        problems, keys = batch
        pooled = jax.jit(
            lambda k, p, r, params: adaptive_lib.search_pooled(k, p, world, config, params, rule=r)
        )
        params = spec.adaptive.params(slots)._replace(rows=jnp.int32(spec.problems))
        return montecarlo.lower_and_compile(
            pooled, (keys, problems, jnp.int32(0), params), _LOWERING
        )
    engine = ENGINE if engine is None else engine
    if engine == "pool":
        return montecarlo.compile_pool(world, config, batch, lanes=LANES, lowering=_LOWERING)
    if engine == "vmap":
        return montecarlo.compile_vmap(world, config, batch, lowering=_LOWERING)
    raise ValueError(f"engine must be 'pool' or 'vmap', got {engine!r}")


def summarize(result, spec: ExperimentSpec, problems: int) -> dict[str, Any]:
    """Means over the first `problems` rows of a batched SearchResult (padding dropped)."""
    return montecarlo.summarize(result, spec.model_sizes, problems)


def summarize_pool(record: adaptive_lib.PoolRecord, problems: int) -> dict[str, Any]:
    """What the adaptive decisions did, over the first `problems` rows: why problems stopped,
    when, at what posterior, how wide they ran, and the pool's use per round."""
    reason = np.asarray(record.reason)[:problems]
    width = np.asarray(record.width)[:problems]
    used = np.asarray(record.pool_used)
    rounds = int(np.count_nonzero(used))
    return {
        "stopped": {
            name: float(np.mean(reason == i)) for i, name in enumerate(adaptive_lib.REASONS)
        },
        "stop_round": float(np.mean(np.asarray(record.stop_round)[:problems])),
        "stop_posterior": float(np.mean(np.asarray(record.posterior)[:problems])),
        "max_width": float(np.mean(width.max(axis=1))),
        "pool": int(record.pool),
        "total": int(record.total),
        "pool_used": used[:rounds].astype(int).tolist(),
    }


def run(
    spec: ExperimentSpec,
    *,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[str], None] | None = None,
    engine: str | None = None,
    first_seed: int = 0,
) -> list[dict[str, Any]]:
    """Runs the whole grid; returns one record per (method, budget, seed), in that nesting
    (budgets outermost, in the spec's order). `on_record` and `progress` are called from the
    calling thread as runs finish (in completion order); `engine` as in `compile_search`. The
    seeds are first_seed … first_seed + spec.seeds − 1 (another range: other problems, e.g. a
    validation set kept apart from an evaluation's)."""
    seeds = range(first_seed, first_seed + spec.seeds)
    # The searches compile for the batch's shapes, in the background while it is drawn.
    shapes = montecarlo.abstract_batch(SyntheticWorld(spec.world), first_seed, spec.problems)
    versions = {
        "jax": jax.__version__,
        "devices": jax.device_count(),
        "processes": jax.process_count(),
        "platform": jax.devices()[0].platform,
        # The fixed-N engine: its records equal the other's up to float near-ties (module doc).
        "engine": (ENGINE if engine is None else engine) if spec.adaptive is None else "pooled",
    }
    budgets_of: dict[int, list[int]] = {}
    for budget in spec.budgets:
        budgets_of.setdefault(slots_for(spec.slots_needed(budget)), []).append(budget)
    records: dict[tuple[int, int, int], dict[str, Any]] = {}

    def finish(budget, seed, index, rule, compile_s, result, wall_s) -> None:
        pool = None
        if spec.adaptive is not None:
            result, pool = result
        record = {
            "method": rule.label,
            "budget": budget,
            "seed": seed,
            **summarize(result, spec, spec.problems),
            **({} if pool is None else {"adaptive": summarize_pool(pool, spec.problems)}),
            "problems": spec.problems,
            "world": spec.world_name,
            "wall_s": wall_s,
            "compile_s": compile_s,
            "versions": versions,
        }
        records[(spec.budgets.index(budget), seed, index)] = record
        if on_record:
            on_record(record)
        if progress:
            progress(f"{rule.label} N={budget} seed={seed}")

    def jobs(slots: int):
        return itertools.product(
            sorted(budgets_of[slots], reverse=True), seeds, enumerate(spec.rules)
        )

    if jax.process_count() > 1:
        batches = {seed: global_batch(spec, seed, spec.problems) for seed in seeds}
        # Every process must issue the same collectives (the gathers) in the same order, so the
        # grid runs in one fixed order, without the thread pool's completion order.
        for slots in sorted(budgets_of, reverse=True):
            compiled, compile_s = _timed_compile(spec, slots, batches[first_seed], engine)
            for budget, seed, (index, rule) in jobs(slots):
                result, wall_s = _timed_run(compiled, batches[seed], index, budget, spec)
                finish(budget, seed, index, rule, compile_s, gather(result), wall_s)
        return [records[k] for k in sorted(records)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        # The largest search first: its compile and its runs are the longest jobs.
        compiling = {
            pool.submit(_timed_compile, spec, slots, shapes, engine): slots
            for slots in sorted(budgets_of, reverse=True)
        }
        batches = {seed: global_batch(spec, seed, spec.problems) for seed in seeds}
        running: dict[concurrent.futures.Future, tuple] = {}
        pending = set(compiling)
        while pending:
            done, pending = concurrent.futures.wait(
                pending, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                if future in compiling:
                    compiled, compile_s = future.result()
                    for budget, seed, (index, rule) in jobs(compiling[future]):
                        job = pool.submit(_timed_run, compiled, batches[seed], index, budget, spec)
                        running[job] = (budget, seed, index, rule, compile_s)
                        pending.add(job)
                    continue
                budget, seed, index, rule, compile_s = running.pop(future)
                finish(budget, seed, index, rule, compile_s, *future.result())
    return [records[k] for k in sorted(records)]


def _timed_compile(spec: ExperimentSpec, slots: int, batch, engine: str | None):
    start = time.perf_counter()
    compiled = compile_search(spec, slots, batch, engine=engine)
    return compiled, time.perf_counter() - start


def _timed_run(compiled, batch, index: int, budget: int, spec: ExperimentSpec):
    problems, keys = batch
    start = time.perf_counter()
    # NumPy scalars: a process-local jax array is not a valid input beside global ones.
    setting: Any = np.int32(budget)
    if spec.adaptive is not None:
        # The rows beyond spec.problems pad the batch to the device count: outside the pool.
        params = spec.adaptive.params(budget)._replace(rows=jnp.int32(spec.problems))
        setting = jax.tree.map(np.asarray, params)
    result = jax.block_until_ready(compiled(keys, problems, np.int32(index), setting))
    return result, time.perf_counter() - start


# --- files (summaries, tables and plots: simulations.report) -----------------------------


def fingerprint(spec: ExperimentSpec) -> dict[str, Any]:
    """The settings that define a `dora simulate` run (stored as `run.json`, see
    `simulations.runfile`): the spec's description, methods with their hyperparameters."""
    described = spec.describe()
    described["methods"] = [
        {"label": r.label, "method": r.method, **dict(r.hyperparameters)} for r in spec.rules
    ]
    return {"command": "simulate", **described}


def public_record(record: dict[str, Any]) -> dict[str, Any]:
    """The JSONL record (per-problem outcomes kept compactly as a 0/1 string)."""
    out = dict(record)
    out["per_problem_accuracy"] = "".join(map(str, np.asarray(record["per_problem_accuracy"])))
    return out


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """All records as results.jsonl, written atomically."""
    atomic_write(path, jsonl_text(public_record(r) for r in records))
