"""Paired Monte Carlo batches of compiled searches on a pure world: arrays in, arrays out.

The machinery shared by `dora simulate`'s runner (`simulations.runner`) and the simulated theory
claims (`theory.simulated`, `theory.adaptive_claims`); it reads no spec file and writes nothing.

Pairing: for a seed s, the P problems and the search keys come from (s, index) alone, so every
method and every budget runs on the same problems with the same keys (method differences are
paired). A batch is sharded over all visible devices along the mesh axis "problems"; across
processes (`jax.distributed`, one per host) the mesh spans every process's devices, each process
places only its own devices' rows (every process derives the same batch), and `gather` brings the
per-problem results to every process, so a multi-process run equals a single process's.

Compilation: one compiled search serves every rule (the rule index is a runtime argument) and
every budget of one slot count (`slots_for`: a budget runs in the smallest of SHARED_SLOTS that
holds it, the extra slots dead and the budget a runtime argument), because compiling a search
costs more CPU (~10 s) than running the smaller budgets on more slots.

Engines: `compile_pool` runs `dora_jax.search.search_pool` on each device's own rows
(`jax.shard_map` over "problems": the pool's gathers and scatters stay on the device) with less
work than `jax.vmap(search)` (`compile_vmap`, the reference): a vmapped while loop runs every
problem for as many rounds as the slowest one, the pool refills a lane as soon as its problem
stops. A problem's search reads only its own key, problem and budget, so both run the same
searches, and give the same bits wherever XLA compiles the per-problem float work alike at the
two batch widths (the tests' specs). It need not: on CPU, DORA's uniqueness (Eq. 11: norms, exp,
sums over the slots) can differ in the last bit between a batch of 200 rows and one of 25 or 1,
and a near-tie in the apportionment then flips. `dora simulate`'s default (paper-like, P = 200,
seed 0) has one such problem: DORA at N = 16 and 32 moves one rollout, and the records' token
and FLOPs means move in the 5th digit (accuracies unchanged). vmap(search) itself does the same
between batch widths (200 rows on one device against 25 per device on eight), so the runner's
records were never independent of the batch width beyond this law-preserving last bit.

The adaptive frontier (`Point`, `frontier_batch`, `frontier_search`, `run_point`): fixed-N and
adaptive searches (`dora_jax.adaptive.search_pooled`) of DORA and REBASE, paired, in a preset
world or in "levels", the paper-like world with problems drawn in MATH500's five levels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PRNGKeyArray

from dora_jax import ledger as ledger_lib
from dora_jax import world as world_lib
from dora_jax.adaptive import Adaptive, search_pooled
from dora_jax.search import Rule, SearchConfig, SearchResult, SyntheticWorld, search, search_pool

__all__ = [
    "AXIS",
    "FRONTIER_METHODS",
    "FRONTIER_WORLDS",
    "LANE_FRACTION",
    "PAPER_METHODS",
    "SHARED_SLOTS",
    "Point",
    "abstract_batch",
    "compile_pool",
    "compile_vmap",
    "default_lanes",
    "frontier_batch",
    "frontier_search",
    "gather",
    "global_batch",
    "level_problems",
    "lower_and_compile",
    "make_batch",
    "mesh",
    "padded_count",
    "run_point",
    "shard",
    "slots_for",
    "summarize",
]

PAPER_METHODS = ("temperature_sampling", "beam_search", "dvts", "rebase", "dora")
AXIS = "problems"  # the mesh axis a batch is sharded along
# The slot counts of the shared compiled searches (the paper's budgets 16–64 share 64 slots and
# 128–256 share 256). A budget's slot count depends on the budget alone, so a result never
# depends on which other budgets a run lists. (Results equal a search compiled for the budget
# itself, except where DORA's sums over the slots, rounded differently at another slot count, flip
# a float near-tie: the same law.)
SHARED_SLOTS = (64, 256)
# The pool's lanes are a device's rows / LANE_FRACTION: the drain at the end (lanes idle once the
# queue is empty) then costs about 1/16 of the work, and the rounds stay wide enough to vectorize.
LANE_FRACTION = 8


def mesh() -> Mesh:
    """Every visible device (every process's under `jax.distributed`) on the axis "problems"."""
    return Mesh(np.asarray(jax.devices()), (AXIS,))


def shard(tree: Any, on: Mesh) -> Any:
    """`tree` (every leaf [P, ...], the same in every process) sharded over `on`'s problems.

    Across processes each process places only the rows of its own devices: a global array is
    assembled from per-device pieces, never sent from one process to another.
    """
    sharding = NamedSharding(on, PartitionSpec(AXIS))
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
    """P rounded up to a multiple of the device count (the padding rows are real problems whose
    results are dropped)."""
    return -(-problems // devices) * devices


@functools.partial(jax.jit, static_argnums=(0, 2))
def make_batch(world: Any, seed: int, count: int) -> tuple[Any, PRNGKeyArray]:
    """(problems [count, ...], search keys [count]) of one seed: the same for every method and
    budget."""
    k_problems, k_search = jax.random.split(jax.random.key(seed))
    problems = jax.vmap(world.sample_problem)(jax.random.split(k_problems, count))
    return problems, jax.random.split(k_search, count)


def global_batch(world: Any, seed: int, problems: int) -> tuple[Any, PRNGKeyArray]:
    """One seed's batch of `problems` problems of `world` (hashable, with `sample_problem`),
    padded to a multiple of the global device count and sharded over every device (every
    process's, under `jax.distributed`); run a search on it and `gather` the result."""
    on = mesh()
    return shard(make_batch(world, seed, padded_count(problems, on.size)), on)


def abstract_batch(world: Any, seed: int, problems: int) -> tuple[Any, Any]:
    """`global_batch`'s shapes, dtypes and sharding (jax.ShapeDtypeStruct leaves), without
    drawing it: a search compiled for it runs on the drawn batch, so compiles need not wait."""
    on = mesh()
    sharding = NamedSharding(on, PartitionSpec(AXIS))
    count = padded_count(problems, on.size)
    shapes = jax.eval_shape(lambda: make_batch(world, seed, count))
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def slots_for(budget: int) -> int:
    """The slot count of the compiled search that runs `budget`."""
    return next((slots for slots in SHARED_SLOTS if budget <= slots), budget)


def default_lanes(rows: int) -> int:
    """The pool's lanes for a device's `rows` problems (LANE_FRACTION)."""
    return max(1, math.ceil(rows / LANE_FRACTION))


def lower_and_compile(fn: Any, args: tuple, lowering: Any = None) -> Any:
    """`fn.lower(*args).compile()`, holding the lock `lowering` (if any) while it lowers: lowering
    (tracing to StableHLO) is Python and holds the GIL; XLA's compile does not."""
    with contextlib.nullcontext() if lowering is None else lowering:
        lowered = fn.lower(*args)
    return lowered.compile()


def compile_vmap(
    world: Any, config: SearchConfig, batch: tuple[Any, PRNGKeyArray], *, lowering: Any = None
):
    """`jax.vmap(search)` compiled for `batch`'s shapes and sharding: (keys [P], problems [P],
    rule index, budget ≤ config.budget) -> SearchResult [P]. `lowering`: a lock held while it
    lowers (Python, under the GIL), so that threads compiling at once lower one at a time and
    each compiles (without the GIL) while the next lowers (as `compile_pool`)."""

    def one(key, problem, rule, budget):
        return search(key, problem, world, config, rule=rule, budget=budget)

    problems, keys = batch
    fn = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))
    args = (keys, problems, jnp.int32(0), jnp.int32(config.budget))
    return lower_and_compile(fn, args, lowering)


