"""`dora bench` as a user runs it: the sim backend end to end, SIGKILL + resume, bad input.

The real-engine path (`--backend vllm`) is tested in tests/vllm/ with tiny models."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
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


def _kill_after(tmp_path: Path, args: list[str], results: Path, lines: int, poll: float) -> int:
    """Start `dora bench ARGS`, SIGKILL it once `results` holds `lines` records (or after 240 s);
    the records it left."""
    proc = subprocess.Popen(
        [DORA, "bench", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(tmp_path),
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= lines:
            break
        time.sleep(poll)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(results.read_text().splitlines())


def _dora(tmp_path, *args, timeout=300, command="bench"):
    assert DORA, "the dora console script is not installed"
    return subprocess.run(
        [DORA, command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(tmp_path),
    )


def _problems(path: Path, count: int, tag: str) -> Path:
    lines = [
        json.dumps({"id": f"{tag}{i}", "problem": f"{tag}: what is {i} + 1?", "answer": str(i + 1)})
        for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


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


def test_a_rerun_with_other_settings_never_merges_old_records(tmp_path):
    """The reported fault: a 5-problem run into a folder of a 25-problem run averaged over 25.
    Now the rerun is refused (one line naming the setting) and `--fresh` counts only its own."""
    big = _problems(tmp_path / "big.jsonl", 5, "b")
    small = _problems(tmp_path / "small.jsonl", 2, "s")
    args = ["--budgets", "4", "--methods", "rebase", "--max-rounds", "6", "--no-plots"]
    out = tmp_path / "run"
    assert _dora(tmp_path, *args, "--dataset", str(big), "--out", str(out)).returncode == 0
    before = (out / "results.jsonl").read_text()
    refused = _dora(tmp_path, *args, "--dataset", str(small), "--out", str(out))
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and 'dataset is "big" there, "small" now' in lines[0], lines
    assert (out / "results.jsonl").read_text() == before  # nothing ran
    limited = _dora(tmp_path, *args, "--dataset", str(big), "--limit", "2", "--out", str(out))
    assert limited.returncode == 2 and "problems is 5 there, 2 now" in limited.stderr
    fresh = _dora(tmp_path, *args, "--dataset", str(small), "--out", str(out), "--fresh", "--json")
    assert fresh.returncode == 0, fresh.stderr
    assert [r["problems"] for r in json.loads(fresh.stdout)] == [2]
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["problems"] for r in rows] == [2]
    assert {r["problem"] for r in _records(out)} == {"s0", "s1"}
    assert (out / "replaced-1" / "results.jsonl").read_text() == before  # moved, not deleted
    again = _dora(tmp_path, *args, "--dataset", str(small), "--out", str(out))
    assert again.returncode == 0 and "resumed: 2 of 2 done" in again.stderr


def test_toy_backend_runs_a_named_dataset_in_seconds_and_repeats_itself(tmp_path):
    args = ["--backend", "toy", "--dataset", "math500", "--limit", "5", "--methods", "rebase,dora"]
    args += ["--budgets", "8", "--no-plots"]
    runs = []
    for name in ("A", "B"):
        done = _dora(tmp_path, *args, "--out", str(tmp_path / name), timeout=120)
        assert done.returncode == 0, done.stderr
        runs.append(_records(tmp_path / name))
    assert len(runs[0]) == 10 and {r["backend"] for r in runs[0]} == {"toy"}
    assert runs[0] == runs[1]  # deterministic: the search keys fix every toy sample
    trees = (tmp_path / "A" / "trees.jsonl").read_text().splitlines()
    assert len(trees) == 10


def test_record_with_toy_then_replay_with_no_model(tmp_path):
    """The issue's 'done when' commands: B's records equal A's; B made no backend call."""
    args = ["--dataset", "math500", "--limit", "5", "--methods", "rebase,dora", "--budgets", "8"]
    args += ["--no-plots"]
    bank = tmp_path / "BANK"
    a = _dora(
        tmp_path, "--backend", "toy", *args, "--record", str(bank), "--out", str(tmp_path / "A")
    )
    assert a.returncode == 0, a.stderr
    b = _dora(
        tmp_path, "--backend", "replay", "--bank", str(bank), *args, "--out", str(tmp_path / "B"),
        "--json",
    )  # fmt: skip
    assert b.returncode == 0, b.stderr
    drop = lambda rs: [{k: v for k, v in r.items() if k != "backend"} for r in rs]  # noqa: E731
    assert drop(_records(tmp_path / "B")) == drop(_records(tmp_path / "A"))
    summary = json.loads((tmp_path / "B" / "summary.json").read_text())
    assert summary["backend_calls"] == 0 and summary["bank_misses"] == 0
    assert summary["bank_hits"] > 0
    assert json.loads((tmp_path / "A" / "summary.json").read_text())["backend_calls"] > 0
    assert "needs --bank" in _bad(tmp_path, "--backend", "replay")
    assert "not found" in _bad(tmp_path, "--backend", "replay", "--bank", str(tmp_path / "no"))
    assert "needs a text backend" in _bad(tmp_path, "--record", str(tmp_path / "x.sqlite"))


