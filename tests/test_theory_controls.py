"""Every claim in fast mode with its control: the control (the same check fed a deliberately
wrong, or for a failing claim a deliberately right, ingredient) must flip the verdict."""

from __future__ import annotations

import pytest

import theory
from theory.core import run_cached


def fast(claim_id: str, control: bool = False):
    return run_cached(claim_id, "fast", control=control)


@pytest.mark.parametrize("claim_id", theory.CLAIM_IDS)
def test_control_flips_the_verdict(claim_id):
    claim, control = fast(claim_id), fast(claim_id, True)
    assert not claim.control and control.control
    assert claim.ingredient == "as in the paper" and control.ingredient != claim.ingredient
    assert control.verdict != claim.verdict, (claim_id, claim.verdict, control.verdict)
