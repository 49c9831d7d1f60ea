"""backends.bank: record a toy run, replay it with no model: identical records, hits and misses;
common random numbers (every policy draws sample j of a prefix alike); --on-miss modes."""

from __future__ import annotations

import sqlite3

import pytest

from backends.bank import BankError, BankMiss, RecordingBackend, ReplayBackend, SampleBank
from backends.datasets import Problem
from backends.host_world import HostWorld
from backends.protocol import Prefix, StepRequest
from backends.toy import ToyBackend
from dora_jax.search import Rule
from simulations import bench

PROBLEMS = tuple(
    Problem(f"b{i}", f"What is {i} squared?", str(i * i), None, None, "toy") for i in range(3)
)


TOY = {"backend": "toy", **ToyBackend.settings()}  # what `dora bench --record` stores
OTHER_DORA = Rule.make("dora", similarity_temperature=0.3)  # a sixth policy: DORA at another T_s


def _spec(budgets=(4,), backend="toy", rules=None, seeds=(0,)):
    return bench.BenchSpec(
        problems=PROBLEMS,
        rules=rules or (Rule.make("rebase"), Rule.make("dora")),
        budgets=budgets,
        seeds=seeds,
        backend=backend,
        max_rounds=6,
    )


def _strip(records):
    return [{k: v for k, v in bench.strip_timing(r).items() if k != "backend"} for r in records]


def _record(tmp_path):
    store = SampleBank(tmp_path / "bank.sqlite")
    live = ToyBackend.for_problems(PROBLEMS)
    recording = RecordingBackend(live, store, TOY)
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


def _requests(rule: Rule, seed: int, tmp_path) -> tuple[ToyBackend, dict]:
    """A live toy run of one policy: its backend and {(problem, steps, final): (seed, n)}."""
    live = ToyBackend.for_problems(PROBLEMS)
    bench.run(
        _spec(rules=(rule,), seeds=(seed,)),
        tmp_path / f"{rule.label}-{seed}",
        make_world=lambda ps: HostWorld(live, ps),
    )
    asked = {}
    for call in live.requests:
        keys = [(r.prefix.problem, r.prefix.steps, r.final) for r in call]
        assert len(set(keys)) == len(keys)  # one request per distinct prefix per round
        asked.update({k: (r.seed, r.n) for k, r in zip(keys, call, strict=True)})
    return live, asked


def test_two_policies_draw_the_same_samples_of_a_shared_prefix(tmp_path):
    """Common random numbers: same problem key → same seed for the same prefix, whatever the
    policy; the control (another run seed) shares no seed."""
    _, rebase = _requests(Rule.make("rebase"), 0, tmp_path)
    _, dora = _requests(Rule.make("dora"), 0, tmp_path)
    _, other_seed = _requests(Rule.make("dora"), 1, tmp_path)
    shared = rebase.keys() & dora.keys()
    roots = {k for k in shared if not k[1]}
    assert len(roots) == len(PROBLEMS) and len(shared) > len(roots)  # trees meet beyond the root
    assert all(rebase[k][0] == dora[k][0] for k in shared)
    common = dora.keys() & other_seed.keys()
    assert roots <= common and not any(dora[k][0] == other_seed[k][0] for k in common)


def test_sample_j_is_the_jth_draw_whatever_n():
    toy = ToyBackend.for_problems(PROBLEMS)
    prefix = Prefix(PROBLEMS[0].problem, ("Step 1: idea 0 of 1\n\n",))
    small, large = toy.generate([StepRequest(prefix, 3, seed=5), StepRequest(prefix, 7, seed=5)])
    assert large[:3] == small and large[3:] != large[:3]


def test_a_sixth_policy_replays_with_fallthrough_and_equals_its_live_run(tmp_path):
    store, _, _ = _record(tmp_path)
    before = store.counts()
    replay = ReplayBackend(
        SampleBank(store.path),
        on_miss="fallthrough",
        live=ToyBackend.for_problems(PROBLEMS),
        live_settings=TOY,
    )
    sixth = _spec(rules=(OTHER_DORA,), backend="replay")
    replayed = bench.run(sixth, tmp_path / "R", make_world=lambda ps: HostWorld(replay, ps))
    live = ToyBackend.for_problems(PROBLEMS)
    direct = bench.run(
        _spec(rules=(OTHER_DORA,)), tmp_path / "L", make_world=lambda ps: HostWorld(live, ps)
    )
    assert _strip(replayed) == _strip(direct)  # the bank's draws are the live draws
    print(f"sixth policy {OTHER_DORA.label}: hits {replay.hits}, misses {replay.misses}")
    assert replay.hits > 0 and replay.misses > 0 and 0 < replay.calls < sum(live.calls.values())
    after = store.counts()
    assert after["samples"] > before["samples"]  # what fell through is recorded
    again = ReplayBackend(SampleBank(store.path))  # now the bank answers it all
    bench.run(sixth, tmp_path / "R2", make_world=lambda ps: HostWorld(again, ps))
    assert again.misses == 0 and again.calls == 0


def test_fallthrough_refuses_a_live_backend_of_other_settings(tmp_path):
    store, _, _ = _record(tmp_path)
    live = ToyBackend.for_problems(PROBLEMS, noise=0.1)
    with pytest.raises(BankError, match="fallthrough would mix"):
        ReplayBackend(store, on_miss="fallthrough", live=live, live_settings={**TOY, "noise": 0.1})
    with pytest.raises(BankError, match="needs the live backend"):
        ReplayBackend(store, on_miss="fallthrough")
    with pytest.raises(BankError, match="on_miss must be one of"):
        ReplayBackend(store, on_miss="guess")


def test_resample_reuses_recorded_draws_and_flags_them(tmp_path):
    store = SampleBank(tmp_path / "bank.sqlite")
    recording = RecordingBackend(ToyBackend.for_problems(PROBLEMS), store, TOY)
    prefix = Prefix(PROBLEMS[1].problem)
    recorded = recording.generate([StepRequest(prefix, 2, seed=9)])[0]
    replay = ReplayBackend(SampleBank(store.path), on_miss="resample")
    got = replay.generate([StepRequest(prefix, 5, seed=9)])[0]
    assert got[:2] == recorded and not any(s.resampled for s in got[:2])
    assert [s.text for s in got[2:]] == [s.text for s in (recorded * 2)[:3]]
    assert all(s.resampled for s in got[2:]) and replay.resampled == 3 and replay.misses == 1
    with pytest.raises(BankMiss, match="no sample to resample"):
        replay.generate([StepRequest(Prefix(PROBLEMS[2].problem), 2, seed=9)])
    with pytest.raises(BankMiss, match="no score"):  # a score cannot be reused for another text
        replay.score([prefix])
