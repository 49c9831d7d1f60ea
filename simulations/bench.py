"""`dora bench`: the search on a benchmark (MATH500, AIME), on the simulator or a real model stack.

Units of work are (problem, method, N, seed). For each (method, N, seed) the problems not yet
done run as one batch (`--batch-size` caps it): a host backend (vLLM) gets one generate, one
score and (DORA) one embed call per search round for the whole batch. When a batch ends, its
per-problem records are appended to `results.jsonl` in ONE write followed by fsync (its search
trees to `trees.jsonl` first), so a kill loses at most the batch in flight. Rerunning the same
command resumes: a torn last line is dropped, finished units are skipped, and the final files
equal those of an uninterrupted run (up to wall-clock fields), because every problem's search
key depends only on (seed, problem id), never on the batch it ran in.

Backends:
- `sim`: the synthetic world (dora_jax.world); dataset problem i becomes a synthetic problem
  keyed by (seed, id), so budgets, rules, ledgers and the file formats are exercised without a
  model. Accuracies are the world's, not the dataset's.
- `toy`: a scripted model-free text backend (backends.toy: noisy solver, noisy scorer, hashed
  embeddings) through `backends.host_world`, for smoke runs in seconds; its accuracies mean
  nothing.
- `vllm` (and any `Backend` passed in): text generation through `backends.host_world`.

The folder's `run.json` stores the run's fingerprint (`fingerprint`: backend, dataset and its
content hash, problem count, methods with their hyperparameters, budgets, seeds, T_max, world
or backend settings); a rerun with other settings is refused before any work, naming the first
setting that differs (`prepare(..., fresh=True)`, the CLI's `--fresh`, moves the old run's files
into `replaced-<k>/` first). The returned records are this run's units only.

Records carry the same fields as `dora simulate` (method, budget, seed, accuracy = PRM-weighted
vote, majority_accuracy, best_of_n_accuracy, pass_at_n, rollouts, tokens, flops) per problem,
plus problem, dataset, level, backend and `resampled` (how many of the problem's samples a replay
with `--on-miss resample` reused instead of drawing: a bias risk; 0 otherwise);
with adaptive compute (`BenchSpec.adaptive`, every backend: the host backends run
`dora_jax.adaptive.search_pooled_batch`, the sim backend `search_pooled`; each batch is one pool)
also `adaptive`: the round the problem stopped in, why (`dora_jax.adaptive.REASONS`), the
posterior it read, its width per round, and the batch's pool, total and rollouts spent;
`simulations.report.summarize` pools them per
(method, N), as it pools `dora simulate`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from backends.datasets import Problem
from backends.files import JsonlError, append_jsonl, atomic_write, jsonl_text, read_jsonl
from dora_jax import adaptive as adaptive_lib
from dora_jax import ledger as ledger_lib
from dora_jax import world as world_lib
from dora_jax.search import (
    Rule,
    SearchConfig,
    SearchResult,
    SyntheticWorld,
    search,
    search_batch,
)
from simulations import runfile

TIMING_FIELDS = ("wall_s",)


class BenchError(ValueError):
    """A bad bench input (one line)."""


def _first_line(error: BaseException) -> str:
    """An exception as one line (its message's first line, or its type's name)."""
    lines = [x for x in str(error).splitlines() if x.strip()]
    return lines[0] if lines else type(error).__name__


# --- host (text) backends: what defines their samples, and the world a run builds on them ----


def backend_settings(backend: str, rec, bank: Path | None, on_miss: str) -> dict[str, object]:
    """What defines a host backend's samples, for the run's fingerprint (a bad bank: BenchError)."""
    if backend == "replay":
        from backends.bank import BankError, SampleBank

        try:
            recorded = SampleBank(bank).only_settings()[1]
        except BankError as error:
            raise BenchError(str(error)) from None
        # error and fallthrough give the same records (a fallthrough's draws are the live draws
        # the bank would hold); resample's differ, so only it enters the fingerprint.
        reuse = {"on_miss": on_miss} if on_miss == "resample" else {}
        return {"bank": str(bank), "recorded": recorded, **reuse}
    if backend == "vllm":
        return dict(rec.vllm)
    if backend == "toy":
        from backends.toy import ToyBackend

        return ToyBackend.settings()
    return {}


def recorded_as(backend: str, rec) -> dict[str, object]:
    """The settings a bank records a live text backend's samples under."""
    return {"backend": backend, **backend_settings(backend, rec, None, "error")}


