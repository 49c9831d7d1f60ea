"""`simulations.bench`: units, records, resume after an interruption, summary (sim and host)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from backends.datasets import Problem
from backends.host_world import HostWorld
from backends.toy import ToyBackend
from dora_jax import world as world_lib
from dora_jax.search import Rule
from simulations import bench, report

PROBLEMS = tuple(
    Problem(
        id=f"t{i}",
        problem=f"What is {i} + {i}?",
        answer=str(2 * i),
        level=1 + i % 5,
        subject=None,
        dataset="toy",
    )
    for i in range(4)
)
FIELDS = {
    "method",
    "budget",
    "seed",
    "accuracy",
    "majority_accuracy",
    "pass_at_n",
    "rollouts",
    "tokens",
    "flops",
    "problem",
    "dataset",
    "level",
    "backend",
}


def _spec(backend="sim", **kw):
    base = dict(
        problems=PROBLEMS,
        rules=(Rule.make("rebase"), Rule.make("dora")),
        budgets=(4, 8),
        seeds=(0, 1),
        backend=backend,
        world=world_lib.preset("paper-like"),
        max_rounds=6,
    )
    return bench.BenchSpec(**{**base, **kw})


_WORLD: list[HostWorld] = []


def _toy_world(problems):
    """One host world for the whole module, so its compiled rounds are reused across runs."""
    if not _WORLD:
        _WORLD.append(HostWorld(ToyBackend({p.problem: p.answer for p in PROBLEMS}), problems))
    assert _WORLD[0].problems == list(problems)
    return _WORLD[0]


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("backend", ["sim", "toy"])
def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, backend):
    make = _toy_world if backend == "toy" else None
    spec = _spec(backend, batch_size=2)
    whole = bench.run(spec, tmp_path / "whole", make_world=make)
    assert len(whole) == len(PROBLEMS) * 2 * 2 * 2
    assert FIELDS <= set(whole[0])

    calls = {"n": 0}

    def stop_after_three(label, count):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Interrupt

    out = tmp_path / "resumed"
    with pytest.raises(Interrupt):
        bench.run(spec, out, make_world=make, progress=stop_after_three)
    # a torn line, as a SIGKILL during a write would leave
    with open(out / "results.jsonl", "a") as handle:
        handle.write('{"problem": "t0", "meth')
    resumed = bench.run(spec, out, make_world=make)
    strip = [bench.strip_timing(r) for r in resumed]
    assert strip == [bench.strip_timing(r) for r in whole]
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(whole)  # nothing duplicated, nothing lost, torn line gone
    on_disk = sorted(json.dumps(bench.strip_timing(json.loads(x)), sort_keys=True) for x in lines)
    assert on_disk == sorted(json.dumps(r, sort_keys=True) for r in strip)
    if backend == "toy":
        trees = [json.loads(x) for x in (out / "trees.jsonl").read_text().splitlines()]
        assert sorted(bench.unit_key(t) for t in trees) == sorted(bench.unit_key(r) for r in whole)
        assert all(t["nodes"][0]["parent"] == -1 for t in trees)


def test_budget_is_respected_in_every_record():
    records = bench.run(_spec("toy", seeds=(0,), batch_size=2), _tmp(), make_world=_toy_world)
    for r in records:
        sums = {sum(row) for row in r["allocations"]}
        assert sums <= {0, r["budget"]}, (r["method"], sums)


def _tmp():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp())


def test_summary_and_plots(tmp_path):
    records = bench.run(_spec(batch_size=2), tmp_path)
    rows = report.summarize(records)
    assert {(r["method"], r["budget"]) for r in rows} == {
        (m, n) for m in ("rebase", "dora") for n in (4, 8)
    }
    for r in rows:
        assert r["seeds"] == 2 and r["problems"] == len(PROBLEMS)
        lo, hi = r["accuracy_ci95"]
        assert lo <= r["accuracy"] <= hi
        values = [
            x["accuracy"]
            for x in records
            if (x["method"], x["budget"]) == (r["method"], r["budget"])
        ]
        assert r["accuracy"] == pytest.approx(np.mean(values))
    table = report.table(rows)
    assert "rebase" in table and "dora" in table
    paths = report.write(tmp_path, rows, records, title="toy", plots=True)
    assert {p.name for p in paths} == {
        "accuracy_vs_budget.png",
        "accuracy_vs_flops.png",
        "accuracy_by_level.png",
    }
    levels = json.loads((tmp_path / "summary.json").read_text())["by_level"]
    assert sum(r["n"] for r in levels if (r["method"], r["budget"]) == ("dora", 8)) == 4


def test_a_corrupt_middle_line_is_one_whole_line_naming_file_and_line(tmp_path):
    spec = _spec(seeds=(0,), budgets=(4,))
    bench.run(spec, tmp_path)
    path = tmp_path / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1][:20] + "\n"  # a damaged line that is not the last one
    path.write_text("".join(lines))
    with pytest.raises(bench.BenchError) as info:
        bench.run(spec, tmp_path)
    message = str(info.value)
    assert "\n" not in message and f"{path}, line 2: not valid JSON" in message
    assert message.endswith("move the file away to start afresh")


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(budgets=(2,), rules=(Rule.make("beam_search"),)), "beam width"),
        (dict(budgets=(0,)), "budgets"),
        (dict(seeds=()), "seeds"),
        (dict(problems=()), "no problems"),
        (dict(batch_size=0), "batch size"),
    ],
)
def test_bad_specs(kw, match):
    with pytest.raises(bench.BenchError, match=match):
        _spec(**kw)


def test_a_folder_holds_one_run_and_names_the_first_other_setting(tmp_path):
    spec = _spec(seeds=(0,), budgets=(4,))
    bench.prepare(spec, tmp_path)
    bench.check(_spec(seeds=(0,), budgets=(4,), batch_size=3), tmp_path)  # records ignore it
    other = dataclasses.replace(PROBLEMS[1], answer="-1")
    changes = [
        (dict(backend="toy"), "backend"),
        (dict(problems=PROBLEMS[:2]), "problems"),
        (dict(problems=(PROBLEMS[0], other, *PROBLEMS[2:])), "dataset_sha256"),
        (dict(rules=(Rule.make("rebase", temperature=0.2), Rule.make("dora"))), "methods"),
        (dict(budgets=(8,)), "budgets"),
        (dict(seeds=(0, 1)), "seeds"),
        (dict(max_rounds=5), "max_rounds"),
        (dict(world=world_lib.preset("redundant")), "world"),
    ]
    for change, name in changes:
        with pytest.raises(bench.BenchError, match=f"holds another run: {name} is ") as info:
            bench.run(_spec(**{"seeds": (0,), "budgets": (4,), **change}), tmp_path)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "results.jsonl").exists()  # nothing ran


def test_fresh_moves_the_old_run_aside_and_counts_only_the_new_one(tmp_path):
    bench.run(_spec(seeds=(0,), budgets=(4,)), tmp_path)
    old = (tmp_path / "results.jsonl").read_text()
    small = _spec(seeds=(0,), budgets=(4,), problems=PROBLEMS[:2])
    done, moved = bench.prepare(small, tmp_path, fresh=True)
    assert (done, moved) == (0, tmp_path / "replaced-1")
    assert (moved / "results.jsonl").read_text() == old
    records = bench.run(small, tmp_path)
    assert {r["problem"] for r in records} == {"t0", "t1"} and len(records) == 4
    assert bench.prepare(small, tmp_path) == (4, None)  # a rerun resumes: all 4 done


def test_results_without_a_fingerprint_are_refused(tmp_path):
    (tmp_path / "results.jsonl").write_text("")
    with pytest.raises(bench.BenchError, match=r"without run\.json"):
        bench.run(_spec(seeds=(0,), budgets=(4,)), tmp_path)
