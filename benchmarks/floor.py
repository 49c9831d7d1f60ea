"""Benchmark: the search engine against its random-number floor and a vectorized NumPy search.

For each rule and each (P problems, N rollouts), in one interleaved run (engine, floor, NumPy,
engine, ...; medians over --repeats):

  steps/s      the compiled engine's rollout-steps per second (`jax.jit(jax.vmap(search))`, the
               rollout-steps counted by its ledger);
  floor        the time to generate exactly the random words the world's law consumes for those
               steps, with the world's own counter hash, and nothing else (a fold of the words
               keeps them live). Words per rollout-step are counted by the NumPy implementation
               of the law (`numpy_search.WordCount`: per copy, as the engine re-derives a node's
               draws on every copy; ids and digests in the same unit) on --count-problems
               problems; the floor's words = engine rollout-steps × that rate;
  ×floor       engine time / floor time (the issue's target: ≤ 3);
  law/s, ×law  the LAW floor: the world's own step and nothing else — `expand_path` and
               `score_path`, and `embed` for DORA (the same hash words plus their transforms: the
               GEM sticks, Gamma, Beta and normal arithmetic, the child vector) on a flat batch
               of lanes · N slots of the cell's first problems, chained --law-rounds rounds
               from their roots and restarted, for as many slot-steps as the engine's
               rollout-steps; no allocation, buffers, ledger or loop of the search.
               ×law = engine time / law time: the search's own overhead over the law's
               arithmetic (what a perfect engine would still pay); law time / floor time is the
               law's arithmetic over its random words;
  cpu          the same ratios in CPU time (user + sys of this process, every thread), which a
               shared machine disturbs less than wall time;
  util         utilization: alive slot-steps (Σ Trace.active) / computed slot-steps: for
               `jax.vmap(search)` P · N · the rounds the batched loop executed (the most rounds of
               any problem in a batch); for `search_pool` the slot-steps its rounds computed
               (`PoolRun.slot_steps`: lanes · N per round; path lanes: the pool's width per round);
  numpy        (REBASE) the NumPy search of the same law (`benchmarks/numpy_search.py`, one
               problem at a time, NumPy over its slots) on --numpy-problems problems, and the
               engine / NumPy ratio of rates.

    python benchmarks/floor.py                  # the main point: P = 2000, N = 64
    python benchmarks/floor.py --scaling        # P ∈ {200, 2000, 20000} × N ∈ {16, 64, 256}
    python benchmarks/floor.py --quick --json   # a small smoke run, one JSON record per line
    python benchmarks/floor.py --engine both    # jax.vmap(search) and search_pool interleaved
    python benchmarks/floor.py --engine all     # and, for temperature sampling, its problem lanes

The engine path is `search_pool` (a pool of P/8 problem lanes refilled from the queue, the same
results bit for bit; for temperature sampling, which never reallocates, P/8 · N PATH lanes, shown
as paths(L)) unless --engine says otherwise; --engine both times the two interleaved; --engine all
adds the problem lanes for temperature sampling (`search_pool(..., paths=False)`, pool(L)).

The engine is compiled ahead of time; every run of it is timed, the first one included.

With --json, stdout is one JSON record per (rule, P, N): rule, P, N, steps_per_s, floor_ratio,
utilization (and numpy_ratio for REBASE), plus the rates, words per step, the law floor
(law_steps_per_s, law_ratio, law_over_floor), the CPU-time ratios (cpu_floor_ratio, cpu_law_ratio)
and the load average.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import pathlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dora_jax import world as world_lib

# --- the world's counter hash (to move to dora_jax.counter_rng at merge) --------------------
from dora_jax.counter_rng import digest as counter_digest
from dora_jax.counter_rng import words as counter_words
from dora_jax.search import Rule, SearchConfig, SyntheticWorld, search, search_pool

HERE = pathlib.Path(__file__).resolve().parent
RULES = ("rebase", "dora", "temperature_sampling")
SCALING_PROBLEMS = (200, 2000, 20000)
SCALING_BUDGETS = (16, 64, 256)
# Words per floor iteration: 2^16 (256 KiB, in cache) on CPU; on an accelerator a chunk must
# hide the loop's launch cost, 2^24.
CHUNK = {"cpu": 1 << 16}.get(jax.default_backend(), 1 << 24)
# The pool's default lanes: P / 8 (measured at P = 2000, N = 64, REBASE: 250 lanes, utilization
# 0.92; 100 lanes 0.97 but smaller rounds)
LANE_FRACTION = 8


def _numpy_search():
    if "numpy_search" in sys.modules:
        return sys.modules["numpy_search"]
    spec = importlib.util.spec_from_file_location("numpy_search", HERE / "numpy_search.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["numpy_search"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ns = _numpy_search()


@jax.jit
def _floor_kernel(digest, chunks):
    """`chunks` × CHUNK words of the counter stream keyed by `digest`, folded into one word."""

    def body(i, acc):
        counter = i.astype(jnp.uint32) * jnp.uint32(CHUNK) + jnp.arange(CHUNK, dtype=jnp.uint32)
        return acc ^ jnp.bitwise_xor.reduce(counter_words(digest, counter))

    return jax.lax.fori_loop(0, chunks, body, jnp.uint32(0))


def _timed(fn, *args):
    """(output, wall seconds, CPU seconds) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start, time.process_time() - cpu


