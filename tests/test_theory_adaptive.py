"""The `adaptive-pareto` claim (theory/adaptive_claims.py) in fast mode: adaptive DORA against the
fixed-N DORA frontier at equal FLOPs, and its control (stopping on another problem's votes)."""

from __future__ import annotations

import pytest

from theory.core import run_cached


@pytest.mark.slow
def test_adaptive_pareto_is_judged_inside_the_frontier_and_the_control_flips_it():
    claim = run_cached("adaptive-pareto", "fast")
    control = run_cached("adaptive-pareto", "fast", control=True)
    # The comparison interpolates between measured fixed-N points, never beyond them.
    assert not claim.details["extrapolated"]
    assert claim.k_se is not None and claim.interval is not None
    assert claim.interval[0] <= claim.value <= claim.interval[1]
    assert claim.verdict in ("holds", "holds-approximately")
    # Stopping on another problem's votes loses accuracy at equal FLOPs.
    assert control.value < claim.value and control.verdict != claim.verdict
    # The same fixed frontier in both runs (the control changes the adaptive point only).
    assert control.details["fixed"] == claim.details["fixed"]
