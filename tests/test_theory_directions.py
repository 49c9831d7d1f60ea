"""The direction, rounding and FLOPs claims (theory/direction_claims.py) in fast mode."""

import pytest

from theory.core import run_cached


def fast(claim_id: str, control: bool = False):
    return run_cached(claim_id, "fast", control=control)


def test_prop2_kl_identity_holds():
    v = fast("prop2-kl")
    assert v.verdict == "holds" and v.value < 1e-12
    assert v.details["max KL, equal sizes (must be 0)"] < 1e-12
    assert v.details["min KL, unequal sizes (must be > 0)"] > 1e-6


def test_prop2_success_is_judged():
    v = fast("prop2-success")
    assert v.verdict != "fails" and v.interval is not None
    for row in v.details.values():
        # direction-level is not better in every case: the consequence holds on average only
        assert 0 <= row["fraction of cases where direction-level is worse"] < 0.5


def test_theorem1_hard_holds_on_shares():
    v = fast("theorem1-hard")
    assert v.verdict == "holds" and v.value < 1e-12
    shares = v.details["shares for R = [0.9, 0.9, 0.7], k = [5, 1, 2]"]
    assert shares == pytest.approx([0.468, 0.468, 0.063], abs=1e-3)


def test_theorem1_fails_on_integer_rollouts():
    v = fast("theorem1-integer")
    assert v.verdict == "fails" and v.value > 1
    assert fast("theorem1-integer", True).value < 1


def test_theorem1_soft_fails_below_cosine_one():
    v = fast("theorem1-soft")
    assert v.verdict == "fails" and "c_w=0.99" in v.component


def test_plain_rounding_fails_to_keep_the_budget_with_k_at_most_n():
    v = fast("rounding")
    assert v.verdict == "fails" and v.value >= 1
    assert v.details["repairs sum to N (cycle, largest remainders)"] == [True, True]
    assert v.details["largest remainders: max_i |B_i − N w_i|"] < 1


def test_table1_flops_from_counted_tokens():
    v = fast("table1-flops")
    assert v.verdict in ("holds", "holds-approximately", "inconclusive")
    assert all(2.0 < r < 5.0 for r in v.details["FLOPs ratio per seed (reported)"])
    # the SE is over the paired problems of every seed (a ratio of means), not over seeds
    assert v.samples == v.region["seeds"] * v.region["problems"]
    sigma = v.details["per-problem SD of the relative ratio (σ)"]
    assert v.interval is not None and v.k_se is not None
    # the magnitude's interval reaches |estimate| + k·σ/√n
    assert v.interval[1] == pytest.approx(v.value + v.k_se * sigma / v.samples**0.5, rel=1e-9)
    assert fast("table1-flops", True).verdict == "fails"  # DORA at the same budget
