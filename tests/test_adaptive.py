"""Adaptive compute (dora_jax.adaptive): stopping, the cross-problem pool, and the CLI's settings.

- Disabled (no stopping, cap 1) the pooled search IS the engine: `search_pooled` equals
  `jax.vmap(search)` bit for bit, for DORA and REBASE (one compiled search each way).
- Budget accounting: every problem's first round runs at N; each round the batch generates at
  most the pool P·N; a problem never runs wider than C = cap·N; the ledger counts exactly the
  slots that generated.
- Stopping never discards a finished solution: a problem stopped early votes over every finished
  solution it holds (checked against `voting.weighted_vote` over all of them).
- The posterior against a plain NumPy transcription of its formula; the pool's shares exact.
- Bad settings: one line, exit 2, before any work.
- The host-driven loop (`search_pooled_batch`, text backends): disabled it IS `search_batch` bit
  for bit on the toy backend (four rules); on the synthetic world it equals the compiled
  `search_pooled` with stopping and a total on; on the toy backend the samples the backend was
  asked for equal the ledger, and never exceed the pool or the total.
- A total budget: never exceeded, every problem's first round at N, a budget stop votes over
  every finished solution. Padding rows take no share of the pool.

Compilation dominates (~10–30 s per compiled search on a loaded 2-core machine): the engine
comparisons share two cached compiled functions and are marked slow.
"""

from __future__ import annotations

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import gammaln

from backends.datasets import Problem
from backends.host_world import HostWorld
from backends.toy import ToyBackend
from dora_cli.main import main
from dora_jax import voting
from dora_jax import world as W
from dora_jax.adaptive import (
    BUDGET,
    LIMIT,
    PRICED,
    SETTLED,
    VOTES,
    Adaptive,
    AdaptiveError,
    leader_posterior,
    pool_widths,
    search_pooled,
    search_pooled_batch,
)
from dora_jax.search import Rule, SearchConfig, SyntheticWorld, search, search_batch
from simulations import spec as spec_lib

P, N, CAP, T_MAX = 12, 8, 2, 12
SLOTS = CAP * N
WORLD = SyntheticWorld(W.preset("paper-like"))
CONFIG = SearchConfig(SLOTS, (Rule.make("dora"), Rule.make("rebase")), T_MAX)


@functools.cache
def _batch(seed: int = 3):
    k_problems, k_search = jax.random.split(jax.random.key(seed))
    problems = jax.vmap(WORLD.sample_problem)(jax.random.split(k_problems, P))
    return problems, jax.random.split(k_search, P)


@functools.cache
def _engine():
    one = functools.partial(search, world=WORLD, config=CONFIG)
    return jax.jit(
        jax.vmap(lambda k, p, r, b: one(k, p, rule=r, budget=b), in_axes=(0, 0, None, None))
    )


@functools.cache
def _pooled():
    return jax.jit(lambda k, p, r, params: search_pooled(k, p, WORLD, CONFIG, params, rule=r))


@functools.cache
def _run(rule: int, adaptive: Adaptive, control: bool = False):
    problems, keys = _batch()
    return _pooled()(keys, problems, jnp.int32(rule), adaptive.params(N, control=control))


@pytest.mark.slow
@pytest.mark.parametrize("rule", [0, 1], ids=["dora", "rebase"])
def test_disabled_is_the_engine_bit_for_bit(rule):
    problems, keys = _batch()
    want = _engine()(keys, problems, jnp.int32(rule), jnp.int32(N))
    got, record = _run(rule, Adaptive())
    paths = jax.tree_util.tree_leaves_with_path(want)
    for (path, a), b in zip(paths, jax.tree.leaves(got), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))
    assert np.all(np.asarray(record.reason) != SETTLED)
    # At most N wide throughout: the pool never widens anyone at cap 1.
    assert int(np.asarray(record.width).max()) == N


SETTINGS = [
    Adaptive(threshold=0.9, cap=CAP),
    Adaptive(price=0.002, cap=CAP),
    Adaptive(threshold=0.8, cap=1, min_votes=1),
]


