"""Benchmark: the time to simulate the paper's Figure 3 grid at the paper's sample size.

The grid: the nine fitted worlds (`paper-<model>-<dataset>`, `dora_jax.paper_worlds`) × five
methods (temperature sampling, beam search, DVTS, REBASE, DORA) × N ∈ {16, 32, 64, 128, 256} ×
2,500 problem-seeds (the paper's Fig. 3 sample size). With --problems M < 2500 it runs M
problems per (world, method, N) and extrapolates the run time linearly to 2500 (compile time is
paid once either way); the printout says so.

How the grid is laid out (each choice can be switched off to measure what it brings):

  worlds   a world's prior over p(root) (difficulty_a, difficulty_b) is read only when its
           problems are drawn, so worlds that differ only there share one search world: their
           problems are drawn each with its own world and searched together (--no-share-worlds:
           one search world per world);
  switch   the search worlds share one program per N, the world picked at run time
           (`dora_jax.search.world_switch`, a real branch: each world's code is its own, so a
           world's runs are those of a program compiled for it alone, up to the last bit of
           its node vectors, which moved one DORA search of the grid: `WorldSwitch`'s note;
           --no-world-switch: one program per search world);
  methods  temperature sampling (it never reallocates) runs in a program of its own, on the
           pool's path lanes, and the four reallocating methods share one program on problem
           lanes, the method picked at run time (`search(..., rule=i)`; --no-split-paths: all
           five in one program on problem lanes; --per-method: one program each);
  compile  programs compile ahead on --compile-threads threads (1) while the main thread runs
           the ones already compiled (0: each compiles when it is needed);
  runs     a program's calls (every search world, method and batch of it) run on --run-threads
           threads at once (2; 1: one after the other): XLA runs one call mostly on one core
           and releases the GIL, so two threads use both cores of a 2-core machine. The results
           are read back in a fixed order, the same bits for any thread count; a (method, N)
           cell's run seconds are its calls' share of the program's wall time;
  engine   `search_pool` (a pool of problem lanes refilled from the queue; --engine vmap:
           `jax.vmap(search)`), in calls of at most --batch-slots problems × N slots, as even
           as the calls allow (one shape per program).

    python benchmarks/fig3_grid.py --problems 250        # a tenth, extrapolated
    python benchmarks/fig3_grid.py --problems 20 --budgets 16 --methods rebase   # a smoke run

Prints per (method, N) the run seconds (measured and extrapolated), per N the compile seconds,
the main thread's wait for compiles, and the total (wait + extrapolated run: an upper bound,
since at 2,500 problems the longer runs hide more of the compiles), wall and CPU seconds;
with --json, one JSON record per (world, method, N) (its accuracy and rollout-steps; with
--per-problem also each problem's rollout-steps) and a summary record.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import math
import os
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from dora_jax import world as world_lib
from dora_jax.paper_worlds import PAPER_WORLDS
from dora_jax.search import (
    Rule,
    SearchConfig,
    SyntheticWorld,
    search,
    search_pool,
    world_switch,
)

METHODS = ("temperature_sampling", "beam_search", "dvts", "rebase", "dora")
BUDGETS = (16, 32, 64, 128, 256)
PAPER_PROBLEMS = 2500  # the paper's problem-seeds per Fig. 3 cell
LANE_FRACTION = 8  # the pool's lanes: 1/8 of a call's problems (as benchmarks/floor.py)
# Fields read only by `world.sample_problem`: worlds differing only here share a search.
PRIOR_FIELDS = ("difficulty_a", "difficulty_b")


def search_world(config: world_lib.WorldConfig) -> world_lib.WorldConfig:
    """The world with its prior over p(root) reset: what the search itself reads."""
    default = world_lib.WorldConfig()
    return dataclasses.replace(config, **{f: getattr(default, f) for f in PRIOR_FIELDS})


def groups(worlds: list[str], share: bool) -> dict[world_lib.WorldConfig, list[str]]:
    """Worlds keyed by the search they need (one key per world unless `share`)."""
    out: dict[world_lib.WorldConfig, list[str]] = {}
    for name in worlds:
        config = world_lib.preset(name)
        key = search_world(config) if share else config
        out.setdefault(key, []).append(name)
    return out


def method_programs(methods: list[str], per_method: bool, split_paths: bool) -> list[tuple]:
    """The methods' programs: one each, or the rules that never reallocate (path lanes) apart
    from those that do (problem lanes), or all in one."""
    if per_method:
        return [(m,) for m in methods]
    if not split_paths:
        return [tuple(methods)] if methods else []
    paths = tuple(m for m in methods if not Rule.make(m).refills)
    lanes = tuple(m for m in methods if Rule.make(m).refills)
    return [group for group in (paths, lanes) if group]


def compile_program(configs, methods, budget, batch, lanes, engine):
    """One program for (search worlds, N, methods): (keys, problems, rule index, world index)
    → results; the world index picks one of `configs` (`world_switch`: a real branch)."""
    worlds = tuple(SyntheticWorld(c) for c in configs)
    search_config = SearchConfig(budget, tuple(Rule.make(m) for m in methods))
    if engine == "pool":

        def fn(keys, problems, rule, index):
            world = world_switch(worlds, index)
            return search_pool(keys, problems, world, search_config, lanes=lanes, rule=rule)

    else:

        def fn(keys, problems, rule, index):
            world = world_switch(worlds, index)
            one = lambda k, p: search(k, p, world, search_config, rule=rule)  # noqa: E731
            return jax.vmap(one)(keys, problems)

    keys = jax.random.split(jax.random.key(0), batch)
    problems = jax.vmap(worlds[0].sample_problem)(keys)
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(keys, problems, jnp.int32(0), jnp.int32(0)).compile()
    return compiled, time.perf_counter() - start


def world_problems(name: str, index: int, count: int, seed: int):
    """`count` (search keys, problems) of world `name`, the same for every method and N."""
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), index), (count, 2))
    config = world_lib.preset(name)
    problems = jax.jit(jax.vmap(lambda k: world_lib.sample_problem(k, config)))(keys[:, 0])
    return keys[:, 1], problems


def _take(tree, index):
    return jax.tree.map(lambda x: x[index], tree)


def call_batch(problems: int, budget: int, batch_slots: int) -> int:
    """Problems per call at `budget`: at most batch_slots // N, as even as the calls allow (one
    shape for every search world of a program, so a world's M problems pad little)."""
    cap = max(1, batch_slots // budget)
    return -(-problems // -(-problems // cap))


def run_call(compiled, part, rule: int, index: int, budget: int) -> dict:
    """One call of a program on `part` (search keys, problems): its seconds, alive and computed
    slot-steps, and the per-problem accuracy and rollout-steps, all read back in the calling
    thread."""
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*part, jnp.int32(rule), jnp.int32(index)))
    pool = hasattr(out, "slot_steps")
    result = out.result if pool else out
    return {
        "accuracy": np.asarray(result.accuracy),
        "alive": int(jnp.sum(result.trace.active)),
        "rollouts": np.asarray(result.ledger.rollouts),
        "computed": (
            int(out.slot_steps)
            if pool
            else int(jnp.max(result.rounds)) * result.rounds.shape[0] * budget
        ),
        "seconds": time.perf_counter() - start,
    }