def compile_pool(
    world: Any,
    config: SearchConfig,
    batch: tuple[Any, PRNGKeyArray],
    *,
    lanes: int | None = None,
    on: Mesh | None = None,
    lowering: Any = None,
):
    """`search_pool` on each device's own rows, compiled for `batch` (sharded over `on`, by
    default `mesh()`): the same signature and, bit for bit, the same SearchResult [P] as
    `compile_vmap`.

    Args:
      world: a pure `World` (static).
      config: the slots, rules and T_max (static).
      batch: (problems [P, ...], keys [P]), P a multiple of the device count.
      lanes: the problems in flight per device (default: `default_lanes` of its rows).
      on: the mesh the batch is sharded over.
      lowering: a lock held while it lowers (as `compile_vmap`'s).
    """
    on = mesh() if on is None else on
    problems, keys = batch
    rows = keys.shape[0] // on.size
    width = default_lanes(rows) if lanes is None else lanes
    rows_spec, replicated = PartitionSpec(AXIS), PartitionSpec()

    def local(k, p, rule, budget) -> SearchResult:
        # A problem's search reads only its own key, problem and budget: each device's pool
        # gives its rows' results whatever the other devices hold.
        return search_pool(k, p, world, config, lanes=width, rule=rule, budget=budget).result

    fn = jax.jit(
        jax.shard_map(
            local,
            mesh=on,
            in_specs=(rows_spec, rows_spec, replicated, replicated),
            out_specs=rows_spec,
            # The engine's loop carries start device-invariant (constants) and turn per-device:
            # the per-device search is independent of the others, so no replication to check.
            check_vma=False,
        )
    )
    args = (keys, problems, jnp.int32(0), jnp.int32(config.budget))
    return lower_and_compile(fn, args, lowering)


