"""The verdict protocol (theory/core.py): it refuses claims without a declared tolerance, judges
exact and Monte Carlo measurements by the declared rule, and only it writes verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

import theory
from theory import preregistration, runner
from theory.core import CLAIMS, Measurement, Protocol, claim, judge, k_for


def _protocol(**kw):
    base = dict(quantity="an error", tolerance=0.01, control="a wrong ingredient")
    return Protocol(**{**base, **kw})


@pytest.mark.parametrize("tolerance", [None, math.nan, math.inf, "0.1"])
def test_protocol_refuses_a_claim_without_a_finite_tolerance(tolerance):
    with pytest.raises(ValueError, match="tolerance"):
        _protocol(tolerance=tolerance)


def test_claim_refuses_no_protocol_and_file_citations():
    with pytest.raises(ValueError, match="no declared protocol"):
        claim("no-tolerance", statement="s", source="§1", protocol=None, region=lambda m: {})
    with pytest.raises(ValueError, match="cite the paper"):
        claim("bad-source", statement="s", source="../shared/PAPER.md", protocol=_protocol(),
              region=lambda m: {})  # fmt: skip
    assert "no-tolerance" not in CLAIMS and "bad-source" not in CLAIMS


def test_protocol_refuses_a_tighter_approximate_tolerance_and_bad_fwer():
    with pytest.raises(ValueError, match="looser"):
        _protocol(approximately=0.001)
    with pytest.raises(ValueError, match="looser"):
        _protocol(sense="at-least", tolerance=0.0, approximately=0.1)
    with pytest.raises(ValueError, match="fwer"):
        _protocol(fwer=1.5)


def test_exact_verdicts():
    p = _protocol(approximately=0.1)
    assert judge(p, Measurement([0.0, 0.01], ["a", "b"], 1)).verdict == "holds"
    j = judge(p, Measurement([0.0, 0.05], ["a", "b"], 1))
    assert (j.verdict, j.value, j.component) == ("holds-approximately", 0.05, "b")
    j = judge(p, Measurement([0.2, 0.05], ["a", "b"], 1))
    assert (j.verdict, j.component, j.interval) == ("fails", "a", None)
    # An identity has no approximate verdict: anything over the tolerance fails.
    assert judge(_protocol(), Measurement([0.05], ["a"], 1)).verdict == "fails"
    assert judge(_protocol(), Measurement([math.nan], ["a"], 1)).verdict == "fails"


def test_monte_carlo_intervals_decide_or_say_how_many_samples_would():
    p = _protocol(approximately=0.1, fwer=1e-3)
    k = k_for(1e-3, 1)
    assert k == pytest.approx(3.2905, abs=1e-3)
    assert judge(p, Measurement([0.0], ["a"], 100, se=[0.001])).verdict == "holds"
    j = judge(p, Measurement([0.05], ["a"], 100, se=[0.001]))
    assert j.verdict == "holds-approximately" and j.interval == pytest.approx(
        [0.05 - k * 1e-3, 0.05 + k * 1e-3]
    )
    assert judge(p, Measurement([0.5], ["a"], 100, se=[0.01])).verdict == "fails"
    j = judge(p, Measurement([0.09], ["a"], 100, se=[0.01]))
    assert j.verdict == "inconclusive"
    # The half-width k·SE must shrink to the distance 0.01 to the bound: n·(k·0.01/0.01)².
    assert j.samples_to_decide == math.ceil(100 * k**2)


def test_senses():
    mag = _protocol(sense="magnitude", tolerance=1e-9)
    assert judge(mag, Measurement([-1e-12, 1e-12], ["a", "b"], 1)).verdict == "holds"
    assert judge(mag, Measurement([-1e-3], ["a"], 1)).verdict == "fails"
    low = _protocol(sense="at-least", tolerance=-0.02, fwer=0.05)
    assert judge(low, Measurement([0.0], ["a"], 100, se=[0.001])).verdict == "holds"
    assert judge(low, Measurement([-0.2], ["a"], 100, se=[0.01])).verdict == "fails"
    assert judge(low, Measurement([-0.03], ["a"], 100, se=[0.01])).verdict == "inconclusive"


def test_monte_carlo_needs_both_an_fwer_and_standard_errors():
    with pytest.raises(ValueError, match="family-wise"):
        judge(_protocol(), Measurement([0.0], ["a"], 10, se=[0.1]))
    with pytest.raises(ValueError, match="no SE"):
        judge(_protocol(fwer=0.01), Measurement([0.0], ["a"], 10))


def test_looks_widen_k():
    one = judge(_protocol(fwer=0.05), Measurement([0.0], ["a"], 10, se=[0.001])).k_se
    four = judge(_protocol(fwer=0.05, looks=4), Measurement([0.0], ["a"], 10, se=[0.001])).k_se
    assert four == pytest.approx(k_for(0.05 / 4, 1)) and four > one


def test_a_check_returning_a_verdict_is_rejected(monkeypatch):
    @claim("returns-a-string", statement="s", source="§1", protocol=_protocol(),
           region=lambda mode: {})  # fmt: skip
    def check(region, control):
        return "holds"

    entry = {f: getattr(_protocol(), f) for f in preregistration.FIELDS}
    monkeypatch.setitem(preregistration.RECORD, "returns-a-string",
                        {**entry, "region": {"fast": {}}, "declared": "test"})  # fmt: skip
    try:
        with pytest.raises(TypeError, match="Measurement"):
            theory.core.run_claim("returns-a-string", "fast")
    finally:
        CLAIMS.pop("returns-a-string")


def test_claim_ids_match_the_registry_and_cite_the_paper():
    theory.load_claims()
    # The registry fills in import order (a test may import one claim module first); the ids
    # are the same, each once, and the runner reports them in CLAIM_IDS' order.
    assert sorted(CLAIMS) == sorted(theory.CLAIM_IDS)
    assert len(set(theory.CLAIM_IDS)) == len(theory.CLAIM_IDS)
    assert runner.claim_ids() == list(theory.CLAIM_IDS)
    for c in CLAIMS.values():
        assert "shared" not in c.source and ".md" not in c.source
        assert c.protocol.control and c.protocol.quantity
        assert np.isfinite(c.protocol.tolerance)
        for mode in ("fast", "default", "thorough"):
            assert isinstance(c.region(mode), dict) and c.region(mode)