def main(args: argparse.Namespace) -> dict:
    by_group = groups(args.worlds, args.share_worlds)
    configs = list(by_group)
    # A world's problems are keyed by its place among the nine, not in --worlds, so a run of
    # some of the worlds draws the problems the whole grid does.
    order = list(PAPER_WORLDS)
    data = {
        name: world_problems(name, order.index(name), args.problems, args.seed)
        for name in args.worlds
    }
    scale = PAPER_PROBLEMS / args.problems
    run_s: dict[tuple[str, int], float] = {}
    compile_s: dict[int, float] = dict.fromkeys(args.budgets, 0.0)
    compile_wait_s = 0.0
    records = []
    util_alive = util_computed = steps = 0
    start_all = time.perf_counter()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    load_before = os.getloadavg()[0]
    # Every program, in the order they run: (N, search worlds in it, methods).
    switches = [tuple(configs)] if args.world_switch else [(c,) for c in configs]
    plan = [
        (budget, switch, program)
        for budget in args.budgets
        for switch in switches
        for program in method_programs(
            [m for m in args.methods if budget >= Rule.make(m).min_budget],
            args.per_method,
            args.split_paths,
        )
    ]

    def build(budget, switch, program):
        batch = call_batch(args.problems, budget, args.batch_slots)
        lanes = max(1, math.ceil(batch / LANE_FRACTION))
        return compile_program(switch, program, budget, batch, lanes, args.engine)

    # Programs compile ahead on --compile-threads threads (XLA compiles without the GIL) while
    # the main thread runs the ones already compiled; 0: each compiles when it is needed.
    pool = concurrent.futures.ThreadPoolExecutor(max(1, args.compile_threads))
    runner = concurrent.futures.ThreadPoolExecutor(args.run_threads)
    pending: list[concurrent.futures.Future] = []
    if args.compile_threads:
        pending = [pool.submit(build, *item) for item in plan]
    for i, (budget, switch, program) in enumerate(plan):
        wait = time.perf_counter()
        future = pending[i] if pending else pool.submit(build, budget, switch, program)
        compiled, seconds = future.result()
        if pending:
            pending[i] = None  # type: ignore[call-overload]  # free the program once run
        compile_wait_s += time.perf_counter() - wait
        compile_s[budget] += seconds
        batch = call_batch(args.problems, budget, args.batch_slots)
        # Every call of every (search world, method) cell of this program, run on
        # --run-threads threads (XLA runs a call mostly on one core, without the GIL), the
        # results read back in this fixed order whatever order the calls end in.
        cells = []
        for index, config in enumerate(switch):
            names = by_group[config]
            keys = jnp.concatenate([data[n][0] for n in names])
            problems = jax.tree.map(lambda *x: jnp.concatenate(x), *(data[n][1] for n in names))
            total = keys.shape[0]
            calls = -(-total // batch)
            padded = calls * batch  # pad with repeats of the first problems (results dropped)
            keys, problems = _take((keys, problems), jnp.arange(padded) % total)
            parts = [
                _take((keys, problems), slice(c * batch, (c + 1) * batch)) for c in range(calls)
            ]
            for rule, method in enumerate(program):
                cells.append((index, names, total, rule, method, parts))
        start = time.perf_counter()
        futures = [
            [runner.submit(run_call, compiled, part, rule, index, budget) for part in parts]
            for index, names, total, rule, method, parts in cells
        ]
        done = [[f.result() for f in cell] for cell in futures]
        program_s = time.perf_counter() - start
        # a cell's share of the program's wall time: its calls' share of the calls' seconds
        call_s = sum(call["seconds"] for cell in done for call in cell)
        for (_index, names, total, _rule, method, _parts), cell in zip(cells, done, strict=True):
            seconds = program_s * sum(call["seconds"] for call in cell) / max(call_s, 1e-12)
            run_s[method, budget] = run_s.get((method, budget), 0.0) + seconds
            util_alive += sum(call["alive"] for call in cell)
            util_computed += sum(call["computed"] for call in cell)
            acc = np.concatenate([call["accuracy"] for call in cell])[:total]
            # the padding's rows dropped
            per_problem = np.concatenate([call["rollouts"] for call in cell])[:total]
            steps += int(per_problem.sum())
            for w, name in enumerate(names):
                rows = slice(w * args.problems, (w + 1) * args.problems)
                records.append(
                    {
                        "world": name,
                        "method": method,
                        "N": budget,
                        "problems": args.problems,
                        "accuracy": float(acc[rows].mean()),
                        "rollout_steps": int(per_problem[rows].sum()),
                    }
                )
                if args.per_problem:
                    records[-1]["problem_steps"] = per_problem[rows].tolist()
                if args.json:
                    print(json.dumps(records[-1]), flush=True)
        del compiled
        if not args.json:
            elapsed = time.perf_counter() - start_all
            print(
                f"  N = {budget:>3}: {', '.join(program)} done ({elapsed:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    pool.shutdown()
    runner.shutdown()
    wall = time.perf_counter() - start_all
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_total = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    compile_total = sum(compile_s.values())
    run_total = sum(run_s.values())
    summary = {
        "summary": True,
        "worlds": len(args.worlds),
        "world_groups": len(by_group),
        "programs": len(plan),
        "methods": list(args.methods),
        "budgets": list(args.budgets),
        "problems": args.problems,
        "extrapolated_to": PAPER_PROBLEMS,
        "engine": args.engine,
        "share_worlds": args.share_worlds,
        "world_switch": args.world_switch,
        "split_paths": args.split_paths,
        "per_method": args.per_method,
        "compile_threads": args.compile_threads,
        "run_threads": args.run_threads,
        "compile_s": compile_total,
        "compile_wait_s": compile_wait_s,
        "compile_s_per_budget": {str(b): compile_s[b] for b in args.budgets},
        "run_s_per_cell": {f"{m},{b}": seconds for (m, b), seconds in run_s.items()},
        "run_s": run_total,
        "run_s_extrapolated": run_total * scale,
        # The main thread's wait for programs plus the runs: compiles ahead overlap the runs
        # (at 2,500 problems the runs are longer, so this bounds the whole grid from above).
        "total_s_extrapolated": compile_wait_s + run_total * scale,
        "wall_s": wall,
        "cpu_s": cpu_total,
        "utilization": util_alive / max(util_computed, 1),
        "rollout_steps": steps,
        "rollout_steps_extrapolated": steps * scale,
        "steps_per_s": steps / max(run_total, 1e-9),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary))
        return summary
    print(
        f"Figure 3 grid: {len(args.worlds)} worlds ({len(by_group)} search worlds, "
        f"{len(plan)} programs) × "
        f"{len(args.methods)} methods × N ∈ {{{', '.join(map(str, args.budgets))}}}, "
        f"{args.problems} problems per cell, run times extrapolated ×{scale:g} to {PAPER_PROBLEMS} "
        f"(engine {args.engine}; jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"{os.cpu_count()} CPUs)"
    )
    print(
        f"{'method':<22}" + "".join(f"{'N=' + str(b):>10}" for b in args.budgets) + f"{'all':>10}"
    )
    for method in args.methods:
        cells = [run_s.get((method, b), 0.0) * scale for b in args.budgets]
        print(f"{method:<22}" + "".join(f"{c:>10.1f}" for c in cells) + f"{sum(cells):>10.1f}")
    print(
        f"{'compile':<22}"
        + "".join(f"{compile_s[b]:>10.1f}" for b in args.budgets)
        + f"{compile_total:>10.1f}"
    )
    print(
        f"total (extrapolated): {summary['total_s_extrapolated']:.0f} s = waiting for compiles "
        f"{compile_wait_s:.0f} s (compiles {compile_total:.0f} s, "
        f"{args.compile_threads} threads ahead) + run {run_total:.1f} s measured × {scale:g}; "
        f"utilization {summary['utilization']:.2f}; wall {wall:.0f} s, CPU {cpu_total:.0f} s; "
        "load {:.1f}→{:.1f}".format(*summary["load_average"])
    )
    print(
        f"rollout-steps: {steps:,} measured, {steps * scale:,.0f} extrapolated; "
        f"{summary['steps_per_s']:,.0f} steps/s over the run"
    )
    return summary