@functools.cache
def _law_kernel(world, budget: int, rounds: int, embeds: bool):
    """The law floor's kernel: `chunks` times, the slots [W] (slot i is slot i mod N of its
    problem) take `rounds` steps of the world's law from where they start (`expand_path` and
    `score_path`, and `embed` for a rule that reads embeddings, with a fresh key each step);
    the steps' words are folded into one word so that nothing is dead code."""

    @jax.jit
    def run(key, slots, chunks):
        width = slots.depth.shape[0]
        index = jnp.arange(width, dtype=jnp.int32) % budget

        def step(j, carry):
            current, acc = carry
            k_expand, k_score, k_embed = jax.random.split(jax.random.fold_in(key, j), 3)
            new, out = jax.vmap(lambda s, i: world.expand_path(k_expand, None, s, i, False))(
                current, index
            )
            score = jax.vmap(lambda s, i: world.score_path(k_score, None, s, i))(new, index)
            words = out.direction.astype(jnp.uint32) ^ lax.bitcast_convert_type(
                score.astype(jnp.float32), jnp.uint32
            )
            if embeds:  # the survivors' paraphrase noise (the embedding draws of the law)
                e = world.embed(k_embed, None, new)
                words = words ^ jnp.bitwise_xor.reduce(lax.bitcast_convert_type(e, jnp.uint32), 1)
            return new, acc ^ jnp.bitwise_xor.reduce(words ^ out.tokens.astype(jnp.uint32))

        def chunk(c, acc):
            _, acc = lax.fori_loop(c * rounds, (c + 1) * rounds, step, (slots, acc))
            return acc

        return lax.fori_loop(0, chunks, chunk, jnp.uint32(0))

    return run


