"""The direction, rounding and FLOPs claims (theory/direction_claims.py) in fast mode: the verdicts
we know mathematically, so a regression in the core shows up as a changed verdict."""

import pytest

import theory.core
import theory.direction_claims  # registers the claims


@pytest.fixture(scope="module")
def verdicts():
    ids = ("prop2-kl", "theorem1-hard", "theorem1-soft", "rounding", "table1-flops")
    return {claim_id: theory.core.run_claim(claim_id, "fast") for claim_id in ids}


def test_prop2_kl_identity_holds(verdicts):
    v = verdicts["prop2-kl"]
    assert v.verdict == "holds"
    assert v.measured["max |gap − KL|"] < 1e-12
    assert v.measured["max KL (equal sizes)"] < 1e-12
    assert v.measured["min KL (unequal sizes)"] > 1e-6
    by_kappa = v.details["success_probability"]["by_kappa"]
    for row in by_kappa.values():
        # The exact direction-aware optimum is never beaten.
        assert row["mean gap opt − sol"] >= -1e-12
        assert row["mean gap opt − dir"] >= -1e-12


def test_theorem1_hard_holds(verdicts):
    v = verdicts["theorem1-hard"]
    assert v.verdict == "holds"
    assert v.error < 1e-12
    assert v.measured["paper example shares (R=[.9,.9,.7], k=[5,1,2])"] == pytest.approx(
        [0.468, 0.468, 0.063], abs=1e-3
    )


def test_theorem1_soft_is_approximate(verdicts):
    v = verdicts["theorem1-soft"]
    assert v.verdict == "holds-approximately"
    err = v.measured["L1 error at T_s=0.01 by c_w (max over cross cosines)"]
    assert err["0.9"] > err["0.999"] > err["1.0"]
    assert err["1.0"] < 1e-12
    gamma = v.details["gamma table (T_s=0.01, cross 0.5)"]
    paper = v.details["paper gamma table"]
    for cw, (g5, g2) in paper.items():
        assert gamma[cw]["size-5"] == pytest.approx(g5, abs=0.01)
        assert gamma[cw]["size-2"] == pytest.approx(g2, abs=0.01)


def test_plain_rounding_fails_to_keep_the_budget(verdicts):
    v = verdicts["rounding"]
    assert v.verdict == "fails"
    assert v.measured["P(Σ round(N·w) ≠ N)"] > 0
    assert v.measured["hamilton: max_i |B_i − N w_i| (max over trials)"] < 1
    assert v.measured["sums exact (cycle, hamilton)"] == [True, True]


def test_table1_flops_holds(verdicts):
    v = verdicts["table1-flops"]
    assert v.verdict == "holds"
    assert v.measured["FLOPs ratio REBASE@256 / DORA@64"] == pytest.approx(3.49, abs=0.005)
    assert v.measured["PRM share of REBASE total"] == pytest.approx(0.87, abs=0.01)
    assert v.measured["embedding share of DORA total"] == pytest.approx(0.24, abs=0.01)
