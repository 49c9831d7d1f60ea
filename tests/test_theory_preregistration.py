"""The pre-registration record (theory/preregistration.py): every claim has an entry, the entry
is the declaration in code (protocol and every mode's region), the declared k follows from the
declared error rate and estimates, and a drifted declaration is refused before measuring."""

from __future__ import annotations

import dataclasses
import re

import pytest

import theory
from theory import preregistration
from theory.core import CLAIMS, MODES, k_for, run_cached, run_claim

theory.load_claims()


def test_every_claim_has_exactly_one_entry():
    assert sorted(preregistration.RECORD) == sorted(theory.CLAIM_IDS)


@pytest.mark.parametrize("claim_id", theory.CLAIM_IDS)
def test_entry_matches_the_declaration_in_code(claim_id):
    c = CLAIMS[claim_id]
    assert preregistration.mismatches(claim_id, c.protocol, c.region, MODES) == []
    entry = preregistration.RECORD[claim_id]
    # "<commit> <date> UTC", or while a re-declaration is being committed, "<date> UTC, by the
    # commit that adds this history" (its hash is filled in by the next commit)
    date = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    assert re.fullmatch(
        rf"[0-9a-f]{{7,40}} {date}|{date}, by the commit that adds this history", entry["declared"]
    )
    assert entry["history"]
    if c.protocol.fwer is None:
        assert "k" not in entry and "estimates" not in entry
        return
    for mode in MODES:
        k = k_for(c.protocol.fwer / c.protocol.looks, entry["estimates"][mode])
        assert entry["k"][mode] == pytest.approx(k, abs=1e-4)


@pytest.mark.parametrize("claim_id", theory.CLAIM_IDS)
def test_fast_verdict_uses_the_registered_k_and_commit(claim_id):
    v = run_cached(claim_id, "fast")
    entry = preregistration.RECORD[claim_id]
    assert v.declared == entry["declared"]
    if v.k_se is not None:
        assert v.k_se == pytest.approx(entry["k"]["fast"], abs=1e-4)


def test_a_drifted_declaration_is_refused_before_measuring(monkeypatch):
    c = CLAIMS["beta-moment"]
    looser = dataclasses.replace(c.protocol, tolerance=c.protocol.tolerance * 10)
    monkeypatch.setitem(CLAIMS, "beta-moment", dataclasses.replace(c, protocol=looser))
    with pytest.raises(RuntimeError, match=r"tolerance .* registered"):
        run_claim("beta-moment", "fast")
    moved = dataclasses.replace(c, region=lambda mode: {**c.region(mode), "B": [1]})
    monkeypatch.setitem(CLAIMS, "beta-moment", moved)
    with pytest.raises(RuntimeError, match="fast region"):
        run_claim("beta-moment", "fast")


def test_a_run_refuses_a_drifted_claim_before_any_claim_runs(monkeypatch):
    # the drifted claim comes last; the claim before it must not be measured
    from theory import runner

    measured = []
    c = CLAIMS["digamma-step"]
    probe = dataclasses.replace(c, check=lambda *a, **k: measured.append(1) or c.check(*a, **k))
    monkeypatch.setitem(CLAIMS, "digamma-step", probe)
    b = CLAIMS["beta-moment"]
    moved = dataclasses.replace(b, region=lambda mode: {**b.region(mode), "B": [1]})
    monkeypatch.setitem(CLAIMS, "beta-moment", moved)
    with pytest.raises(RuntimeError, match="fast region"):
        runner.run(["digamma-step", "beta-moment"], "fast")
    assert measured == []
