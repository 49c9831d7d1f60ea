"""The NumPy search baseline (benchmarks/numpy_search.py) runs the engine's search in the same law,
and benchmarks/floor.py runs and reports what the issue asks for.

Statistics with declared error: the engine and the NumPy search draw independent problems from one
law, so for each compared mean (PRM-weighted accuracy, rollout-steps per problem)
|mean_engine − mean_numpy| < k·sqrt(SE_engine² + SE_numpy²). With TEST_FAILURE_RATE split over
the two two-sided comparisons, k = Φ⁻¹(1 − TEST_FAILURE_RATE/4) ≈ 4.42. Each check has a control:
the same comparison against a NumPy search of a deliberately different world must fail.
"""

import dataclasses
import importlib.util
import json
import math
import pathlib
import statistics
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dora_jax import world as world_lib
from dora_jax.search import Rule, SearchConfig, SyntheticWorld, search

TEST_FAILURE_RATE = 2e-5  # for the two comparisons together (false failures, a correct baseline)
K = statistics.NormalDist().inv_cdf(1 - TEST_FAILURE_RATE / 4)

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROBLEMS = 600
BUDGET = 8


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


numpy_search = _load("numpy_search")


def _mean_se(x):
    x = np.asarray(x, np.float64)
    return x.mean(), x.std(ddof=1) / math.sqrt(len(x))


def _agree(a, b):
    """|mean_a − mean_b| < k·SE of the difference (a, b: per-problem samples)."""
    (ma, sa), (mb, sb) = _mean_se(a), _mean_se(b)
    return abs(ma - mb) < K * math.hypot(sa, sb)


def _numpy(config, seed=1):
    out = numpy_search.run(seed, config, "rebase", BUDGET, PROBLEMS)
    return [r.accuracy for r in out], [r.rollouts for r in out]


@pytest.fixture(scope="module")
def engine():
    config = world_lib.preset("paper-like")
    world = SyntheticWorld(config)
    keys = jax.random.split(jax.random.key(0), (PROBLEMS, 2))
    problems = jax.vmap(world.sample_problem)(keys[:, 0])
    search_config = SearchConfig(BUDGET, (Rule.make("rebase"),))
    result = jax.jit(jax.vmap(lambda k, p: search(k, p, world, search_config)))(
        keys[:, 1], problems
    )
    return np.asarray(result.accuracy), np.asarray(result.ledger.rollouts)


def test_numpy_search_matches_the_engine_in_law(engine):
    accuracy, steps = engine
    np_accuracy, np_steps = _numpy(world_lib.preset("paper-like"))
    assert _agree(accuracy, np_accuracy)
    assert _agree(steps, np_steps)


def test_the_comparison_catches_a_different_law(engine):
    """Controls: a longer-lived tree changes the steps, an easier prior the accuracy."""
    accuracy, steps = engine
    config = world_lib.preset("paper-like")
    _, np_steps = _numpy(dataclasses.replace(config, finish_hazard=0.3))
    assert not _agree(steps, np_steps)
    np_accuracy, _ = _numpy(dataclasses.replace(config, difficulty_a=0.8, difficulty_b=0.4))
    assert not _agree(accuracy, np_accuracy)


def test_word_count_is_the_layout_of_the_law():
    """Words per step: fixed parts of the law + E[sticks] + Gamma proposals, in their range."""
    config = world_lib.preset("paper-like")
    words = numpy_search.WordCount()
    out = numpy_search.run(0, config, "rebase", BUDGET, 50, words=words)
    per_step = words.uniform / sum(r.rollouts for r in out)
    fixed = 2 + 4 + config.embed_dim  # copy, node singles, vector
    sticks = 1 + config.alpha  # E[min(k + 1, M)] = Σ_{j<M} (α/(1+α))^j ≈ 1 + α
    gamma_min = 4 * 2  # four Gamma draws, ≥ 1 proposal of 2 words each
    assert fixed + sticks + gamma_min < per_step < fixed + sticks + gamma_min + 4 * (2 * 0.06 + 1)
    # Marsaglia–Tsang's acceptance at shape 1 is 0.9517 (→ 1 for large shapes)
    assert numpy_search.gamma_words(np.array([1.0]))[0] == pytest.approx(2 / 0.9517, abs=1e-3)
    assert numpy_search.gamma_words(np.array([1e4]))[0] == pytest.approx(2.0, abs=1e-3)


