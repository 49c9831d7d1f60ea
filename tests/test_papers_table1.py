"""papers.table1: Table 1's FLOPs and latency ratios from the tokens a simulated search counts.

One tiny run (8 problems, REBASE@16 vs DORA@4: the same code path as 256 vs 64) is shared by the
tests; its numbers are checked against the ledger's own token counts, not against constants.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from papers import compare, data
from papers import table1 as t1


@pytest.fixture(scope="module")
def tiny():
    return t1.table1(jax.random.key(0), problems=8, rebase_budget=16, dora_budget=4)


def test_ratios_come_from_counted_tokens(tiny):
    rebase, dora = tiny["methods"]["rebase"], tiny["methods"]["dora"]
    assert tiny["flops_ratio"] == pytest.approx(rebase["flops"]["total"] / dora["flops"]["total"])
    assert tiny["latency_ratio"] == pytest.approx(rebase["latency_s"] / dora["latency_s"])
    assert tiny["paper_flops_ratio"] == pytest.approx(3.49, abs=0.005)
    assert tiny["paper_latency_ratio"] == pytest.approx(3.95, abs=0.005)
    policy = 1.24e9  # Llama-3.2-1B's parameters (the default policy)
    for v in (rebase, dora):
        assert v["flops"]["policy"] == pytest.approx(2 * policy * v["tokens"]["policy"])
        parts = v["flops"]["policy"] + v["flops"]["prm"] + v["flops"]["embedding"]
        assert v["flops"]["total"] == pytest.approx(parts)
        assert v["accuracy_lo"] <= v["accuracy"] <= v["accuracy_hi"]
    # Only DORA reads embeddings; 4× the rollouts cost REBASE more tokens.
    assert rebase["tokens"]["embedding"] == 0 < dora["tokens"]["embedding"]
    assert rebase["rollouts"] > dora["rollouts"] and tiny["flops_ratio"] > 1


def test_rows_feed_the_verdicts(tiny):
    found = {v.id: v for v in compare.verdicts(tiny["rows"])}
    # The tiny run's budgets are not Table 1's, so the Table 1 checks find no cell ...
    assert found["flops_ratio"].verdict == compare.INCONCLUSIVE
    # ... and with the budgets relabelled they judge the counted ratios.
    relabelled = [r | {"budget": {16: 256, 4: 64}[r["budget"]]} for r in tiny["rows"]]
    found = {v.id: v for v in compare.verdicts(relabelled)}
    assert found["flops_ratio"].value == pytest.approx(tiny["flops_ratio"])
    assert found["latency_ratio"].value == pytest.approx(tiny["latency_ratio"])
    v = found["flops_ratio"]
    assert v.verdict in compare.VERDICTS and v.lo < v.value < v.hi  # from per-problem spread
    assert "(paper, Table 1)" in t1.format_table1(tiny)


def test_latency_model():
    flops = np.array([3.0e15, 1.0e15])
    calls, rounds = np.array([400, 100]), np.array([20, 20])
    compute_only = t1.LatencyModel(call_overhead_s=0, round_overhead_s=0)
    seconds = compute_only.seconds(flops, calls, np.zeros(2), rounds)
    assert seconds[0] / seconds[1] == pytest.approx(3.0)  # compute alone: latency ∝ FLOPs
    seconds = t1.LatencyModel().seconds(flops, calls, np.array([0, 50]), rounds)
    expected = flops / (312e12 * 0.3) + np.ceil(calls / 2) * 0.02 + [0, 20 * 0.02] + 20 * 0.05
    np.testing.assert_allclose(seconds, expected)
    with pytest.raises(ValueError, match="prm_batch"):
        t1.LatencyModel(prm_batch=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"problems": 0}, "problems must be"),
        ({"dora_budget": 2.5}, "dora_budget must be"),
        ({"world": "nope"}, "unknown world preset"),
        ({"policy": "gpt"}, "unknown policy"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        t1.table1(jax.random.key(0), **kwargs)


def test_paper_constants_match_the_data():
    table = data.table1_dict()
    assert t1.PAPER_BUDGETS == {"rebase": table["rebase"]["rollouts"], "dora": 64}