@pytest.mark.slow
@pytest.mark.parametrize("adaptive", SETTINGS, ids=["threshold-cap2", "price-cap2", "cap1"])
def test_budget_accounting(adaptive):
    result, record = jax.tree.map(np.asarray, _run(0, adaptive))
    width, used = record.width, record.pool_used
    pool = P * N
    assert int(record.pool) == pool
    assert np.all(width[:, 0] == N), "every problem gets its first round at N"
    assert np.all(width <= adaptive.slots(N))
    assert np.all(width.sum(axis=0) <= pool) and np.all(used <= pool)
    # The ledger counts exactly the slots that generated, problem by problem and in total.
    np.testing.assert_array_equal(result.ledger.rollouts, result.trace.active.sum(axis=1))
    assert int(result.ledger.rollouts.sum()) == int(used.sum())
    # A running problem generates at most its width (its survivors may be fewer).
    assert np.all(result.trace.active <= width)
    assert np.all(np.isin(record.reason, [VOTES, LIMIT, SETTLED, PRICED]))
    assert np.any(np.isin(record.reason, [SETTLED, PRICED])), "nothing stopped early"


@pytest.mark.slow
@pytest.mark.parametrize("adaptive", SETTINGS, ids=["threshold-cap2", "price-cap2", "cap1"])
def test_an_early_stop_votes_over_every_finished_solution(adaptive):
    result, record = jax.tree.map(np.asarray, _run(0, adaptive))
    early = np.isin(record.reason, [SETTLED, PRICED])
    fin = result.finished
    for p in np.flatnonzero(early):
        count = int(result.num_finished[p])
        assert count >= adaptive.min_votes
        final_width = int(record.width[p, record.stop_round[p]])
        assert count < final_width, "an early stop happens before the vote is complete"
        every = np.arange(fin.answer.shape[1]) < count
        want = voting.weighted_vote(
            jnp.asarray(fin.answer[p]),
            jnp.asarray(fin.score[p]),
            jnp.asarray(fin.correct[p]),
            jnp.asarray(every),
        )
        assert bool(result.accuracy[p]) == bool(want)
        assert np.all(fin.round[p, :count] <= record.stop_round[p])
        assert np.all(fin.round[p, count:] == -1), "nothing finished after the stop"


@pytest.mark.slow
def test_the_control_reads_another_problems_votes():
    _, honest = _run(0, SETTINGS[0])
    _, control = _run(0, SETTINGS[0], True)
    assert not np.array_equal(np.asarray(honest.stop_round), np.asarray(control.stop_round))


def _posterior_reference(answers, scores, valid, kappa):
    """The module docstring's formula, transcribed plainly."""
    keep = [(a, s) for a, s, v in zip(answers, scores, valid, strict=True) if v and a != -1]
    if not keep:
        return 0.0
    groups: dict[int, list[float]] = {}
    totals: dict[int, float] = {}
    for a, s in keep:
        groups.setdefault(a, []).append(s)
        totals[a] = totals.get(a, 0.0) + s
    log_rho = {}
    for a, ss in groups.items():
        n, m = len(ss), min(max(np.mean(ss), 1e-6), 1 - 1e-6)
        x, y = kappa * m, kappa * (1 - m)
        log_rho[a] = gammaln(x + n) - gammaln(x) - gammaln(y + n) + gammaln(y)
    leader = max(totals, key=lambda a: (totals[a], -[k for k, _ in keep].index(a)))
    norm = 1.0 + sum(math.exp(v) for v in log_rho.values())
    return math.exp(log_rho[leader]) / norm


@pytest.mark.parametrize("kappa", [0.5, 15.0, 1e4])
def test_leader_posterior_matches_its_formula(kappa):
    rng = np.random.default_rng(0)
    for _ in range(20):
        f = 10
        answers = rng.integers(-1, 4, f)
        scores = rng.uniform(0.05, 0.95, f).astype(np.float32)
        valid = rng.uniform(size=f) < 0.7
        got = float(
            leader_posterior(
                jnp.asarray(answers, jnp.int32),
                jnp.asarray(scores),
                jnp.asarray(valid),
                jnp.float32(kappa),
            )
        )
        want = _posterior_reference(answers, scores.astype(np.float64), valid, kappa)
        assert abs(got - want) < 1e-4, (got, want)