def _floor(*extra):
    args = ["--quick", "--json", "--problems", "8", "--budgets", "4"]
    args += ["--numpy-problems", "4", "--count-problems", "4", *extra]
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "floor.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_floor_benchmark_records():
    result = _floor("--rules", "rebase")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["rule"] for r in records] == ["rebase"]
    for r in records:
        assert (r["P"], r["N"]) == (8, 4)
        assert r["steps_per_s"] > 0 and r["floor_ratio"] > 0
        assert 0 < r["utilization"] <= 1
        assert r["words_per_step"] > r["uniform_words_per_step"] > 0
        assert r["law_steps_per_s"] > 0 and r["law_ratio"] > 0 and r["law_over_floor"] > 0
        assert r["cpu_floor_ratio"] > 0 and r["cpu_law_ratio"] > 0
    assert records[0]["numpy_ratio"] > 0
    assert records[0]["numpy_problems"] == 4


@pytest.mark.slow
def test_floor_benchmark_times_both_engine_paths():
    """--engine both: jax.vmap(search) and the lane pool on the same problems, the same
    accuracy and steps (the same searches), the pool computing no more slot-steps."""
    result = _floor("--rules", "rebase", "--engine", "both", "--numpy-problems", "0")
    assert result.returncode == 0, result.stderr
    vmap, pool = (json.loads(line) for line in result.stdout.splitlines())
    assert (vmap["engine"], pool["engine"]) == ("vmap", "pool(1)")
    assert pool["accuracy"] == vmap["accuracy"]
    assert pool["steps_per_problem"] == vmap["steps_per_problem"]
    # One lane runs the queue serially: Σ rounds · N computed, ≤ P · max rounds · N.
    assert vmap["utilization"] <= pool["utilization"] <= 1


@pytest.mark.slow
def test_floor_benchmark_times_path_lanes_for_temperature_sampling():
    """--engine all for temperature sampling: vmap, the pool's problem lanes and its path
    lanes (P/8·N = 4 of them), the same searches; the path lanes waste the fewest slot-steps."""
    result = _floor("--rules", "temperature_sampling", "--engine", "all", "--numpy-problems", "0")
    assert result.returncode == 0, result.stderr
    vmap, problems, paths = (json.loads(line) for line in result.stdout.splitlines())
    assert (vmap["engine"], problems["engine"], paths["engine"]) == ("vmap", "pool(1)", "paths(4)")
    for r in (problems, paths):
        assert r["accuracy"] == vmap["accuracy"]
        assert r["steps_per_problem"] == vmap["steps_per_problem"]
    assert vmap["utilization"] <= problems["utilization"] <= paths["utilization"] <= 1


def _fig3(*extra):
    args = ["--problems", "3", "--budgets", "4", "--json", *extra]
    return _script("fig3_grid.py", *args)


@pytest.mark.slow
def test_fig3_grid_shares_a_search_between_worlds_that_differ_in_their_prior_only():
    """Two fitted worlds that differ only in difficulty_a/b: one compiled search world, and
    the same per-world accuracies as one program per world."""
    worlds = ["--worlds", "paper-llama-1b-math500,paper-llama-3b-math500"]
    methods = ["--methods", "rebase,beam_search"]
    shared = _fig3(*worlds, *methods)
    apart = _fig3(*worlds, *methods, "--no-share-worlds")
    assert shared.returncode == 0 and apart.returncode == 0, shared.stderr + apart.stderr
    *cells, summary = (json.loads(line) for line in shared.stdout.splitlines())
    *cells_apart, summary_apart = (json.loads(line) for line in apart.stdout.splitlines())
    assert (summary["world_groups"], summary_apart["world_groups"]) == (1, 2)
    assert len(cells) == 4 and all(0 <= c["accuracy"] <= 1 for c in cells)
    key = lambda c: (c["world"], c["method"], c["N"])  # noqa: E731
    assert sorted(cells, key=key) == sorted(cells_apart, key=key)
    assert summary["rollout_steps"] == summary_apart["rollout_steps"] > 0
    assert summary["total_s_extrapolated"] >= summary["compile_s"] > 0


