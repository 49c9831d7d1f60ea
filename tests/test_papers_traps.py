"""`python -m papers.traps`: the trap check on one cell, smoke-tested with tiny arguments (slow
stage: it compiles the search for two worlds), and its one-line refusals. No assertion is
statistical."""

from __future__ import annotations

import json

import pytest

from papers import traps


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rates", "0.01"], "must start with 0"),
        (["--rates", "0,1.5"], "must start with 0"),
        (["--rates", "x"], "could not convert"),
        (["--problems", "1"], "--problems must be >= 2"),
        (["--trap-score", "1"], "--trap-score must lie in (0, 1)"),
    ],
)
def test_bad_arguments_are_one_line(capsys, args, message):
    assert traps.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_the_control_is_the_fitted_world():
    """Rate 0 is the cell's preset grid point with no trap knob (so its simulation is the fit's
    own, cached or not); a rate adds the knob."""
    assert traps.knobs_of(traps.CELL, 0.0) == {"label_keep": 0.99, "kappa": 30.0, "alpha": 1.0}
    assert traps.knobs_of(traps.CELL, 0.01)["trap_rate"] == 0.01
    assert traps.knobs_of(traps.CELL, 0.01, 0.7)["trap_score"] == 0.7


@pytest.mark.slow
def test_tiny_run_writes_its_table_and_json(tmp_path, capsys):
    code = traps.main(["--rates", "0,0.05", "--problems", "4", "--cache", str(tmp_path / "c"),
                       "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "traps-llama-1b-math500.json").read_text())
    assert [r["trap_rate"] for r in result["rows"]] == [0.0, 0.05]
    for r in result["rows"]:
        assert len(r["guided_excess"]) == len(r["dora_error"]) == len(result["budgets"])
        assert f"{r['chi2']:>8.0f}" in printed
    assert "traps remove the excess" in printed