def _list(choices):
    def parse(text: str) -> list[str]:
        values = text.split(",")
        bad = [v for v in values if v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(
                f"unknown {bad[0]!r}; choose from {', '.join(choices)}"
            )
        return values

    return parse


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=PAPER_PROBLEMS, help="per cell (2500)")
    parser.add_argument("--worlds", type=_list(tuple(PAPER_WORLDS)), default=list(PAPER_WORLDS))
    parser.add_argument("--methods", type=_list(METHODS), default=list(METHODS))
    parser.add_argument("--budgets", type=_ints, default=list(BUDGETS))
    parser.add_argument("--engine", choices=("pool", "vmap"), default="pool")
    parser.add_argument(
        "--no-share-worlds",
        dest="share_worlds",
        action="store_false",
        help="one program per world (not per search world)",
    )
    parser.add_argument(
        "--no-world-switch",
        dest="world_switch",
        action="store_false",
        help="one program per search world (not one per N for all, the world a runtime index)",
    )
    parser.add_argument(
        "--no-split-paths",
        dest="split_paths",
        action="store_false",
        help="temperature sampling in the reallocating methods' program (problem lanes)",
    )
    parser.add_argument("--per-method", action="store_true", help="one program per method")
    parser.add_argument(
        "--compile-threads",
        type=int,
        default=1,
        help="threads compiling programs ahead while others run (0: compile when needed)",
    )
    parser.add_argument(
        "--run-threads",
        type=int,
        default=2,
        help="threads running a program's calls at once (2: both cores of a 2-core machine)",
    )
    parser.add_argument(
        "--batch-slots", type=int, default=1 << 19, help="at most problems × N slots per call"
    )
    parser.add_argument(
        "--cache-dir", default=None, help="JAX's persistent compilation cache (default: none)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON record per line")
    parser.add_argument(
        "--per-problem",
        action="store_true",
        help="each JSON cell record also lists its problems' rollout-steps (problem_steps)",
    )
    args = parser.parse_args(argv)
    if args.problems < 1 or args.batch_slots < 1:
        parser.error("--problems and --batch-slots must be >= 1")
    if args.compile_threads < 0:
        parser.error("--compile-threads must be >= 0")
    if args.run_threads < 1:
        parser.error("--run-threads must be >= 1")
    return args


if __name__ == "__main__":
    arguments = parse()
    if arguments.cache_dir:
        jax.config.update("jax_compilation_cache_dir", arguments.cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    main(arguments)