def _law_slots(world, problems, budget: int, width: int):
    """W = lanes · N slots at their problems' roots (the first W / N problems), flat."""
    count = -(-width // budget)
    first = jax.tree.map(lambda x: x[:count], problems)
    slots = jax.vmap(lambda p: world.init(p, budget))(first)
    return jax.tree.map(lambda x: x.reshape(count * budget, *x.shape[2:]), slots)


def default_lanes(problems: int) -> int:
    """The pool's lanes for P problems: P/8 (the drain at the end costs ~1/16 of the work)."""
    return max(1, math.ceil(problems / LANE_FRACTION))


@functools.cache
def _compiled(world, rule: str, budget: int, batch: int, lanes: int, paths: bool | None = None):
    """The compiled engine for `batch` problems: `jax.vmap(search)` (lanes = 0) or
    `search_pool` with `lanes` lanes (`paths`: its path lanes, None: where the rule allows);
    (executable, compile seconds)."""
    config = SearchConfig(budget, (Rule.make(rule),))
    if lanes:
        fn = jax.jit(lambda k, p: search_pool(k, p, world, config, lanes=lanes, paths=paths))
    else:
        fn = jax.jit(jax.vmap(lambda k, p: search(k, p, world, config)))
    keys = jax.random.split(jax.random.key(0), batch)
    problems = jax.vmap(world.sample_problem)(keys)
    start = time.perf_counter()
    compiled = fn.lower(keys, problems).compile()
    return compiled, time.perf_counter() - start


def _engine(world, rule: str, budget: int, keys, problems, batch: int, lanes: int, paths):
    """The engine over the problems in batches of `batch`; (run, compile seconds)."""
    compiled, compile_s = _compiled(world, rule, budget, batch, lanes, paths)
    count = keys.shape[0] // batch
    parts = [
        jax.tree.map(lambda x, i=i: x[i * batch : (i + 1) * batch], (keys, problems))
        for i in range(count)
    ]

    def run():
        return [jax.block_until_ready(compiled(*part)) for part in parts]

    return run, compile_s


def _summary(runs, budget: int, lanes: int) -> dict:
    """Steps, utilization and the verdicts' means of the engine's outputs (SearchResults, or
    PoolRuns when lanes > 0, which count the slot-steps they computed)."""
    if lanes:
        computed = sum(int(r.slot_steps) for r in runs)
        results = [r.result for r in runs]
    else:
        results = runs
        computed = sum(r.rounds.shape[0] * budget * int(jnp.max(r.rounds)) for r in results)
    steps = sum(int(jnp.sum(r.ledger.rollouts)) for r in results)
    alive = sum(int(jnp.sum(r.trace.active)) for r in results)
    accuracy = np.concatenate([np.asarray(r.accuracy, np.float64) for r in results])
    rollouts = np.concatenate([np.asarray(r.ledger.rollouts, np.float64) for r in results])
    return {
        "steps": steps,
        "utilization": alive / computed,
        "accuracy": float(accuracy.mean()),
        "steps_per_problem": float(rollouts.mean()),
    }


def _engines(args, batch: int, rule: str, budget: int) -> list[tuple[str, int, bool | None]]:
    """The engine paths to time: (label, lanes, paths), lanes 0 for `jax.vmap(search)`."""
    lanes = args.lanes or default_lanes(batch)
    by_path = not Rule.make(rule).refills  # the pool's default for this rule (a PathWorld)
    pool = (f"paths({lanes * budget})" if by_path else f"pool({lanes})", lanes, None)
    vmap = ("vmap", 0, None)
    if args.engine == "all" and by_path:
        return [vmap, (f"pool({lanes})", lanes, False), pool]
    return {"vmap": [vmap], "pool": [pool], "both": [vmap, pool], "all": [vmap, pool]}[args.engine]


def measure(args, problems_count: int, budget: int) -> list[dict]:
    """One (P, N) cell: every rule (and engine path), interleaved repeats; one record each."""
    config = world_lib.preset(args.preset)
    world = SyntheticWorld(config)
    batch = problems_count
    if args.batch_slots:
        batch = min(problems_count, max(1, args.batch_slots // budget))
    total = -(-problems_count // batch) * batch
    keys = jax.random.split(jax.random.key(args.seed), (total, 2))
    problems = jax.jit(jax.vmap(world.sample_problem))(keys[:, 0])
    search_keys = keys[:, 1]
    digest = counter_digest(jax.random.key_data(jax.random.key(args.seed + 1)), 9)
    numpy_problems = min(args.numpy_problems, problems_count)

    engines = {rule: _engines(args, batch, rule, budget) for rule in args.rules}
    cells = {}
    numpy_rates: dict[str, list[float]] = {rule: [] for rule in args.rules}
    numpy_outs = {}
    for rule in args.rules:
        counted = ns.WordCount()
        out = ns.run(args.seed, config, rule, budget, args.count_problems, words=counted)
        count_steps = sum(r.rollouts for r in out)
        jax.block_until_ready(_floor_kernel(digest, jnp.int32(1)))  # compile
        for label, lanes, paths in engines[rule]:
            run, compile_s = _engine(
                world, rule, budget, search_keys, problems, batch, lanes, paths
            )
            cells[rule, label] = {
                "lanes": lanes,
                "run": run,
                "compile_s": compile_s,
                "per_step": counted.total / count_steps,
                "uniform_per_step": counted.uniform / count_steps,
                "engine_s": [],
                "floor_s": [],
                "law_s": [],
                "engine_cpu": [],
                "floor_cpu": [],
                "law_cpu": [],
                "law_slots": _law_slots(world, problems, budget, (lanes or batch) * budget),
            }
    law_key = jax.random.key(args.seed + 3)

    def law(rule, slots, chunks):
        kernel = _law_kernel(world, budget, args.law_rounds, Rule.make(rule).uses_embeddings)
        return kernel(law_key, slots, jnp.int32(chunks))

    load_before = os.getloadavg()[0]
    # The engine's first run is timed too (it is compiled ahead of time); its result gives the
    # counts, and so the floor's words, before the floor runs.
    for _ in range(args.repeats):
        for rule in args.rules:
            for label, _, _ in engines[rule]:
                cell = cells[rule, label]
                results, seconds, cpu = _timed(cell["run"])
                cell["engine_s"].append(seconds)
                cell["engine_cpu"].append(cpu)
                if "summary" not in cell:
                    cell["summary"] = _summary(results, budget, cell["lanes"])
                    cell["needed"] = cell["summary"]["steps"] * cell["per_step"]
                    cell["chunks"] = max(1, math.ceil(cell["needed"] / CHUNK))
                    per_chunk = args.law_rounds * cell["law_slots"].depth.shape[0]
                    cell["law_chunks"] = max(1, math.ceil(cell["summary"]["steps"] / per_chunk))
                    cell["law_scale"] = cell["summary"]["steps"] / (cell["law_chunks"] * per_chunk)
                    jax.block_until_ready(law(rule, cell["law_slots"], 1))  # compile
                del results
                _, seconds, cpu = _timed(_floor_kernel, digest, jnp.int32(cell["chunks"]))
                scale = cell["needed"] / (cell["chunks"] * CHUNK)
                cell["floor_s"].append(seconds * scale)
                cell["floor_cpu"].append(cpu * scale)
                _, seconds, cpu = _timed(law, rule, cell["law_slots"], cell["law_chunks"])
                cell["law_s"].append(seconds * cell["law_scale"])
                cell["law_cpu"].append(cpu * cell["law_scale"])
            if rule == "rebase" and numpy_problems > 0:
                start = time.perf_counter()
                out = ns.run(args.seed + 2, config, rule, budget, numpy_problems)
                seconds = time.perf_counter() - start
                numpy_rates[rule].append(sum(r.rollouts for r in out) / seconds)
                numpy_outs[rule] = out
    load_after = os.getloadavg()[0]

    records = []
    for (rule, label), cell in cells.items():
        s = cell["summary"]
        engine_s = statistics.median(cell["engine_s"])
        floor_s = statistics.median(cell["floor_s"])
        steps_per_s = s["steps"] / engine_s
        law_s = statistics.median(cell["law_s"])
        engine_cpu = statistics.median(cell["engine_cpu"])
        law_cpu = statistics.median(cell["law_cpu"])
        record = {
            "rule": rule,
            "engine": label,
            "P": total,
            "N": budget,
            "steps_per_s": steps_per_s,
            "floor_steps_per_s": s["steps"] / floor_s,
            "floor_ratio": engine_s / floor_s,
            "utilization": s["utilization"],
            "law_steps_per_s": s["steps"] / law_s,
            "law_ratio": engine_s / law_s,
            "law_over_floor": law_s / floor_s,
            "law_rounds": args.law_rounds,
            "cpu_floor_ratio": engine_cpu / statistics.median(cell["floor_cpu"]),
            "cpu_law_ratio": engine_cpu / law_cpu,
            "engine_cpu_s": engine_cpu,
            "words_per_step": cell["per_step"],
            "uniform_words_per_step": cell["uniform_per_step"],
            "ns_per_word": 1e9 * floor_s / cell["needed"],
            "engine_s": engine_s,
            "compile_s": cell["compile_s"],
            "accuracy": s["accuracy"],
            "steps_per_problem": s["steps_per_problem"],
            "repeats": args.repeats,
            "load_average": [round(load_before, 2), round(load_after, 2)],
            "platform": jax.devices()[0].platform,
            "devices": jax.device_count(),
        }
        if numpy_rates[rule]:
            out = numpy_outs[rule]
            numpy_rate = statistics.median(numpy_rates[rule])
            record.update(
                numpy_steps_per_s=numpy_rate,
                numpy_ratio=steps_per_s / numpy_rate,
                numpy_problems=len(out),
                numpy_accuracy=float(np.mean([r.accuracy for r in out])),
                numpy_steps_per_problem=float(np.mean([r.rollouts for r in out])),
            )
        records.append(record)
    return records


HEADER = (
    f"{'rule':<22}{'engine':<14}{'P':>8}{'N':>5}{'steps/s':>12}{'floor/s':>13}{'×floor':>8}"
    f"{'law/s':>12}{'×law':>7}{'cpu×fl':>8}{'cpu×law':>8}{'words':>7}"
    f"{'ns/word':>8}{'util':>6}{'numpy/s':>11}{'×numpy':>8}{'load':>12}"
)


def row(r: dict) -> str:
    numpy_rate = f"{r['numpy_steps_per_s']:>11,.0f}" if "numpy_ratio" in r else f"{'':>11}"
    numpy_ratio = f"{r['numpy_ratio']:>7.2f}×" if "numpy_ratio" in r else f"{'':>8}"
    load = "{:.1f}→{:.1f}".format(*r["load_average"])
    return (
        f"{r['rule']:<22}{r['engine']:<14}{r['P']:>8}{r['N']:>5}{r['steps_per_s']:>12,.0f}"
        f"{r['floor_steps_per_s']:>13,.0f}{r['floor_ratio']:>7.1f}×{r['law_steps_per_s']:>12,.0f}"
        f"{r['law_ratio']:>6.1f}×{r['cpu_floor_ratio']:>7.1f}×{r['cpu_law_ratio']:>7.1f}×"
        f"{r['words_per_step']:>7.1f}"
        f"{r['ns_per_word']:>8.2f}{r['utilization']:>6.2f}{numpy_rate}{numpy_ratio}{load:>12}"
    )


def main(args: argparse.Namespace) -> list[dict]:
    if not args.json:
        print(
            f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} "
            f"device(s)), {os.cpu_count()} CPUs; world {args.preset}; {args.repeats} interleaved "
            f"repeats, medians; NumPy on {args.numpy_problems} problems, words counted on "
            f"{args.count_problems}"
        )
        print(HEADER, flush=True)
    records = []
    for problems_count in args.problems:
        for budget in args.budgets:
            if args.max_slots and problems_count * budget > args.max_slots:
                print(
                    f"skipped P = {problems_count}, N = {budget}: over --max-slots", file=sys.stderr
                )
                continue
            for record in measure(args, problems_count, budget):
                records.append(record)
                print(json.dumps(record) if args.json else row(record), flush=True)
                if args.jsonl:
                    with args.jsonl.open("a") as f:
                        f.write(json.dumps(record) + "\n")
    return records


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated rules")
    parser.add_argument("--problems", type=_ints, default=None, help="P values (default 2000)")
    parser.add_argument("--budgets", type=_ints, default=None, help="N values (default 64)")
    parser.add_argument(
        "--scaling", action="store_true", help="P ∈ {200,2000,20000} × N ∈ {16,64,256}"
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run (P = 200, N = 16)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (3)")
    parser.add_argument("--numpy-problems", type=int, default=None, help="NumPy problems (200)")
    parser.add_argument(
        "--count-problems", type=int, default=None, help="word-count problems (100)"
    )
    parser.add_argument(
        "--batch-slots",
        type=int,
        default=0,
        help="at most this many slots (problems × N) per engine call (0 = all P at once)",
    )
    parser.add_argument(
        "--max-slots", type=int, default=0, help="skip cells with P × N above this (0 = none)"
    )
    parser.add_argument(
        "--engine",
        choices=("vmap", "pool", "both", "all"),
        default="pool",
        help="jax.vmap(search), search_pool (default), both interleaved, or all (both and, for "
        "temperature sampling, the pool's problem lanes)",
    )
    parser.add_argument(
        "--lanes", type=int, default=0, help="the pool's lanes (0: P/8 per engine call)"
    )
    parser.add_argument(
        "--law-rounds",
        type=int,
        default=8,
        help="the law floor's steps from the roots before it restarts (8)",
    )
    parser.add_argument("--preset", default="paper-like")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON record per line")
    parser.add_argument("--jsonl", type=pathlib.Path, default=None, help="also append records here")
    args = parser.parse_args(argv)
    args.rules = args.rules.split(",")
    for rule in args.rules:
        if rule not in RULES:
            parser.error(f"unknown rule {rule!r}; choose from {', '.join(RULES)}")
    if args.scaling and args.quick:
        parser.error("--scaling and --quick exclude each other")
    scaling = args.scaling
    args.problems = args.problems or (
        list(SCALING_PROBLEMS) if scaling else [200] if args.quick else [2000]
    )
    args.budgets = args.budgets or (
        list(SCALING_BUDGETS) if scaling else [16] if args.quick else [64]
    )
    quick = args.quick
    args.repeats = args.repeats if args.repeats is not None else 1 if quick else 3
    if args.numpy_problems is None:
        args.numpy_problems = 20 if quick else 200
    if args.count_problems is None:
        args.count_problems = 20 if quick else 100
    if (
        args.repeats < 1
        or args.count_problems < 1
        or args.numpy_problems < 0
        or min(args.batch_slots, args.max_slots, args.lanes) < 0
        or args.law_rounds < 1
    ):
        parser.error(
            "--repeats, --count-problems and --law-rounds must be >= 1; --numpy-problems, "
            "--batch-slots, --max-slots and --lanes >= 0"
        )
    try:
        world_lib.preset(args.preset)
    except ValueError as error:
        parser.error(str(error))
    return args


if __name__ == "__main__":
    main(parse())
