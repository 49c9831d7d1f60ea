"""`dora bench` as a user runs it: the sim backend end to end, SIGKILL + resume, bad input.

The real-engine path (`--backend vllm`) is tested in tests/vllm/ with tiny models."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

DORA = shutil.which("dora")
TINY = ["--limit", "4", "--budgets", "4", "--methods", "rebase,dora", "--max-rounds", "6"]


def _env(tmp_path: Path) -> dict[str, str]:
    # One compile cache for the file's processes, so the reruns skip XLA compilation.
    cache = tmp_path.parent / "bench-xla-cache"
    return {**os.environ, "DORA_JAX_CACHE": str(cache)}


def _dora(tmp_path, *args, timeout=300):
    assert DORA, "the dora console script is not installed"
    return subprocess.run(
        [DORA, "bench", *args], capture_output=True, text=True, timeout=timeout, env=_env(tmp_path)
    )


def _records(folder: Path) -> list[dict]:
    rows = [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]
    return sorted(
        ({k: v for k, v in r.items() if k != "wall_s"} for r in rows),
        key=lambda r: (r["method"], r["budget"], r["seed"], r["problem"]),
    )


def test_sim_bench_end_to_end(tmp_path):
    out = tmp_path / "run"
    done = _dora(tmp_path, *TINY, "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    seeds = json.loads(done.stdout)
    assert {(r["method"], r["budget"]) for r in seeds} == {("rebase", 4), ("dora", 4)}
    for r in seeds:
        for field in ("accuracy", "majority_accuracy", "pass_at_n", "rollouts", "tokens", "flops"):
            assert field in r
    assert len(_records(out)) == 8
    assert {p.name for p in out.glob("*.png")} == {
        "accuracy_vs_budget.png",
        "accuracy_vs_flops.png",
        "accuracy_by_level.png",
    }
    again = _dora(tmp_path, *TINY, "--out", str(out))  # everything done: nothing reruns
    assert again.returncode == 0, again.stderr
    assert "rebase" in again.stdout and len(_records(out)) == 8


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    args = ["--limit", "6", "--batch-size", "1", "--budgets", "4,8", "--methods", "rebase,dora",
            "--max-rounds", "6"]  # fmt: skip
    whole = tmp_path / "whole"
    assert _dora(tmp_path, *args, "--out", str(whole)).returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [DORA, "bench", *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(tmp_path),
    )
    results = out / "results.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(results.read_text().splitlines())
    assert 3 <= partial < 24, partial  # killed midway
    resumed = _dora(tmp_path, *args, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert _records(out) == _records(whole)


def _bad(tmp_path, *args):
    out = tmp_path / "never"
    result = _dora(tmp_path, *args, "--out", str(out), timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dora: error: "), result.stderr
    assert not out.exists()  # no partial output
    return lines[0]


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    no_answer = tmp_path / "bad.jsonl"
    no_answer.write_text('{"problem": "1+1?", "answer": "2"}\n{"problem": "2+2?"}\n')
    assert "lacks 'answer'" in _bad(tmp_path, "--dataset", str(no_answer))
    assert "not found" in _bad(tmp_path, "--dataset", str(tmp_path / "missing.jsonl"))
    assert "beam width" in _bad(tmp_path, "--methods", "beam_search", "--budgets", "2")
    assert "unknown method" in _bad(tmp_path, "--methods", "best_guess")
    assert "unknown backend" in _bad(tmp_path, "--backend", "tgi")
    recipe = tmp_path / "r.toml"
    recipe.write_text('[vllm]\npolicy = "./no-such-model"\n')
    assert "model path not found" in _bad(tmp_path, "--backend", "vllm", "--recipe", str(recipe))
    recipe.write_text("[search]\nbudget = 4\n")
    assert "unknown key 'budget'" in _bad(tmp_path, "--recipe", str(recipe))
    recipe.write_text('[sim.world]\npreset = "redundant"\ncolour = 1\n')
    assert "[sim] unknown world field 'colour'" in _bad(tmp_path, "--recipe", str(recipe))


@pytest.mark.parametrize("name", ["paper-llama-1b", "cpu-smollm2"])
def test_shipped_recipes_load(name):
    from simulations import recipe

    r = recipe.load(name)
    assert r.search["budgets"]
    assert r.vllm["policy"]