def test_leader_posterior_limits():
    answers = jnp.asarray([0, 0, 0, 1], jnp.int32)
    scores = jnp.asarray([0.8, 0.8, 0.8, 0.3], jnp.float32)
    valid = jnp.ones(4, bool)
    # κ → ∞: agreeing solutions are independent evidence, ρ = Π s/(1 − s).
    odds = (0.8 / 0.2) ** 3
    want = odds / (1 + odds + 0.3 / 0.7)
    assert abs(float(leader_posterior(answers, scores, valid, jnp.float32(1e7))) - want) < 1e-3
    # Smaller κ: the same agreement counts for less.
    low = float(leader_posterior(answers, scores, valid, jnp.float32(1.0)))
    assert low < want
    assert float(leader_posterior(answers, scores, jnp.zeros(4, bool), jnp.float32(15.0))) == 0.0


def test_pool_widths_are_exact_shares():
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = int(rng.integers(1, 20))
        running = rng.uniform(size=p) < 0.6
        n, cap = int(rng.integers(1, 9)), int(rng.integers(1, 4))
        pool, c = p * n, cap * n
        w = np.asarray(pool_widths(jnp.asarray(running), jnp.int32(pool), jnp.int32(c)))
        assert w.sum() == min(pool, running.sum() * c)
        assert np.all(w[~running] == 0) and np.all(w <= c)
        assert np.all(w[running] >= min(c, n)), "a running problem never gets less than N"
        if running.any():
            assert w[running].max() - w[running].min() <= 1, "equal shares up to one slot"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 1.0}, "stop threshold must be in (0, 1)"),
        ({"threshold": 0.0}, "stop threshold must be in (0, 1)"),
        ({"threshold": float("nan")}, "stop threshold must be in (0, 1)"),
        ({"price": -0.1}, "stop price must be a finite number >= 0"),
        ({"price": float("inf")}, "stop price must be a finite number >= 0"),
        ({"kappa": 0.0}, "stop kappa must be"),
        ({"cap": 0}, "pool cap must be an integer >= 1"),
        ({"cap": 1.5}, "pool cap must be an integer >= 1"),
        ({"min_votes": 0}, "min votes must be an integer >= 1"),
    ],
)
def test_bad_settings_raise_one_line(kwargs, message):
    with pytest.raises(AdaptiveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Adaptive(**kwargs)


def test_disabled_settings_are_not_enabled():
    assert not Adaptive().enabled and Adaptive(cap=2).enabled and Adaptive(price=0.0).stops


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "--stop-threshold", "1.5"], "stop threshold must be in (0, 1), got 1.5"),
        (["simulate", "--stop-price", "-1"], "stop price must be a finite number >= 0"),
        (["simulate", "--pool-cap", "0"], "pool cap must be an integer >= 1"),
        (["bench", "--stop-threshold", "0"], "stop threshold must be in (0, 1), got 0.0"),
        (["bench", "--stop-price", "-2"], "stop price must be a finite number >= 0"),
        (["simulate", "--total-rollouts", "0"], "total rollouts must be an integer >= 1"),
        (
            ["simulate", "--budgets", "8,16", "--total-rollouts", "12"],
            "total rollouts 12 per problem is below the budget N = 16",
        ),
        (
            ["bench", "--backend", "toy", "--budgets", "8", "--total-rollouts", "4"],
            "total rollouts 4 per problem is below the budget N = 8",
        ),
        (["bench", "--backend", "toy", "--stop-price", "-1"], "stop price must be a finite"),
        (["simulate", "--total-finish"], "needs a total (--total-rollouts)"),
    ],
)
def test_cli_bad_settings_exit_2_before_work(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = main([*args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists(), "no work before the check"


def test_spec_adaptive_table(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text("budgets = [8]\n[adaptive]\nthreshold = 0.9\ncap = 2\n")
    spec = spec_lib.load_spec(path)
    assert spec.adaptive == Adaptive(threshold=0.9, cap=2)
    assert spec.slots_needed(8) == 16
    assert spec.describe()["adaptive"]["threshold"] == 0.9
    path.write_text("budgets = [8]\n[adaptive]\nthreshhold = 0.9\n")
    with pytest.raises(spec_lib.SpecError, match="unknown adaptive key 'threshhold'"):
        spec_lib.load_spec(path)
    path.write_text("budgets = [8]\n[adaptive]\nprice = -1\n")
    with pytest.raises(spec_lib.SpecError, match="stop price must be"):
        spec_lib.load_spec(path)
    path.write_text("budgets = [8]\n[adaptive]\ntotal = 4\n")
    with pytest.raises(spec_lib.SpecError, match="total rollouts 4 per problem is below"):
        spec_lib.load_spec(path)
    path.write_text("budgets = [8]\n[adaptive]\ntotal = 24\n")
    assert spec_lib.load_spec(path).adaptive == Adaptive(total=24)


# --- total budget and padding (compiled) ----------------------------------------------------

TOTALS = [
    Adaptive(total=3 * N, cap=CAP),  # binds: problems end by the total, no round to EOS
    Adaptive(threshold=0.9, total=5 * N, cap=CAP),
    Adaptive(total=3 * N, cap=CAP, finish=True),  # the total's last round generates to EOS
]


@pytest.mark.slow
@pytest.mark.parametrize("adaptive", TOTALS, ids=["total-binds", "threshold-total", "finish"])
def test_a_total_is_never_exceeded(adaptive):
    result, record = jax.tree.map(np.asarray, _run(0, adaptive))
    assert int(record.total) == P * adaptive.total
    assert np.all(record.width[:, 0] == N), "every problem gets its first round at N"
    assert np.all(result.trace.active[:, 0] == N)
    spent = int(result.ledger.rollouts.sum())
    assert spent == int(record.pool_used.sum()) <= P * adaptive.total
    # The schedule: by the end of round t at most (t + 1)·P·N.
    assert np.all(np.cumsum(record.pool_used) <= (np.arange(T_MAX) + 1) * P * N)
    assert np.all(result.trace.active <= record.width)
    if adaptive.threshold is None:
        assert np.any(record.reason == BUDGET), "the total never bound"
    # A budget stop votes over every finished solution it holds.
    for p in np.flatnonzero(record.reason == BUDGET):
        count = int(result.num_finished[p])
        every = np.arange(result.finished.answer.shape[1]) < count
        want = voting.weighted_vote(
            *(jnp.asarray(x[p]) for x in (result.finished.answer, result.finished.score)),
            jnp.asarray(result.finished.correct[p]),
            jnp.asarray(every),
        )
        assert bool(result.accuracy[p]) == bool(want)


@pytest.mark.slow
def test_padding_rows_take_no_share_of_the_pool():
    problems, keys = _batch()
    real = P - 3
    adaptive = SETTINGS[0]
    params = adaptive.params(N)._replace(rows=jnp.int32(real))
    padded, padded_record = _pooled()(keys, problems, jnp.int32(0), params)
    cut = jax.tree.map(lambda x: x[:real], (problems, keys))
    alone, alone_record = _pooled()(cut[1], cut[0], jnp.int32(0), adaptive.params(N))
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(alone), jax.tree.leaves(padded), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[:real], err_msg=str(path))
    assert int(padded_record.pool) == real * N
    np.testing.assert_array_equal(padded_record.pool_used, alone_record.pool_used)
    assert np.all(np.asarray(padded.ledger.rollouts)[real:] == 0)


# --- the host-driven loop (text backends) ---------------------------------------------------

TOY = [
    Problem(
        id=f"q{i}",
        problem=f"What is {i} + {i}?",
        answer=str(2 * i),
        level=None,
        subject=None,
        dataset="toy",
    )
    for i in range(6)
]
TOY_N, TOY_T = 4, 8


def _toy_world() -> HostWorld:
    return HostWorld(ToyBackend.for_problems(TOY), TOY)


def _toy_keys():
    return jax.random.split(jax.random.key(0), len(TOY))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["temperature_sampling", "beam_search", "rebase", "dora"])
def test_host_disabled_is_search_batch_bit_for_bit(method):
    config = SearchConfig.make(method, TOY_N, max_rounds=TOY_T)
    world = _toy_world()
    want = search_batch(_toy_keys(), world.problem_ids(), world, config)
    world = _toy_world()
    got, record = search_pooled_batch(
        _toy_keys(), world.problem_ids(), world, config, Adaptive(kappa=3.0).params(TOY_N)
    )
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))
    assert np.all(np.isin(np.asarray(record.reason), [VOTES, LIMIT]))


