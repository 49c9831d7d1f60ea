"""`simulations.learned_compare`: the declared selection rule (claim and controls) and a run with
tiny arguments on seeds other than 0 (the runner's `first_seed`)."""

import pytest

from simulations import learned_compare


def _cell(method, low, high):
    return {"method": method, "ci95": [low, high]}


def _pool(method, difference, low, high):
    return {"method": method, "difference": difference, "ci95": [low, high]}


def test_verdict_takes_a_method_only_when_it_clearly_wins():
    cells = [_cell("w1", -0.01, 0.03), _cell("w1", 0.0, 0.02), _cell("w2", 0.01, 0.04)]
    pools = [_pool("w1", 0.010, 0.002, 0.02), _pool("w2", 0.020, 0.01, 0.03)]
    assert learned_compare.verdict(pools, cells, "w0.5") == "w2"  # the larger clear winner
    # Controls: an interval touching 0 keeps the reference; so does one cell below 0.
    assert learned_compare.verdict([_pool("w1", 0.01, 0.0, 0.02)], cells, "w0.5") == "w0.5"
    worse = [*cells, _cell("w2", -0.03, -0.001)]
    assert learned_compare.verdict(pools[1:], worse, "w0.5") == "w0.5"


@pytest.mark.slow  # compiles a 4-slot search with two rules, twice
def test_learned_compare_runs_on_other_seeds(capsys, tmp_path):
    methods = {"learned": "learned", "dora": "dora"}
    both = learned_compare.run_world("paper-like", methods, (4,), 3, 2, 0, 4)
    second = learned_compare.run_world("paper-like", methods, (4,), 3, 1, 1, 4)
    assert [r["seed"] for r in second] == [1, 1]
    for r in second:  # seed 1 alone is seed 1 of the run from seed 0
        same = next(b for b in both if (b["method"], b["seed"]) == (r["method"], 1))
        assert list(r["per_problem_accuracy"]) == list(same["per_problem_accuracy"])
    args = ["--method", "learned=learned", "--method", "dora=dora", "--reference", "dora"]
    tiny = ["--worlds", "paper-like", "--budgets", "4", "--problems", "3", "--seeds", "1"]
    saved = ["--out", str(tmp_path / "r.jsonl")]
    assert learned_compare.main([*args, *tiny, "--max-rounds", "4", "--select", *saved]) == 0
    out = capsys.readouterr().out
    assert "| paper-like | 4 | 3 | learned |" in out and "selected (declared rule): " in out
    # The saved records give the same tables without a search.
    again = ["--records", str(tmp_path / "r.jsonl"), "--select"]
    assert learned_compare.main([*args, *again]) == 0
    assert capsys.readouterr().out == out
    assert learned_compare.main([*args, "--worlds", "nowhere"]) == 2
    assert "unknown world" in capsys.readouterr().err
    assert learned_compare.main(["--method", "x=learned:/nowhere", "--reference", "x"]) == 2
