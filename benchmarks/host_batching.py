"""P4b: the search on a text backend, batched across problems vs one problem at a time.

The same engine (`dora_jax.search.search_batch` over `backends.host_world.HostWorld`) runs the
same problems with the same keys in two modes: all P problems in one batch (one backend call per
round for every problem: what `dora bench` does) and one problem at a time (P searches of one
problem: the reference code's mode). Per-problem search keys do not depend on the batch and
sampling seeds hash the prefix, so both modes do the same work and give the same records: the
script checks that, then prints wall time per mode (median of interleaved repeats, compiles
excluded), the speed-up (by wall time, and by the process's CPU time, which other processes on a
shared machine do not inflate), and the share of wall time spent outside the backend's calls
(the engine's steps, the host world, grading). The floor is the backend's own time: a search cannot
be faster than the model calls it makes.

    python benchmarks/host_batching.py                          # toy backend, P = 20, N = 8
    python benchmarks/host_batching.py --backend vllm --recipe cpu-smollm2 --problems 4

`--backend toy` is the scripted model-free backend (backends.toy): its calls are cheap, so the
outside share is the host's overhead at its largest. `--backend vllm` needs the vLLM environment
(scripts/vllm_env.sh) and a recipe with a [vllm] table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from backends import datasets
from backends.host_world import HostWorld
from backends.protocol import Prefix, StepRequest, StepSample
from dora_jax.search import Rule, SearchConfig, search_batch
from simulations.bench import problem_key


class TimedBackend:
    """A text backend whose calls are timed (`seconds`) and counted (`calls`, `samples`)."""

    def __init__(self, backend):
        self.backend = backend
        self.embed_dim = getattr(backend, "embed_dim", None)
        self.seconds = 0.0
        self.calls = 0
        self.samples = 0

    def _timed(self, fn, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1

    def generate(self, requests: Sequence[StepRequest]) -> list[list[StepSample]]:
        self.samples += sum(r.n for r in requests)
        return self._timed(self.backend.generate, requests)

    def score(self, prefixes: Sequence[Prefix]) -> np.ndarray:
        return self._timed(self.backend.score, prefixes)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._timed(self.backend.embed, texts)

    def prompt_tokens(self, problem: str) -> int:
        return self.backend.prompt_tokens(problem)


def make_backend(args: argparse.Namespace, problems):
    if args.backend == "toy":
        from backends.toy import ToyBackend

        return ToyBackend.for_problems(problems)
    from backends.vllm_backend import VLLMBackend, VLLMSettings
    from simulations import recipe as recipe_lib

    rec = recipe_lib.load(args.recipe)
    return VLLMBackend(VLLMSettings(**rec.vllm))


def _run(world: HostWorld, keys, config: SearchConfig, rule: int, batched: bool):
    """Per-problem (accuracy, rollouts, correct fraction) of one mode."""
    world.reset()
    out = []
    for k, i in keys[batched]:
        result = search_batch(k, i, world, config, rule=rule)
        out.append(jax.tree.map(np.asarray, (result.accuracy, result.ledger.rollouts)))
        world.reset()
    accuracy = np.concatenate([a for a, _ in out]).astype(int)
    rollouts = np.concatenate([r for _, r in out]).astype(int)
    return accuracy, rollouts


def main(args: argparse.Namespace) -> list[dict]:
    problems = datasets.load_dataset(args.dataset, limit=args.problems)
    timed = TimedBackend(make_backend(args, problems))
    world = HostWorld(timed, problems)
    ids = np.arange(len(problems), dtype=np.int32)
    every = jnp.stack([problem_key(args.seed, p.id) for p in problems])
    # (keys, problem ids) per search: all problems at once, or one at a time (sliced up front).
    keys = {
        True: [(every, jnp.asarray(ids))],
        False: [(every[i : i + 1], jnp.asarray(ids[i : i + 1])) for i in range(len(ids))],
    }
    rules = tuple(Rule.make(m) for m in args.methods.split(","))
    config = SearchConfig(args.budget, rules, args.max_rounds)
    print(
        f"backend {args.backend}, {args.dataset}: P = {len(problems)}, N = {args.budget}, "
        f"T_max = {args.max_rounds}, {args.repeats} interleaved repeats (medians), jax "
        f"{jax.__version__} on {jax.devices()[0].platform}"
    )
    print(
        f"{'rule':<10}{'batched s':>10}{'serial s':>10}{'speed-up':>10}{'cpu ×':>10}"
        f"{'calls b/s':>12}{'samples':>9}{'outside b':>11}{'outside s':>11}"
    )
    rows = []
    for index, rule in enumerate(rules):
        # Warm-up: compiles the engine's steps (one set for every batch size P seen).
        for batched in (True, False):
            _run(world, keys, config, index, batched)
        seen: dict[bool, list] = {True: [], False: []}
        wall: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        inside: dict[bool, list[float]] = {True: [], False: []}
        calls: dict[bool, int] = {}
        samples: dict[bool, int] = {}
        for _ in range(args.repeats):
            for batched in (True, False):
                timed.seconds, timed.calls, timed.samples = 0.0, 0, 0
                start, start_cpu = time.perf_counter(), time.process_time()
                seen[batched].append(_run(world, keys, config, index, batched))
                wall[batched].append(time.perf_counter() - start)
                cpu[batched].append(time.process_time() - start_cpu)
                inside[batched].append(timed.seconds)
                calls[batched], samples[batched] = timed.calls, timed.samples
        first = seen[True][0]  # every run of both modes gives the same per-problem results
        same = all(
            np.array_equal(a, b)
            for run in seen[True] + seen[False]
            for a, b in zip(run, first, strict=True)
        )
        if not same or samples[True] != samples[False]:
            raise SystemExit(f"{rule.label}: the two modes did different work; no comparison")
        b, s = statistics.median(wall[True]), statistics.median(wall[False])
        cpu_b, cpu_s = statistics.median(cpu[True]), statistics.median(cpu[False])
        out_b = 1 - statistics.median(inside[True]) / b
        out_s = 1 - statistics.median(inside[False]) / s
        row = {
            "rule": rule.label,
            "problems": len(problems),
            "budget": args.budget,
            "batched_s": b,
            "serial_s": s,
            "speedup": s / b,
            "cpu_s": {"batched": cpu_b, "serial": cpu_s},
            "cpu_speedup": cpu_s / cpu_b,
            "backend_calls": {"batched": calls[True], "serial": calls[False]},
            "samples": samples[True],
            "backend_s": {
                "batched": statistics.median(inside[True]),
                "serial": statistics.median(inside[False]),
            },
            "outside_share": {"batched": out_b, "serial": out_s},
        }
        rows.append(row)
        print(
            f"{rule.label:<10}{b:>10.2f}{s:>10.2f}{s / b:>9.1f}×{cpu_s / cpu_b:>9.1f}×"
            f"{calls[True]:>6}/{calls[False]:<5}{samples[True]:>9}{out_b:>10.0%}{out_s:>11.0%}"
        )
    print(
        "floor: the backend's own time (batched "
        + ", ".join(f"{r['rule']} {r['backend_s']['batched']:.2f} s" for r in rows)
        + "); outside = 1 − backend time / wall time"
    )
    if args.json:
        print(json.dumps(rows))
    return rows


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("toy", "vllm"), default="toy")
    parser.add_argument("--recipe", default="cpu-smollm2", help="vllm: a recipe with [vllm]")
    parser.add_argument("--dataset", default="math500")
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--methods", default="rebase,dora")
    parser.add_argument("--max-rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse())
