"""backends.bank: record a toy run, replay it with no model: identical records, hits and misses."""

from __future__ import annotations

import sqlite3

import pytest

from backends.bank import BankMiss, RecordingBackend, ReplayBackend, SampleBank
from backends.datasets import Problem
from backends.host_world import HostWorld
from backends.toy import ToyBackend
from dora_jax.search import Rule
from simulations import bench

PROBLEMS = tuple(
    Problem(f"b{i}", f"What is {i} squared?", str(i * i), None, None, "toy") for i in range(3)
)


def _spec(budgets=(4,), backend="toy"):
    return bench.BenchSpec(
        problems=PROBLEMS,
        rules=(Rule.make("rebase"), Rule.make("dora")),
        budgets=budgets,
        seeds=(0,),
        backend=backend,
        max_rounds=6,
    )


def _strip(records):
    return [{k: v for k, v in bench.strip_timing(r).items() if k != "backend"} for r in records]


def _record(tmp_path):
    store = SampleBank(tmp_path / "bank.sqlite")
    live = ToyBackend.for_problems(PROBLEMS)
    recording = RecordingBackend(live, store, {"backend": "toy", **ToyBackend.settings()})
    records = bench.run(
        _spec(), tmp_path / "A", make_world=lambda problems: HostWorld(recording, problems)
    )
    return store, live, records


def test_replay_equals_the_recorded_run_with_no_model_call(tmp_path):
    store, live, recorded = _record(tmp_path)
    assert sum(live.calls.values()) > 0
    counts = store.counts()
    assert all(counts[t] > 0 for t in ("samples", "scores", "embeddings", "prompts")), counts
    replay = ReplayBackend(SampleBank(store.path))
    replayed = bench.run(
        _spec(backend="replay"), tmp_path / "B", make_world=lambda ps: HostWorld(replay, ps)
    )
    assert _strip(replayed) == _strip(recorded)
    assert replay.calls == 0 and replay.hits > 0 and replay.misses == 0


def test_recording_the_same_run_again_adds_no_row(tmp_path):
    store, _, _ = _record(tmp_path)
    before = store.counts()
    again = RecordingBackend(
        ToyBackend.for_problems(PROBLEMS), store, {"backend": "toy", **ToyBackend.settings()}
    )
    bench.run(_spec(), tmp_path / "A2", make_world=lambda ps: HostWorld(again, ps))
    assert store.counts() == before  # keyed rows: nothing duplicated
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_request_the_bank_never_saw_is_a_one_line_miss(tmp_path):
    store, _, _ = _record(tmp_path)
    replay = ReplayBackend(SampleBank(store.path))
    with pytest.raises(BankMiss, match=r"has no \d+ samples .* for problem [0-9a-f]{12}, prefix"):
        bench.run(
            _spec(budgets=(8,), backend="replay"),  # another budget: other requests
            tmp_path / "C",
            make_world=lambda ps: HostWorld(replay, ps),
        )
    assert replay.misses == 1