@pytest.mark.parametrize(
    "command, args",
    [
        ("bench", ["--limit", "1", "--budgets", "4", "--methods", "rebase"]),
        ("simulate", ["--problems", "2", "--budgets", "4", "--methods", "rebase"]),
        ("verify", ["--only", "prop1-kappa-inf"]),
        ("calibrate", ["--problems", "2"]),
    ],
)
def test_an_unwritable_out_is_one_line_before_any_work(tmp_path, command, args):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / ("out.json" if command == "calibrate" else "out")
    started = time.perf_counter()
    result = _dora(tmp_path, *args, "--out", str(target), command=command, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a folder" in lines[0], result.stderr
    assert time.perf_counter() - started < 60  # refused at once, not after the run


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = _dora(tmp_path, "--limit", "1", "--out", str(locked / "x"), timeout=120)
    finally:
        locked.chmod(0o700)
    assert result.returncode == 2 and "is not writable" in result.stderr


def test_simulate_replaces_another_run_and_says_so(tmp_path):
    out = tmp_path / "sim"
    args = ["--budgets", "4", "--methods", "rebase", "--max-rounds", "6", "--no-plots"]
    first = _dora(tmp_path, *args, "--problems", "3", "--out", str(out), command="simulate")
    assert first.returncode == 0, first.stderr
    second = _dora(tmp_path, *args, "--problems", "2", "--out", str(out), command="simulate")
    assert second.returncode == 0, second.stderr
    assert f"replaced the run in {out} (problems is 3 there, 2 now)" in second.stderr
    assert json.loads((out / "run.json").read_text())["problems"] == 2
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [len(r["per_problem_accuracy"]) for r in records] == [2]


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    args = ["--limit", "6", "--batch-size", "1", "--budgets", "4,8", "--methods", "rebase,dora",
            "--max-rounds", "6"]  # fmt: skip
    whole = tmp_path / "whole"
    assert _dora(tmp_path, *args, "--out", str(whole)).returncode == 0
    out = tmp_path / "killed"
    partial = _kill_after(tmp_path, [*args, "--out", str(out)], out / "results.jsonl", 3, 0.05)
    assert 3 <= partial < 24, partial  # killed midway
    resumed = _dora(tmp_path, *args, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert _records(out) == _records(whole)


@pytest.mark.slow
@pytest.mark.slow
def test_adaptive_on_the_toy_and_replay_backends(tmp_path):
    """Adaptive compute on a host backend: the records say when and why each problem stopped,
    the rollouts never exceed the fixed-N run's, and a replay of a bank recorded WITHOUT
    adaptive compute gives the same records (at cap 1 a running problem asks for exactly what
    the fixed-N search asks for, so every request is in the bank)."""
    args = ["--dataset", "math500", "--limit", "5", "--methods", "rebase,dora", "--budgets", "4"]
    args += ["--no-plots", "--max-rounds", "8"]
    adaptive = ["--stop-threshold", "0.7", "--stop-kappa", "4", "--min-votes", "2"]
    bank = tmp_path / "BANK"
    fixed = _dora(tmp_path, "--backend", "toy", *args, "--record", str(bank), "--out",
                  str(tmp_path / "F"))  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    toy = _dora(tmp_path, "--backend", "toy", *args, *adaptive, "--out", str(tmp_path / "A"))
    assert toy.returncode == 0, toy.stderr
    replay = _dora(tmp_path, "--backend", "replay", "--bank", str(bank), *args, *adaptive,
                   "--out", str(tmp_path / "B"))  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    a, f = _records(tmp_path / "A"), _records(tmp_path / "F")
    drop = lambda rs: [{k: v for k, v in r.items() if k != "backend"} for r in rs]  # noqa: E731
    assert drop(_records(tmp_path / "B")) == drop(a)
    assert json.loads((tmp_path / "B" / "summary.json").read_text())["bank_misses"] == 0
    reasons = {r["adaptive"]["reason"] for r in a}
    assert reasons <= {"votes", "limit", "settled", "price"} and "settled" in reasons
    for mine, theirs in zip(a, f, strict=True):
        assert mine["rollouts"] <= theirs["rollouts"]
        assert len(mine["adaptive"]["widths"]) == mine["adaptive"]["stop_round"] + 1
        assert mine["adaptive"]["batch_spent"] <= 4 * 5 * 8
    assert "adaptive" not in f[0]
    total = _dora(tmp_path, "--backend", "toy", *args, "--total-rollouts", "8", "--pool-cap",
                  "2", "--out", str(tmp_path / "T"))  # fmt: skip
    assert total.returncode == 0, total.stderr
    t = _records(tmp_path / "T")
    for method in ("rebase", "dora"):
        assert sum(r["rollouts"] for r in t if r["method"] == method) <= 5 * 8
    assert {r["adaptive"]["batch_total"] for r in t} == {5 * 8}


def test_replay_misses_error_in_one_line_or_resample_with_a_flag(tmp_path):
    """A bank recorded at N = 4 (one final round) asked for N = 8: error by default (one line
    naming the prefix, status 2), or resample: the extra draws reuse recorded samples, flagged in
    the records and the summary."""
    args = ["--dataset", "math500", "--limit", "2", "--methods", "rebase", "--max-rounds", "1"]
    args += ["--no-plots"]
    bank = tmp_path / "BANK"
    done = _dora(tmp_path, "--backend", "toy", *args, "--budgets", "4", "--record", str(bank),
                 "--out", str(tmp_path / "A"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    replay = ["--backend", "replay", "--bank", str(bank), *args, "--budgets", "8"]
    missed = _dora(tmp_path, *replay, "--out", str(tmp_path / "E"))
    assert missed.returncode == 2, missed.stderr
    line = missed.stderr.strip().splitlines()[-1]
    assert line.startswith("dora: error: the bank") and "prefix" in line and "--on-miss" in line
    out = tmp_path / "R"
    resampled = _dora(tmp_path, *replay, "--on-miss", "resample", "--out", str(out))
    assert resampled.returncode == 0, resampled.stderr
    assert "bias risk" in resampled.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend_calls"] == 0 and summary["bank_misses"] == 2  # the two roots
    assert summary["resampled_samples"] == 8 and "bias_risk" in summary
    assert [r["resampled"] for r in _records(out)] == [4, 4]
    assert [r["resampled"] for r in _records(tmp_path / "A")] == [0, 0]
    assert "applies to --backend replay only" in _bad(tmp_path, "--on-miss", "resample")
    assert "--on-miss must be one of" in _bad(
        tmp_path, "--backend", "replay", "--bank", str(bank), "--on-miss", "guess"
    )


def _bank_rows(path: Path) -> dict[str, list]:
    """Every row of every table of a bank, sorted (a kill-and-resume check compares them)."""
    from backends.bank import TABLES

    with sqlite3.connect(path) as db:
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}


@pytest.mark.slow
def test_sigkill_while_recording_then_resume_loses_and_duplicates_no_sample(tmp_path):
    args = ["--backend", "toy", "--dataset", "math500", "--limit", "6", "--batch-size", "1",
            "--budgets", "4,8", "--methods", "rebase,dora", "--max-rounds", "6",
            "--no-plots"]  # fmt: skip
    whole = tmp_path / "whole"
    done = _dora(tmp_path, *args, "--record", str(tmp_path / "whole.sqlite"), "--out", str(whole))
    assert done.returncode == 0, done.stderr
    bank, out = tmp_path / "killed.sqlite", tmp_path / "killed"
    partial = _kill_after(
        tmp_path, [*args, "--record", str(bank), "--out", str(out)], out / "results.jsonl", 5, 0.02
    )
    assert 5 <= partial < 24, partial  # killed midway
    killed_counts = {t: len(rows) for t, rows in _bank_rows(bank).items()}
    resumed = _dora(tmp_path, *args, "--record", str(bank), "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed: " in resumed.stderr
    expected, got = _bank_rows(tmp_path / "whole.sqlite"), _bank_rows(bank)
    counts = {t: len(rows) for t, rows in got.items()}
    print(f"rows after the kill {killed_counts}; resumed {counts}; uninterrupted "
          f"{ {t: len(rows) for t, rows in expected.items()} }")  # fmt: skip
    assert any(killed_counts[t] < counts[t] for t in counts)  # the kill cut the recording short
    assert got == expected  # same rows: none lost, none twice
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
