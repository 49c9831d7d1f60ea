"""The multi-round search claims (theory/search_claims.py) in fast mode: the one-step optimum
against REBASE, and Table 1's latency ratio under the stated latency model."""

from __future__ import annotations

import pytest

from theory import search_claims
from theory.core import run_cached


def fast(claim_id: str, control: bool = False):
    return run_cached(claim_id, "fast", control=control)


def test_optimal_multiround_is_not_decided_against_the_optimum_and_miscalibration_fails():
    v = fast("optimal-multiround")
    assert v.verdict in ("holds", "holds-approximately", "inconclusive")
    assert v.interval is not None and v.interval[1] > -0.02  # never decisively worse
    if v.verdict == "inconclusive":
        assert v.samples_to_decide is not None and v.samples_to_decide > v.samples
    c = fast("optimal-multiround", True)
    assert c.verdict == "fails" and c.interval is not None and c.interval[1] < -0.02
    for row in v.details["by N"].values():
        assert 0 < row["accuracy rebase"] < 1 and row["discordant pairs"] > 0


def test_table1_latency_fails_under_a_per_round_cost_and_nearly_holds_without_it():
    v = fast("table1-latency")
    assert v.verdict == "fails" and v.interval is not None and v.interval[0] > 0.25
    d = v.details
    flops = d["FLOPs ratio (the model without its per-round cost)"]
    rounds = d["rounds ratio (the model's limit as the per-round cost grows)"]
    # the latency ratio lies between the rounds ratio and the FLOPs ratio, both below 3.95
    for ratio in d["latency ratio per seed"]:
        assert rounds < ratio < flops < search_claims.TABLE1_LATENCY_RATIO
    c = fast("table1-latency", True)
    assert c.verdict == "holds-approximately"
    # without the per-round cost the latency ratio is the FLOPs ratio, seed by seed
    ratios = c.details["latency ratio per seed"]
    assert sum(ratios) / len(ratios) == pytest.approx(
        c.details["FLOPs ratio (the model without its per-round cost)"], rel=1e-12
    )