@pytest.mark.slow
def test_fig3_grid_world_switch_and_path_lanes_change_no_cell():
    """One program per N for every search world (the world a runtime index) with temperature
    sampling on path lanes gives the cells of one program per search world with all methods on
    problem lanes, each problem's rollout-steps included, and so do one thread and two (the
    default) running the calls; the control, another seed, moves
    them."""
    worlds = ["--worlds", "paper-llama-1b-math500,paper-llama-1b-aime2024"]
    methods = ["--methods", "temperature_sampling,rebase"]
    runs = {
        name: _fig3(*worlds, *methods, "--per-problem", *extra)
        for name, extra in (
            ("new", ()),
            ("old", ("--no-world-switch", "--no-split-paths", "--compile-threads", "0")),
            ("threads", ("--run-threads", "1")),  # the default is 2
            ("control", ("--seed", "1")),
        )
    }
    assert all(r.returncode == 0 for r in runs.values()), [r.stderr for r in runs.values()]
    parsed = {k: [json.loads(line) for line in r.stdout.splitlines()] for k, r in runs.items()}
    key = lambda c: (c["world"], c["method"], c["N"])  # noqa: E731
    cells = {k: sorted(v[:-1], key=key) for k, v in parsed.items()}
    assert (parsed["new"][-1]["programs"], parsed["old"][-1]["programs"]) == (2, 2)
    assert len(cells["new"]) == 4
    for c in cells["new"]:
        assert len(c["problem_steps"]) == 3 and sum(c["problem_steps"]) == c["rollout_steps"] > 0
    assert cells["new"] == cells["old"] == cells["threads"]
    assert parsed["new"][-1]["rollout_steps"] == parsed["old"][-1]["rollout_steps"]
    assert parsed["threads"][-1]["rollout_steps"] == parsed["new"][-1]["rollout_steps"]
    assert parsed["control"][-1]["rollout_steps"] != parsed["new"][-1]["rollout_steps"]


@pytest.mark.slow
def test_fig3_grid_draws_a_worlds_problems_whatever_other_worlds_run():
    """A world's problems are keyed by its place among the nine, so a run of that world alone
    gives the cells (each problem's rollout-steps included) of a run with a world before it; the
    control, another seed, moves them."""

    def cells(*worlds, seed="0"):
        result = _fig3(
            "--worlds", ",".join(worlds), "--methods", "rebase", "--per-problem", "--seed", seed
        )
        assert result.returncode == 0, result.stderr
        return {c["world"]: c for c in map(json.loads, result.stdout.splitlines()[:-1])}

    both = cells("paper-llama-1b-math500", "paper-llama-3b-aime2024")
    alone = cells("paper-llama-3b-aime2024")
    assert alone["paper-llama-3b-aime2024"] == both["paper-llama-3b-aime2024"]
    control = cells("paper-llama-3b-aime2024", seed="1")
    assert control != alone


def test_fig3_grid_rejects_bad_input():
    result = _fig3("--methods", "nope")
    assert result.returncode == 2
    assert "unknown 'nope'" in result.stderr.strip().splitlines()[-1]


def test_floor_benchmark_rejects_bad_input():
    result = _floor("--rules", "nope")
    assert result.returncode == 2
    assert "unknown rule 'nope'" in result.stderr.strip().splitlines()[-1]


def test_floor_kernel_folds_exactly_the_words_of_the_stream():
    floor = _load("floor")
    digest = jnp.asarray([1, 2], jnp.uint32)
    counters = jnp.arange(2 * floor.CHUNK, dtype=jnp.uint32)
    words = np.asarray(floor.counter_words(digest, counters))
    assert int(floor._floor_kernel(digest, jnp.int32(2))) == int(np.bitwise_xor.reduce(words))


def _script(name, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_sum_order_benchmark_runs_with_tiny_arguments():
    result = _script("sum_order.py", "--problems", "3", "--budget", "4", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.endswith("batch-invariant: True") for line in lines)


@pytest.mark.slow
def test_profile_round_runs_with_tiny_arguments():
    args = ("--problems", "2", "--budget", "4", "--repeats", "1")
    result = _script("profile_round.py", *args, "--no-engine")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("search_round (rebase)")
    assert len(result.stdout.splitlines()) == 1 + 15  # header, the round, the select, 13 parts


@pytest.mark.slow
def test_profile_round_pool_table_runs_with_tiny_arguments():
    """The pool round's table: its header, the rules' header and 16 parts, a number per rule
    (DORA's embedding only for DORA)."""
    args = ("--problems", "2", "--budget", "4", "--repeats", "1")
    result = _script("profile_round.py", *args, "--no-world")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 16
    assert lines[1].split() == ["rebase", "dora"]
    rows = {line[:36].strip(): line[36:].split() for line in lines[2:]}
    assert rows["embed survivors (DORA)"][0] == "—"
    assert all(len(cells) == 2 for cells in rows.values())
    assert float(rows["pool round (search_pool)"][0]) > 0