def text_world(backend: str, rec, record: Path | None, bank: Path | None, on_miss: str):
    """(make_world, [the Backend behind it, once built]) for a text backend; (None, []) for sim.

    A replay with `--on-miss fallthrough` builds the live backend its bank was recorded from
    (toy; vllm from --recipe), checked against the bank's settings before any model loads.
    Mistakes (a bad bank, recipe or model stack): one-line BenchError."""
    from backends import bank as bank_lib
    from backends.host_world import HostWorld
    from backends.toy import VERSION, ToyBackend

    held: list[object] = []
    if backend == "sim":
        return None, held
    source = backend
    if backend == "replay":
        try:
            recorded = bank_lib.SampleBank(bank).only_settings()[1]
        except bank_lib.BankError as error:
            raise BenchError(str(error)) from None
        source = "toy" if recorded.get("backend") == VERSION else str(recorded.get("backend"))
        if on_miss == "fallthrough" and source not in ("toy", "vllm"):
            raise BenchError(f"--on-miss fallthrough cannot rebuild the bank's backend {source!r}")
    needs_live = backend != "replay" or on_miss == "fallthrough"
    live = None
    if needs_live:
        if source == "toy":
            live = ToyBackend.for_problems
        else:
            if on_miss == "fallthrough":
                check_fallthrough(recorded, recorded_as("vllm", rec), bank)
            live = vllm_backend(rec)

    def build(problems):
        if backend == "replay":
            store = bank_lib.SampleBank(bank)
            try:
                model = bank_lib.ReplayBackend(
                    store,
                    on_miss=on_miss,
                    live=None if live is None else live(problems),
                    live_settings=recorded_as(source, rec),
                )
            except bank_lib.BankError as error:
                raise BenchError(str(error)) from None
        else:
            assert live is not None
            model = live(problems)
            if record is not None:
                store = bank_lib.SampleBank(record)
                model = bank_lib.RecordingBackend(model, store, recorded_as(backend, rec))
        held.append(model)
        return HostWorld(model, problems)

    return build, held


def check_fallthrough(recorded: dict, mine: dict, bank: Path | None) -> None:
    """One line, before a model loads, when the recipe's [vllm] is not what the bank recorded."""
    theirs = {k: v for k, v in recorded.items() if k != "embed_dim"}
    mine = json.loads(json.dumps(mine, sort_keys=True))
    if mine != theirs:
        key = runfile.first_difference(theirs, mine)
        raise BenchError(
            f"--on-miss fallthrough: the recipe's {key} is {mine.get(key)!r}, the bank {bank} "
            f"recorded {theirs.get(key)!r}"
        )


def vllm_backend(rec):
    """A factory of the VLLMBackend built (once, now) from the recipe's [vllm] table."""
    from simulations import recipe as recipe_lib

    if not rec.vllm.get("policy"):
        raise BenchError(
            "--backend vllm needs a recipe with a [vllm] table naming at least the policy"
        )
    try:
        recipe_lib.check_model_paths(rec.vllm)
    except recipe_lib.RecipeError as error:
        raise BenchError(str(error)) from None
    try:
        from backends.vllm_backend import VLLMBackend, VLLMSettings
    except ImportError as error:
        raise BenchError(
            f"the vllm backend cannot be imported ({error}); see the README's vLLM section"
        ) from None
    try:
        settings = VLLMSettings(**rec.vllm)
    except (TypeError, ValueError) as error:
        raise BenchError(f"[vllm] in {rec.path}: {_first_line(error)}") from None
    try:
        backend = VLLMBackend(settings)
    except ImportError as error:
        raise BenchError(
            f"vLLM is not installed here ({error}); see the README's vLLM section"
        ) from None
    except Exception as error:  # model loading: report one line, whatever vLLM raised
        raise BenchError(f"cannot start the vLLM backend: {_first_line(error)}") from None
    return lambda problems: backend