HOST_SETTINGS = [
    Adaptive(threshold=0.8, cap=2),
    Adaptive(price=0.01, cap=2, min_votes=1),
    Adaptive(total=2 * TOY_N, cap=3),
    Adaptive(total=2 * TOY_N, cap=3, finish=True),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "adaptive", HOST_SETTINGS, ids=["threshold", "price", "total", "total-finish"]
)
def test_host_budget_accounting_and_records(adaptive):
    config = SearchConfig.make("dora", adaptive.slots(TOY_N), max_rounds=TOY_T)
    world = _toy_world()
    result, record = search_pooled_batch(
        _toy_keys(), world.problem_ids(), world, config, adaptive.params(TOY_N)
    )
    result, record = jax.tree.map(np.asarray, (result, record))
    pool = len(TOY) * TOY_N
    # What the backend was asked for is what the ledger counts: the samples actually spent.
    asked = [sum(r.n for r in call) for call in world.backend.requests]
    assert asked == [int(u) for u in record.pool_used[: len(asked)]]
    assert sum(asked) == int(result.ledger.rollouts.sum())
    assert np.all(record.pool_used <= pool)
    if adaptive.total is not None:
        assert sum(asked) <= len(TOY) * adaptive.total
        assert np.any(record.reason == BUDGET)
    assert np.all(result.trace.active[:, 0] == TOY_N), "every problem gets its first round"
    assert np.all(record.stop_round >= 0) and np.all(record.reason != 0), "every problem ended"
    if adaptive.stops:
        assert np.any(np.isin(record.reason, [SETTLED, PRICED])), "nothing stopped early"
    # Early or budget stops vote over every finished solution.
    for p in np.flatnonzero(np.isin(record.reason, [SETTLED, PRICED, BUDGET])):
        count = int(result.num_finished[p])
        assert count <= int(record.width[p, record.stop_round[p]]) or record.reason[p] == BUDGET
        every = np.arange(result.finished.answer.shape[1]) < count
        want = voting.weighted_vote(
            jnp.asarray(result.finished.answer[p]),
            jnp.asarray(result.finished.score[p]),
            jnp.asarray(result.finished.correct[p]),
            jnp.asarray(every),
        )
        assert bool(result.accuracy[p]) == bool(want)


