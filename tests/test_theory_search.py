"""The multi-round search claims (theory/search_claims.py) in fast mode: the one-step optimum
against REBASE, and Table 1's latency ratio under the stated latency model."""

from __future__ import annotations

import pytest

from theory import search_claims
from theory.core import CLAIMS, run_cached


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
    rows = v.details["by world and N"]
    # fast mode judges the paper-like world; default and thorough all three (Bonferroni over
    # world × N: the pre-registered six estimates, checked by run_claim)
    assert len(rows) == len(v.region["worlds"]) * len(v.region["N"])
    assert set(search_claims.MULTIROUND_WORLDS) == set(
        CLAIMS["optimal-multiround"].region("default")["worlds"]
    )
    for row in rows.values():
        assert 0 < row["accuracy rebase"] < 1 and row["discordant pairs"] > 0


def test_table1_latency_fails_under_a_per_round_cost_and_nearly_holds_without_it():
    v = fast("table1-latency")
    assert v.verdict == "fails" and v.interval is not None and v.interval[0] > 0.25
    d = v.details
    flops = d["FLOPs ratio (the model without its per-round cost)"]
    rounds = d["rounds ratio (the model's limit as the per-round cost grows)"]
    # the latency ratio lies between the rounds ratio and the FLOPs ratio, both below 3.95
    assert rounds < d["latency ratio (ratio of means)"] < flops < search_claims.TABLE1_LATENCY_RATIO
    assert v.samples == v.region["seeds"] * v.region["problems"]  # SE over problems, not seeds
    c = fast("table1-latency", True)
    assert c.verdict == "holds-approximately"
    # without the per-round cost the latency ratio is the FLOPs ratio
    assert c.details["latency ratio (ratio of means)"] == pytest.approx(
        c.details["FLOPs ratio (the model without its per-round cost)"], rel=1e-12
    )