def summarize(
    result: SearchResult, model_sizes: ledger_lib.ModelSizes, problems: int
) -> dict[str, Any]:
    """Means (and SEs) over the first `problems` rows of a batched SearchResult (the padding
    dropped): the votes, rollouts, rounds, tokens and FLOPs per model, and the per-problem
    weighted-vote outcomes."""

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
    flops = ledger_lib.flops(jax.tree.map(lambda x: np.asarray(x, np.float64), led), model_sizes)
    out["flops"] = {name: float(np.mean(value)) for name, value in flops.items()}
    out["per_problem_accuracy"] = rows(result.accuracy).astype(np.int8)
    return out


# --- the adaptive frontier: fixed-N and adaptive points, paired ----------------------------

LEVEL_SIZES = (43, 90, 105, 128, 134)  # MATH500's levels 1..5 (§4.1)
LEVEL_MEANS = (0.75, 0.55, 0.40, 0.25, 0.10)  # assumed mean p(root) per level
LEVEL_CONCENTRATION = 4.0  # a + b of each level's Beta prior
FRONTIER_METHODS = ("dora", "rebase")
FRONTIER_WORLDS = {"levels": "paper-like", "redundant": "redundant", "noisy-prm": "noisy-prm"}


@dataclasses.dataclass(frozen=True)
class Point:
    """One search setting: a rule at budget N, fixed (adaptive=None) or adaptive."""

    method: str
    budget: int
    adaptive: Adaptive | None = None

    @property
    def label(self) -> str:
        if self.adaptive is None:
            return f"{self.method} fixed N={self.budget}"
        a = self.adaptive
        stop = f"θ={a.threshold}" if a.threshold is not None else f"c={a.price}"
        total = "" if a.total is None else f" total={a.total}" + ("" if a.finish else " no-EOS")
        return f"{self.method} adaptive N={self.budget} {stop} cap={a.cap}{total}"


def level_problems(config: world_lib.WorldConfig, key: PRNGKeyArray, count: int):
    """`count` problems in MATH500's level proportions (easiest first) and their levels [P]."""
    sizes = np.floor(np.asarray(LEVEL_SIZES) / sum(LEVEL_SIZES) * count).astype(int)
    sizes[
        np.argsort(-(np.asarray(LEVEL_SIZES) / sum(LEVEL_SIZES) * count - sizes))[
            : count - sizes.sum()
        ]
    ] += 1
    parts, levels = [], []
    for level, (size, mean) in enumerate(zip(sizes, LEVEL_MEANS, strict=True), start=1):
        c = dataclasses.replace(
            config,
            difficulty_a=mean * LEVEL_CONCENTRATION,
            difficulty_b=(1 - mean) * LEVEL_CONCENTRATION,
        )
        keys = jax.random.split(jax.random.fold_in(key, level), int(size))
        parts.append(jax.vmap(lambda k, c=c: world_lib.sample_problem(k, c))(keys))
        levels += [level] * int(size)
    problems = jax.tree.map(lambda *x: jnp.concatenate(x), *parts)
    return problems, np.asarray(levels)


def frontier_batch(world_name: str, seed: int, count: int):
    """(config, problems, search keys, levels or None) for one frontier world and seed."""
    config = world_lib.preset(FRONTIER_WORLDS.get(world_name, world_name))
    k_problems, k_search = jax.random.split(jax.random.key(seed))
    if world_name == "levels":
        problems, levels = level_problems(config, k_problems, count)
    else:
        problems = jax.vmap(lambda k: world_lib.sample_problem(k, config))(
            jax.random.split(k_problems, count)
        )
        levels = None
    return config, problems, jax.random.split(k_search, count), levels


@functools.cache
def frontier_search(config: world_lib.WorldConfig, slots: int, max_rounds: int):
    """The jitted pooled search of the frontier's rules: (keys, problems, rule index, params)."""
    world = SyntheticWorld(config)
    search_config = SearchConfig(slots, tuple(Rule.make(m) for m in FRONTIER_METHODS), max_rounds)
    return jax.jit(
        lambda k, p, r, params: search_pooled(k, p, world, search_config, params, rule=r)
    )


def run_point(fn, problems, keys, point: Point, *, control: bool = False) -> dict[str, Any]:
    """Per-problem accuracy and FLOPs of one point (and what the stops did)."""
    adaptive = point.adaptive or Adaptive()
    params = adaptive.params(point.budget, control=control)
    result, record = fn(keys, problems, jnp.int32(FRONTIER_METHODS.index(point.method)), params)
    result, record = jax.tree.map(np.asarray, jax.block_until_ready((result, record)))
    led = jax.tree.map(lambda x: np.asarray(x, np.float64), result.ledger)
    return {
        "accuracy": result.accuracy.astype(np.float64),
        "flops": np.asarray(ledger_lib.flops(led)["total"], np.float64),
        "rollouts": led.rollouts,
        "reason": record.reason,
        "stop_round": record.stop_round,
        "max_width": record.width.max(axis=1),
    }