@pytest.mark.slow
def test_host_loop_equals_the_compiled_pooled_search():
    """The same decisions whether the loop is compiled or on the host (synthetic world)."""
    adaptive = Adaptive(threshold=0.85, total=4 * N, cap=CAP)
    problems, keys = _batch()
    want = _run(0, adaptive)
    config = SearchConfig(SLOTS, (Rule.make("dora"),), T_MAX)
    got = search_pooled_batch(keys, problems, WORLD, config, adaptive.params(N))
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))


@pytest.mark.slow
def test_adaptive_eval_totals_runs_with_tiny_arguments(tmp_path, capsys):
    from simulations import adaptive_eval

    path = tmp_path / "totals.json"
    assert adaptive_eval.main(["--totals", "--problems", "6", "--json", str(path)]) == 0
    points = json.loads(path.read_text())["levels"]["points"]
    totals = [v for k, v in points.items() if "total=" in k]
    assert len(totals) == 2 * 2 * len(adaptive_eval.TOTALS)
    for row in totals:
        assert row["rollouts"] <= 72 and 0.0 <= row["ended_by_total"] <= 1.0
        assert set(row["against_per_round_pool"]) >= {"accuracy_gain", "accuracy_gain_ci"}
    capsys.readouterr()
    assert adaptive_eval.main(["--totals", "--out", str(tmp_path / "x.png")]) == 2
    assert "--out plots the frontiers" in capsys.readouterr().err