@dataclasses.dataclass(frozen=True)
class BenchSpec:
    """What to run. `problems` are the dataset's (already loaded and limited)."""

    problems: tuple[Problem, ...]
    rules: tuple[Rule, ...]
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    backend: str = "sim"
    world: world_lib.WorldConfig = dataclasses.field(default_factory=world_lib.WorldConfig)
    max_rounds: int = 40
    batch_size: int | None = None
    model_sizes: ledger_lib.ModelSizes = dataclasses.field(default_factory=ledger_lib.ModelSizes)
    # What else defines a host backend's samples (model paths, sampling settings, toy knobs): it
    # enters the run's fingerprint only.
    backend_settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Adaptive compute (every backend): each batch is one pool (of P·N slots per round, or a
    # total of P·R rollouts), so records depend on the batch size, which then enters the
    # fingerprint.
    adaptive: adaptive_lib.Adaptive | None = None

    def __post_init__(self):
        if not self.problems:
            raise BenchError("no problems to run")
        if not self.rules:
            raise BenchError("no methods given")
        if not self.budgets or any(
            not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in self.budgets
        ):
            raise BenchError(f"budgets must be integers >= 1, got {list(self.budgets)}")
        if not self.seeds or any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise BenchError(f"seeds must be integers >= 0, got {list(self.seeds)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise BenchError(f"batch size must be >= 1, got {self.batch_size}")
        for budget in self.budgets:
            try:
                SearchConfig(budget, self.rules, self.max_rounds)
            except ValueError as error:
                raise BenchError(str(error)) from None
        ids = [p.id for p in self.problems]
        if len(set(ids)) != len(ids):
            raise BenchError("problem ids repeat")
        if self.adaptive is not None:
            for budget in self.budgets:
                try:
                    self.adaptive.check_budget(budget)
                except adaptive_lib.AdaptiveError as error:
                    raise BenchError(str(error)) from None

    def units(self) -> list[tuple[str, int, int]]:
        """(method label, budget, seed) groups in run order."""
        return [(r.label, n, s) for n in self.budgets for s in self.seeds for r in self.rules]


def dataset_hash(problems: Sequence[Problem]) -> str:
    """SHA-256 of the problems' content (ids, statements, answers, in order)."""
    digest = hashlib.sha256()
    for p in problems:
        digest.update(json.dumps([p.id, p.problem, p.answer]).encode())
    return digest.hexdigest()


def fingerprint(spec: BenchSpec) -> dict[str, Any]:
    """The settings that define a bench run (what `run.json` stores), in the order a mismatch is
    reported. `problems` is the count after `--limit`; the content hash covers which ones.
    The batch size is left out: records do not depend on it."""
    return runfile.normalized(
        {
            "backend": spec.backend,
            "dataset": spec.problems[0].dataset,
            "problems": len(spec.problems),
            "dataset_sha256": dataset_hash(spec.problems),
            "methods": [
                {"label": r.label, "method": r.method, **dict(r.hyperparameters)}
                for r in spec.rules
            ],
            "budgets": list(spec.budgets),
            "seeds": list(spec.seeds),
            "max_rounds": spec.max_rounds,
            "world": world_lib.describe(spec.world) if spec.backend == "sim" else None,
            "backend_settings": spec.backend_settings,
            "model_sizes": dataclasses.asdict(spec.model_sizes),
            **(
                {"adaptive": spec.adaptive.describe(), "batch_size": spec.batch_size}
                if spec.adaptive is not None
                else {}
            ),
        }
    )


def check(spec: BenchSpec, out: Path) -> None:
    """Raises BenchError (one line naming the first differing setting) when `out` holds a run
    with other settings; changes nothing (`prepare` stores the fingerprint)."""
    try:
        runfile.check(out, fingerprint(spec), has_results=(out / "results.jsonl").exists())
    except runfile.RunFileError as error:
        raise BenchError(str(error)) from None


def prepare(spec: BenchSpec, out: Path, *, fresh: bool = False) -> tuple[int, Path | None]:
    """Checks `out` against the spec's fingerprint and stores it; returns (units already done,
    the folder an old run was moved to by `fresh`, else None).

    Raises:
        BenchError: `out` holds a run with other settings (one line naming the first one that
            differs), unless `fresh`, which moves that run's files aside first.
    """
    moved = runfile.replace(out) if fresh else None
    results = out / "results.jsonl"
    check(spec, out)
    runfile.write(out, fingerprint(spec))
    units = {(p.id, *u) for u in spec.units() for p in spec.problems}
    done = {unit_key(r) for r in _read(results)} & units
    return len(done), moved


def problem_key(seed: int, problem_id: str) -> jax.Array:
    """The search key of one problem under one seed (independent of batches and methods)."""
    digest = hashlib.sha256(f"{seed}/{problem_id}".encode()).digest()
    return jax.random.key(int.from_bytes(digest[:4], "little") >> 1)


# --- files -----------------------------------------------------------------------------------


def _read(path: Path) -> list[dict[str, Any]]:
    """The complete records of a results or trees file (a torn last line is cut off)."""
    try:
        return read_jsonl(path)
    except JsonlError as error:
        raise BenchError(str(error)) from None


def unit_key(record: dict[str, Any]) -> tuple[str, str, int, int]:
    return (record["problem"], record["method"], record["budget"], record["seed"])


# --- running ---------------------------------------------------------------------------------


def _records(
    spec: BenchSpec,
    result: SearchResult,
    batch: Sequence[Problem],
    method,
    budget,
    seed,
    wall,
    resampled: Sequence[int],
    pool: adaptive_lib.PoolRecord | None = None,
):
    led = jax.tree.map(lambda x: np.asarray(x, np.float64), result.ledger)
    flops = ledger_lib.flops(led, spec.model_sizes)
    out = []
    for i, p in enumerate(batch):
        out.append(
            {
                "problem": p.id,
                "dataset": p.dataset,
                "level": p.level,
                "method": method,
                "budget": budget,
                "seed": seed,
                "backend": spec.backend,
                "accuracy": int(result.accuracy[i]),
                "majority_accuracy": int(result.majority[i]),
                "best_of_n_accuracy": int(result.best_of_n[i]),
                "pass_at_n": int(result.pass_at_n[i]),
                "correct_fraction": float(result.correct_fraction[i]),
                "rollouts": int(led.rollouts[i]),
                "rounds": int(result.rounds[i]),
                "finished": int(result.num_finished[i]),
                "tokens": {
                    "policy": int(led.policy_tokens[i]),
                    "prm": int(led.prm_tokens[i]),
                    "prm_cached": int(led.prm_tokens_cached[i]),
                    "embedding": int(led.embed_tokens[i]),
                },
                "flops": {k: float(v[i]) for k, v in flops.items()},
                "allocations": np.asarray(result.trace.allocation[i])[: int(result.rounds[i])]
                .astype(int)
                .tolist(),
                "resampled": int(resampled[i]),
                **({} if pool is None else {"adaptive": _stopped(pool, i)}),
                "wall_s": wall / len(batch),
            }
        )
    return out


def _stopped(pool: adaptive_lib.PoolRecord, i: int) -> dict[str, Any]:
    """When and why problem i of an adaptive batch stopped, and how wide it ran."""
    stop = int(pool.stop_round[i])
    return {
        "stop_round": stop,
        "reason": adaptive_lib.REASONS[int(pool.reason[i])],
        "posterior": float(pool.posterior[i]),
        "widths": np.asarray(pool.width[i])[: stop + 1].astype(int).tolist(),
        "batch_pool": int(pool.pool),
        "batch_total": int(pool.total),
        "batch_spent": int(np.asarray(pool.pool_used).sum()),
    }


@functools.lru_cache(maxsize=16)
def _sim_search(world: world_lib.WorldConfig, budget: int, rules, max_rounds: int):
    """One compiled search per (world, N, rules): the rule index is a runtime argument."""
    synthetic = SyntheticWorld(world)
    config = SearchConfig(budget, rules, max_rounds)
    return jax.jit(
        jax.vmap(lambda k, pr, i: search(k, pr, synthetic, config, rule=i), in_axes=(0, 0, None))
    ), synthetic


@functools.lru_cache(maxsize=16)
def _sim_pooled(world: world_lib.WorldConfig, slots: int, rules, max_rounds: int):
    """The adaptive search (`dora_jax.adaptive.search_pooled`) with `slots` slots per problem."""
    synthetic = SyntheticWorld(world)
    config = SearchConfig(slots, rules, max_rounds)
    return jax.jit(
        lambda k, pr, i, params: adaptive_lib.search_pooled(
            k, pr, synthetic, config, params, rule=i
        )
    ), synthetic


def _run_sim(spec: BenchSpec, rule_index: int, budget: int, seed: int, batch, size: int):
    if spec.adaptive is not None:
        # No padding: a padded row would take a share of the pool.
        fn, world = _sim_pooled(
            spec.world, spec.adaptive.slots(budget), spec.rules, spec.max_rounds
        )
        keys = jnp.stack([problem_key(seed, p.id) for p in batch])
        problems = jax.vmap(world.sample_problem)(jnp.stack([problem_key(-1, p.id) for p in batch]))
        found = fn(keys, problems, jnp.int32(rule_index), spec.adaptive.params(budget))
        result, pool = jax.tree.map(np.asarray, jax.block_until_ready(found))
        return result, None, pool
    fn, world = _sim_search(spec.world, budget, spec.rules, spec.max_rounds)
    # Pad to the batch size (repeating the last problem) so every batch has one shape.
    padded = list(batch) + [batch[-1]] * (size - len(batch))
    keys = jnp.stack([problem_key(seed, p.id) for p in padded])
    # The synthetic problem depends on the problem id only: seeds vary the search, as on a model.
    problems = jax.vmap(world.sample_problem)(jnp.stack([problem_key(-1, p.id) for p in padded]))
    result = jax.block_until_ready(fn(keys, problems, jnp.int32(rule_index)))
    return jax.tree.map(lambda x: np.asarray(x)[: len(batch)], result), None, None


def _run_host(spec: BenchSpec, rule_index: int, budget: int, seed: int, batch, world):
    world.reset()
    keys = jnp.stack([problem_key(seed, p.id) for p in batch])
    index = {p.id: i for i, p in enumerate(spec.problems)}
    ids = jnp.asarray([index[p.id] for p in batch], jnp.int32)
    pool = None
    if spec.adaptive is not None:
        # The batch is one pool (no padding here: every row is a real problem).
        config = SearchConfig(spec.adaptive.slots(budget), spec.rules, spec.max_rounds)
        params = spec.adaptive.params(budget)
        result, pool = adaptive_lib.search_pooled_batch(
            keys, ids, world, config, params, rule=rule_index
        )
        pool = jax.tree.map(np.asarray, pool)
    else:
        config = SearchConfig(budget, spec.rules, spec.max_rounds)
        result = search_batch(keys, ids, world, config, rule=rule_index)
    trees = [world.tree(index[p.id]) for p in batch]
    world.reset()
    return result, trees, pool


def toy_world(problems: list[Problem]) -> Any:
    """A HostWorld over the scripted model-free toy backend (backends.toy): `--backend toy`."""
    from backends.host_world import HostWorld
    from backends.toy import ToyBackend

    return HostWorld(ToyBackend.for_problems(problems), problems)


def run(
    spec: BenchSpec,
    out: Path,
    *,
    make_world: Callable[[list[Problem]], Any] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Runs (or resumes) the bench into `out`; returns every record (old and new) in unit order.

    `make_world(problems)` builds a `backends.host_world.HostWorld` over all the spec's problems
    (host backends; called once); without it the synthetic world runs, or for
    `spec.backend == "toy"` the toy world (`toy_world`). `progress(label,
    problems_done)` is called after each batch.
    Refuses (BenchError) when `out` holds a run with other settings (see `prepare`).
    """
    prepare(spec, out)
    results_path, trees_path = out / "results.jsonl", out / "trees.jsonl"
    done = {unit_key(r): r for r in _read(results_path)}
    # Trees written for a batch whose results never landed are dropped (the batch reruns).
    trees = [t for t in _read(trees_path) if unit_key(t) in done]
    if trees_path.exists():
        atomic_write(trees_path, jsonl_text(trees))
    labels = [r.label for r in spec.rules]
    if make_world is None and spec.backend == "toy":
        make_world = toy_world
    world = None if make_world is None else make_world(list(spec.problems))
    size = spec.batch_size or len(spec.problems)
    for method, budget, seed in spec.units():
        todo = [p for p in spec.problems if (p.id, method, budget, seed) not in done]
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            t0 = time.perf_counter()
            index = labels.index(method)
            if make_world is None:
                result, tree, pool = _run_sim(spec, index, budget, seed, batch, size)
            else:
                result, tree, pool = _run_host(spec, index, budget, seed, batch, world)
            result = jax.tree.map(np.asarray, result)
            # Nodes whose sample a replay reused (--on-miss resample): a bias risk, per problem.
            reused = (
                [0] * len(batch) if tree is None else [sum(n["resampled"] for n in t) for t in tree]
            )
            wall = time.perf_counter() - t0
            records = _records(spec, result, batch, method, budget, seed, wall, reused, pool)
            if tree is not None:
                append_jsonl(
                    trees_path,
                    [
                        {
                            **dict(
                                zip(
                                    ("problem", "method", "budget", "seed"),
                                    unit_key(r),
                                    strict=True,
                                )
                            ),
                            "nodes": nodes,
                        }
                        for r, nodes in zip(records, tree, strict=True)
                    ],
                )
            append_jsonl(results_path, records)
            for r in records:
                done[unit_key(r)] = r
            if progress:
                progress(f"{method} N={budget} seed={seed}", len(batch))
    order = {u: i for i, u in enumerate(spec.units())}
    ids = {p.id: i for i, p in enumerate(spec.problems)}
    # Only this run's units, whatever else the file holds.
    return sorted(
        (
            r
            for r in done.values()
            if (r["method"], r["budget"], r["seed"]) in order and r["problem"] in ids
        ),
        key=lambda r: (order[(r["method"], r["budget"], r["seed"])], ids[r["problem"]]),
    )


# --- records in other shapes (summaries, tables and plots: simulations.report) ---------------

METRICS = ("accuracy", "majority_accuracy", "best_of_n_accuracy", "pass_at_n")


def strip_timing(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in TIMING_FIELDS}


def seed_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, N, seed) means over problems — the schema of `dora simulate`'s records."""
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["method"], r["budget"], r["seed"]), []).append(r)
    out = []
    for (method, budget, seed), rs in groups.items():
        row: dict[str, Any] = {"method": method, "budget": budget, "seed": seed}
        for metric in (*METRICS, "correct_fraction", "rollouts", "rounds"):
            row[metric] = float(np.mean([r[metric] for r in rs]))
        for table in ("tokens", "flops"):
            row[table] = {k: float(np.mean([r[table][k] for r in rs])) for k in rs[0][table]}
        row["problems"] = len(rs)
        row["per_problem_accuracy"] = "".join(str(int(r["accuracy"])) for r in rs)
        row["backend"] = rs[0]["backend"]
        row["dataset"] = rs[0]["dataset"]
        out.append(row)
    return out
