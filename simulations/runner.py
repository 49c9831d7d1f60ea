"""The Monte Carlo runner behind `dora simulate`: methods × budgets × seeds on a synthetic world.

Pairing: for a seed s, the P problems and the search keys are the same for every method and every
budget, so method differences are paired (their variance excludes the problem-to-problem spread).
The batch of problems is sharded over all visible devices (`jax.sharding`). Across processes
(`jax.distributed`, one per host), the mesh spans every process's devices: each process builds the
rows its own devices hold (problems come from (seed, index) alone, so every process derives the
same batch), all run the same compiled search on the global batch, and the per-problem results are
gathered to every process, so the records equal a single process's.

Compilation: one compiled, vmapped search serves every method (the rule index is a runtime
argument) and every budget of one slot count (`slots_for`: a budget runs in the smallest of
SHARED_SLOTS that holds it, with the extra slots dead and the budget a runtime argument), because
compiling a search costs more CPU (~10 s) than running the smaller budgets on more slots. Compiles
and runs share WORKERS threads (XLA releases the GIL), the largest search first, so that the cores
stay busy.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from backends.files import atomic_write, jsonl_text
from dora_jax import adaptive as adaptive_lib
from dora_jax import ledger as ledger_lib
from dora_jax.search import SearchConfig, SyntheticWorld, search
from simulations.spec import ExperimentSpec

# The slot counts of the shared compiled searches (the paper's budgets 16–64 share 64 slots and
# 128–256 share 256). A budget's slot count depends on the budget alone, so a record never depends
# on which other budgets a spec lists. (Records equal a search compiled for the budget itself,
# except where DORA's sums over the slots, rounded differently at another slot count, flip a float
# near-tie: the same law.)
SHARED_SLOTS = (64, 256)
WORKERS = 2  # threads for compiles and runs (the 2-core machine this is tuned on)


def _mesh() -> Mesh:
    return Mesh(np.asarray(jax.devices()), ("problems",))


def _shard(tree: Any, mesh: Mesh) -> Any:
    """`tree` (every leaf [P, ...], the same in every process) sharded over the mesh's problems.

    Across processes each process places only the rows of its own devices: a global array is
    assembled from per-device pieces, never sent from one process to another.
    """
    sharding = NamedSharding(mesh, PartitionSpec("problems"))
    if jax.process_count() == 1:
        return jax.tree.map(lambda x: jax.device_put(x, sharding), tree)
    return jax.tree.map(
        lambda x: jax.make_array_from_callback(x.shape, sharding, x.__getitem__), tree
    )


def gather(tree: Any) -> Any:
    """A global result as host arrays of the whole batch, in every process (a collective: every
    process calls it, in the same order)."""
    if jax.process_count() == 1:
        return tree
    return multihost_utils.process_allgather(tree, tiled=True)


def padded_count(problems: int, devices: int) -> int:
    return -(-problems // devices) * devices


def global_batch(spec: ExperimentSpec, seed: int, problems: int):
    """One seed's batch of `problems` problems, padded to a multiple of the global device count
    and sharded over every device (every process's, under `jax.distributed`); run a search on it
    and `gather` the result."""
    mesh = _mesh()
    return _shard(make_batch(spec, seed, padded_count(problems, mesh.size)), mesh)


def make_batch(spec: ExperimentSpec, seed: int, count: int):
    """Problems and search keys for one seed (identical for every method and budget)."""
    return _batch(SyntheticWorld(spec.world), seed, count)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _batch(world: SyntheticWorld, seed: int, count: int):
    k_problems, k_search = jax.random.split(jax.random.key(seed))
    problems = jax.vmap(world.sample_problem)(jax.random.split(k_problems, count))
    return problems, jax.random.split(k_search, count)


def slots_for(budget: int) -> int:
    """The slot count of the compiled search that runs `budget`."""
    return next((slots for slots in SHARED_SLOTS if budget <= slots), budget)


def compile_search(spec: ExperimentSpec, slots: int, batch):
    """The vmapped search with `slots` slots: (keys, problems, rule index, budget ≤ slots).

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
        return pooled.lower(keys, problems, jnp.int32(0), params).compile()

    def one(key, problem, rule, budget):
        return search(key, problem, world, config, rule=rule, budget=budget)

    fn = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))
    problems, keys = batch
    return fn.lower(keys, problems, jnp.int32(0), jnp.int32(slots)).compile()


def summarize(result, spec: ExperimentSpec, problems: int) -> dict[str, Any]:
    """Means over the first `problems` rows of a batched SearchResult (padding dropped)."""

    def rows(x):
        return np.asarray(x)[:problems]

    out: dict[str, Any] = {}
    for name, field in (
        ("accuracy", "accuracy"),
        ("majority_accuracy", "majority"),
        ("best_of_n_accuracy", "best_of_n"),
        ("pass_at_n", "pass_at_n"),
        ("correct_fraction", "correct_fraction"),
    ):
        values = rows(getattr(result, field)).astype(np.float64)
        out[name] = float(values.mean())
        out[f"{name}_se"] = float(values.std(ddof=1) / math.sqrt(problems)) if problems > 1 else 0.0
    led = jax.tree.map(rows, result.ledger)
    out["rollouts"] = float(led.rollouts.mean())
    out["rounds"] = float(rows(result.rounds).mean())
    out["tokens"] = {
        "policy": float(led.policy_tokens.mean()),
        "prm": float(led.prm_tokens.mean()),
        "prm_cached": float(led.prm_tokens_cached.mean()),
        "embedding": float(led.embed_tokens.mean()),
    }
    flops = ledger_lib.flops(
        ledger_lib.Ledger(*(np.asarray(x, np.float64) for x in led)), spec.model_sizes
    )
    out["flops"] = {name: float(np.mean(value)) for name, value in flops.items()}
    out["per_problem_accuracy"] = rows(result.accuracy).astype(np.int8)
    return out


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
) -> list[dict[str, Any]]:
    """Runs the whole grid; returns one record per (method, budget, seed), in that nesting
    (budgets outermost, in the spec's order). `on_record` and `progress` are called from the
    calling thread as runs finish (in completion order)."""
    batches = {seed: global_batch(spec, seed, spec.problems) for seed in range(spec.seeds)}
    versions = {
        "jax": jax.__version__,
        "devices": jax.device_count(),
        "processes": jax.process_count(),
        "platform": jax.devices()[0].platform,
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
            sorted(budgets_of[slots], reverse=True), range(spec.seeds), enumerate(spec.rules)
        )

    if jax.process_count() > 1:
        # Every process must issue the same collectives (the gathers) in the same order, so the
        # grid runs in one fixed order, without the thread pool's completion order.
        for slots in sorted(budgets_of, reverse=True):
            compiled, compile_s = _timed_compile(spec, slots, batches[0])
            for budget, seed, (index, rule) in jobs(slots):
                result, wall_s = _timed_run(compiled, batches[seed], index, budget, spec)
                finish(budget, seed, index, rule, compile_s, gather(result), wall_s)
        return [records[k] for k in sorted(records)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        # The largest search first: its compile and its runs are the longest jobs.
        compiling = {
            pool.submit(_timed_compile, spec, slots, batches[0]): slots
            for slots in sorted(budgets_of, reverse=True)
        }
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


def _timed_compile(spec: ExperimentSpec, slots: int, batch):
    start = time.perf_counter()
    compiled = compile_search(spec, slots, batch)
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
