"""The Beta-model claims (theory/beta_claims.py) in fast mode: the verdicts the mathematics
implies, so a regression in the core (optimal_allocation, expected_failure) changes a verdict;
and `dora verify` in-process (JSON record, controls, bad input)."""

from __future__ import annotations

import itertools
import json

from dora_cli.main import main
from theory.core import run_cached


def fast(claim_id: str, control: bool = False):
    return run_cached(claim_id, "fast", control=control)


def test_eq5_success_holds_and_fails_where_assumption_1_breaks():
    v = fast("eq5-success")
    assert v.verdict == "holds" and v.interval is not None and v.k_se > 3
    assert v.interval[1] <= 0.01  # every case within the tolerance, interval included
    control = fast("eq5-success", True)
    assert control.verdict == "fails" and control.interval[0] > 0.01


def test_beta_moment_is_an_identity_to_quadrature_precision():
    v = fast("beta-moment")
    assert v.verdict == "holds" and v.value < 1e-9
    assert fast("beta-moment", True).value > 0.1


def test_digamma_step_is_judged_as_the_identity_the_paper_states():
    v = fast("digamma-step")
    assert v.verdict == "fails"
    assert v.details["max_rel_err"] > 0.5 and v.details["median_rel_err"] > 0.05
    assert v.details["digamma_vs_harmonic_sum"] < 1e-9  # Σ 1/(κ+r) = ψ(κ+n) − ψ(κ) is exact
    maxes = [b["max"] for b in v.details["by_x_eff"]]
    # the error grows with x = κw/(κ+r) (the top bins can tie: both hold the r = 0, w = 0.9 term)
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(maxes)) and maxes[0] < 0.01 < maxes[-1]


def test_prop1_limits_hold():
    assert fast("prop1-kappa-inf").verdict == "holds"
    assert fast("prop1-kappa-inf").details["sharp: below 0.999·κ* not all on argmax"]
    zero = fast("prop1-kappa-0")
    assert zero.verdict == "holds"
    far = zero.details["mean L1/N between the optimum and round(N·w) (B.2's reading)"]
    assert max(far.values()) > 0.1


def test_prop1_linear_is_approximate_not_exact():
    v = fast("prop1-linear")
    assert v.verdict in ("holds-approximately", "fails", "inconclusive")
    assert any(row["fraction_negative_B"] > 0 for row in v.details["table"])  # caveat (c)


def test_rebase_near_optimal_in_the_small_kappa_region():
    v = fast("rebase-near-optimal")
    assert v.verdict in ("holds", "holds-approximately")
    assert v.interval[1] <= 0.10
    beyond = v.details["relative excess failure beyond the region"]
    assert beyond["κ=10"] > 0.1  # outside the declared region REBASE loses


def test_verify_cli_json_with_controls(capsys, tmp_path):
    code = main(["verify", "--fast", "--controls", "--only", "eq5-success,beta-moment", "--json",
                 "--out", str(tmp_path)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    records = json.loads(out)
    assert [r["claim_id"] for r in records] == ["eq5-success", "beta-moment"]
    for r in records:
        for key in ("verdict", "quantity", "tolerance", "region", "samples", "interval"):
            assert key in r
        assert r["control"]["verdict"] != r["verdict"] and r["control"]["flips"] is True
    assert records[0]["interval"] is not None and records[1]["interval"] is None
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# dora verify") and "\\u" not in report and "≤" in report
    assert (tmp_path / "eq5-success.png").stat().st_size > 0
    assert json.loads((tmp_path / "verdicts.json").read_text())[0]["claim_id"] == "eq5-success"


def test_verify_cli_table(capsys):
    code = main(["verify", "--fast", "--only", "beta-moment"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "beta-moment: holds" in out and "tolerance: holds if ≤ 1e-09" in out


def test_verify_cli_bad_input(capsys):
    code = main(["verify", "--only", "eq5-success,no-such-claim"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("dora: error: unknown claim id(s) no-such-claim")
    assert len(err.strip().splitlines()) == 1
    assert main(["verify", "--fast", "--thorough"]) == 2


def test_prop1_limits_are_temperature_sampling_and_beam_search_in_the_objective():
    v = fast("prop1-limits-search")
    assert v.verdict == "holds" and v.value <= 1e-6
    cells = {c["cell"]: c for c in v.details["cells"]}
    uniform = cells["κ → 0 (temperature_sampling), N=16, κ=1e-08"]
    # optimal for the objective, yet not the optimum's allocation: κ → 0 leaves the rest free
    assert uniform["judged"] and uniform["max relative excess"] < 1e-6
    assert uniform["mean fraction of rollouts placed differently from the optimum"] > 0.2
    assert cells["κ → ∞ (beam_search), N=256, κ=1e+08"]["max relative excess"] == 0.0
    # the approach is reported, not judged: the excess shrinks toward each limit
    approach = [cells[f"κ → 0 (temperature_sampling), N=16, κ={k}"] for k in ("0.01", "1e-06")]
    assert not approach[0]["judged"]
    assert approach[0]["max relative excess"] > approach[1]["max relative excess"]
    # where the claim does not fail, the control swaps the limits: it fails
    assert fast("prop1-limits-search", True).verdict == "fails"
