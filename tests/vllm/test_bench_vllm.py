"""`dora bench` on the real vLLM engine with the tiny models: the same search, the same records.

In-process tests share the session's engine set (conftest.py); the command-line test starts its
own engines in subprocesses (one at a time) and checks SIGKILL + resume."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: run with the .venv-vllm python")

from backends.bank import BankMiss, RecordingBackend, ReplayBackend, SampleBank
from backends.datasets import Problem
from backends.host_world import HostWorld
from backends.protocol import Prefix, StepRequest
from dora_jax.search import Rule
from simulations import bench

tiny = sys.modules["dora_jax_test_tiny_models"]  # loaded by conftest.py (tests is no package)


def _problems(count: int = 3) -> list[Problem]:
    rng = random.Random(7)
    out = []
    for i in range(count):
        statement, _, answer = tiny.problem_statement(rng)
        out.append(Problem(f"tiny-{i}", statement, answer, None, None, "tiny"))
    return out


def test_bench_on_vllm_keeps_the_budget_and_the_schema(backend, tmp_path):
    problems = _problems()
    spec = bench.BenchSpec(
        problems=tuple(problems),
        rules=(Rule.make("rebase"), Rule.make("dora")),
        budgets=(4, 8),
        seeds=(0,),
        backend="vllm",
        max_rounds=8,
    )
    worlds = []

    def make(ps):
        worlds.append(HostWorld(backend, ps))
        return worlds[-1]

    before = dict(backend.calls)
    records = bench.run(spec, tmp_path / "vllm", make_world=make)
    world = worlds[0]
    assert len(records) == 3 * 2 * 2
    sim = bench.run(
        bench.BenchSpec(
            problems=tuple(problems), rules=spec.rules, budgets=(4,), seeds=(0,), max_rounds=4
        ),
        tmp_path / "sim",
    )
    assert set(records[0]) == set(sim[0])  # one schema for simulated and real runs
    for r in records:
        for row in r["allocations"]:
            assert sum(row) in (0, r["budget"]), r["allocations"]  # N exactly, every round
        assert r["rollouts"] > 0 and r["tokens"]["policy"] > 0
    # One engine call per round per model: the host world's calls are the engine's calls.
    calls = {k: backend.calls[k] - before.get(k, 0) for k in backend.calls}
    assert calls["policy"] == world.calls["generate"]
    assert calls["prm"] == world.calls["score"]
    assert calls["embed"] == world.calls["embed"] > 0  # DORA embedded
    trees = [json.loads(x) for x in (tmp_path / "vllm" / "trees.jsonl").read_text().splitlines()]
    assert len(trees) == len(records)
    finished = [n for t in trees for n in t["nodes"] if n["finished"]]
    assert finished and all(n["outcome"] for n in finished)


def _bench_spec(problems, backend: str) -> bench.BenchSpec:
    return bench.BenchSpec(
        problems=tuple(problems),
        rules=(Rule.make("rebase"), Rule.make("dora")),
        budgets=(4,),
        seeds=(0,),
        backend=backend,
        max_rounds=6,
    )


def test_sample_j_of_a_seed_is_the_same_whatever_n(backend):
    """What lets policies and a bank share samples: vLLM seeds child j of a request seed + j."""
    prefix = Prefix(_problems(1)[0].problem)
    small, large = backend.generate(
        [StepRequest(prefix, 2, seed=11), StepRequest(prefix, 4, seed=11)]
    )
    assert large[:2] == small
    assert backend.generate([StepRequest(prefix, 2, seed=12)])[0] != small  # control


def test_record_then_replay_with_no_engine_call(backend, tmp_path):
    """A vLLM run recorded into a bank replays to the same records with no engine call; a
    replay at a larger N misses (one line naming the prefix)."""
    problems = _problems()
    store = SampleBank(tmp_path / "bank.sqlite")
    recorded_as = {"backend": "vllm", **{k: str(v) for k, v in vars(backend.settings).items()}}
    recording = RecordingBackend(backend, store, recorded_as)
    recorded = bench.run(
        _bench_spec(problems, "vllm"),
        tmp_path / "A",
        make_world=lambda ps: HostWorld(recording, ps),
    )
    assert all(n > 0 for n in store.counts().values()), store.counts()
    before = dict(backend.calls)
    replay = ReplayBackend(SampleBank(store.path))
    replayed = bench.run(
        _bench_spec(problems, "replay"), tmp_path / "B", make_world=lambda ps: HostWorld(replay, ps)
    )
    assert dict(backend.calls) == before  # no engine ran
    drop = ("wall_s", "backend")
    strip = lambda rs: [{k: v for k, v in r.items() if k not in drop} for r in rs]  # noqa: E731
    assert strip(replayed) == strip(recorded)
    assert replay.calls == 0 and replay.hits > 0 and replay.misses == 0
    larger = dataclasses.replace(_bench_spec(problems, "replay"), budgets=(8,))
    with pytest.raises(BankMiss, match="prefix"):
        bench.run(larger, tmp_path / "C", make_world=lambda ps: HostWorld(replay, ps))


def _recipe(tmp_path: Path, settings) -> Path:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(
        "[vllm]\n"
        f'policy = "{settings.policy}"\n'
        f'prm = "{settings.prm}"\n'
        f'embedder = "{settings.embedder}"\n'
        f"system_prompt = {json.dumps(tiny.SYSTEM_PROMPT)}\n"
        f"step_tokens = {settings.step_tokens}\nsolution_tokens = {settings.solution_tokens}\n"
        f"kv_cache_memory_bytes = {settings.kv_cache_memory_bytes}\n"
        'enforce_eager = true\ndistributed_executor_backend = "uni"\ndtype = "float32"\n'
    )
    return recipe


def _dataset(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    lines = [
        json.dumps({"id": p.id, "problem": p.problem, "answer": p.answer}) for p in _problems()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(folder: Path):
    rows = [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]
    return sorted(
        ({k: v for k, v in r.items() if k != "wall_s"} for r in rows),
        key=lambda r: (r["method"], r["budget"], r["seed"], r["problem"]),
    )


def test_cli_bench_vllm_sigkill_and_resume(settings, tmp_path):
    dora = shutil.which("dora", path=str(Path(sys.executable).parent))
    assert dora, "dora is not installed in the vLLM environment"
    env = {**os.environ, "VLLM_CACHE_ROOT": str(tmp_path / "vllm-cache")}
    args = [
        dora, "bench", "--backend", "vllm", "--recipe", str(_recipe(tmp_path, settings)),
        "--dataset", str(_dataset(tmp_path)), "--methods", "rebase,dora", "--budgets", "4,8",
        "--batch-size", "1", "--max-rounds", "6", "--no-plots",
    ]  # fmt: skip
    whole = tmp_path / "whole"
    done = subprocess.run([*args, "--out", str(whole)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(_rows(whole)) == 12
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [*args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    results = out / "results.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= len(results.read_text().splitlines()) < 12  # killed midway
    again = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _rows(out) == _rows(whole)  # nothing duplicated, nothing lost, same outputs
