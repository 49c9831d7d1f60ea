"""The Beta-model claims (theory/beta_claims.py) in fast mode: the verdicts we know to be true
mathematically, so a regression in the core (optimal_allocation, expected_failure) changes a
verdict; and `dora verify` in-process."""

from __future__ import annotations

import json

import pytest

from dora_cli.main import main
from theory.core import run_claim


@pytest.fixture(scope="module")
def verdicts():
    ids = (
        "eq5-success",
        "beta-moment",
        "digamma-step",
        "prop1-kappa-inf",
        "prop1-kappa-0",
        "prop1-linear",
        "rebase-near-optimal",
    )
    return {i: run_claim(i, "fast") for i in ids}


def test_eq5_success_holds(verdicts):
    v = verdicts["eq5-success"]
    assert v.verdict == "holds"
    assert v.measured["max_abs_z"] < 4


def test_beta_moment_holds_to_quadrature_and_core_precision(verdicts):
    v = verdicts["beta-moment"]
    assert v.verdict == "holds"
    assert v.measured["max_rel_err_quadrature"] < 1e-9
    assert v.measured["max_rel_err_dora_jax_expected_failure"] < 1e-10


def test_digamma_step_is_approximate_with_error_growing_in_x(verdicts):
    v = verdicts["digamma-step"]
    assert v.verdict == "holds-approximately"
    regions = v.details["by_mean_x"]
    maxes = [r["max_rel_err"] for r in regions]
    assert maxes == sorted(maxes) and maxes[0] < 0.01 < maxes[-1]
    assert v.measured["spearman_err_vs_x_eff"] > 0.9
    assert v.error["digamma_vs_harmonic_sum"] < 1e-9  # Σ 1/(κ+r) = ψ(κ+n) − ψ(κ) is exact


def test_prop1_limits_hold(verdicts):
    inf = verdicts["prop1-kappa-inf"]
    assert inf.verdict == "holds"
    assert inf.error["threshold_sharp_at_±0.1%"]
    zero = verdicts["prop1-kappa-0"]
    assert zero.verdict == "holds"
    # The exact κ → 0 optimum is far from B ∝ w (the B.2 use).
    far = zero.measured["l1_over_N_optimum_vs_round_N_w_at_smallest_kappa_by_N"]
    assert max(far.values()) > 0.1


def test_prop1_linear_is_not_exact(verdicts):
    v = verdicts["prop1-linear"]
    assert v.verdict != "holds"
    assert v.measured["cells_with_negative_B"]  # the rule goes negative (caveat c)


def test_rebase_near_optimal_at_small_kappa(verdicts):
    v = verdicts["rebase-near-optimal"]
    assert v.verdict in ("holds-approximately", "fails")
    table = v.details["table"]
    assert all(row["rel_loss_mean"] < 0.05 for row in table if row["kappa"] <= 0.1)
    assert any(row["rel_loss_mean"] > 0.1 for row in table if row["kappa"] >= 5)


def test_verify_cli_json(capsys, tmp_path):
    code = main(["verify", "--only", "eq5-success,beta-moment", "--json", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    records = json.loads(out)
    assert [r["claim_id"] for r in records] == ["eq5-success", "beta-moment"]
    assert all(r["verdict"] == "holds" for r in records)
    assert (tmp_path / "report.md").read_text().startswith("# dora verify")
    assert json.loads((tmp_path / "verdicts.json").read_text())[0]["claim_id"] == "eq5-success"


def test_verify_cli_bad_id(capsys):
    code = main(["verify", "--only", "eq5-success,no-such-claim"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("dora: error: unknown claim id(s) no-such-claim")
    assert len(err.strip().splitlines()) == 1
