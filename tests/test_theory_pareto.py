"""The `pareto` claim (theory/pareto_claims.py) in fast mode: a well-formed record, one map entry
per world explored, and — since DORA reduces to REBASE without redundancy — DORA and REBASE
statistically indistinguishable in the α = ∞ world."""

from __future__ import annotations

import math

import pytest

import theory.pareto_claims as pareto_claims
from theory.core import VERDICTS, run_claim

NO_REDUNDANCY = "no-redundancy (alpha=inf)"


@pytest.fixture(scope="module")
def verdict():
    return run_claim("pareto", "fast")


def test_record_is_well_formed(verdict):
    assert verdict.claim_id == "pareto"
    assert verdict.verdict in VERDICTS and verdict.verdict != "not-applicable"
    worlds = verdict.details["worlds"]
    assert set(worlds) == set(verdict.region["worlds"]) and NO_REDUNDANCY in worlds
    for entry in worlds.values():
        listed = entry["dominated"] + entry["inconclusive"] + entry["losses"]
        assert sorted(listed) == sorted(pareto_claims.BASELINES)
        for baseline in pareto_claims.BASELINES:
            result = entry["baselines"][baseline]
            assert result["overall"] in ("dominated", "inconclusive", "loss")
            for axis in ("rollouts", "flops"):
                rows = result[axis]
                assert len(rows) == len(verdict.region["budgets"])
                for row in rows:
                    assert row["result"] in ("dominated", "inconclusive", "loss")
                    if "se" in row:
                        assert row["se"] >= 0 and row["lo95"] <= row["difference"] <= row["hi95"]
                    else:
                        assert row["result"] == "inconclusive"
    counts = verdict.measured["comparisons"]
    per_world = 2 * len(verdict.region["budgets"]) * len(pareto_claims.BASELINES)
    assert counts["dominated"] + counts["inconclusive"] + counts["loss"] == len(worlds) * per_world
    if verdict.verdict == "holds":
        assert counts["dominated"] == sum(counts[k] for k in ("dominated", "inconclusive", "loss"))


def test_dora_indistinguishable_from_rebase_without_redundancy(verdict):
    rebase = verdict.details["worlds"][NO_REDUNDANCY]["baselines"]["rebase"]
    for stats in rebase["same_budget"].values():
        # The 95% interval of the paired difference contains 0 (an exact tie has SE = 0).
        assert stats["lo95"] <= 0.0 <= stats["hi95"]
        assert math.isfinite(stats["difference"]) and abs(stats["difference"]) < 0.1
    assert "rebase" not in verdict.details["worlds"][NO_REDUNDANCY]["losses"]
