"""`dora paper`: the command end to end on tiny settings, its --json, its reuse of --out, and its
one-line refusals. Also the Fig. 4 level model (`papers.reproduce.level_split`).

One tiny `all` run (10 problems, so that all five levels are non-empty; N = 16, 32, 64;
T_max = 4; Table 1 shrunk to REBASE@8 vs DORA@4 through `TABLE1_BUDGETS`, the same code path as
256 vs 64) is shared by the tests. No assertion is statistical, so no test here has a
false-failure rate.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from dora_cli.main import main
from papers import data, reproduce

TINY = ["--problems", "10", "--budgets", "16,32,64", "--max-rounds", "4"]
TINY_TABLE1 = (8, 4)


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paper")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reproduce, "TABLE1_BUDGETS", TINY_TABLE1)
        first = _run(["paper", "all", *TINY, "--out", str(folder), "--json"])
        again = _run(["paper", "all", *TINY, "--out", str(folder)])
    return folder, first, again


def test_all_writes_figures_tables_and_verdicts(tiny):
    folder, (code, out, _), _ = tiny
    assert code == 0
    result = json.loads(out)
    assert set(result) == set(reproduce.PARTS)
    for name in (
        "fig3/overlay_accuracy_llama-3.2-1b_math500.png",
        "fig3/overlay_pass_rate_llama-3.2-1b_math500.png",
        "fig4/overlay_levels_llama-3.2-1b.png",
    ):
        png = (folder / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
    # A difference per cell the paper reports: 5 methods × 3 budgets × (accuracy, pass rate) for
    # Fig. 3, 5 methods × 3 budgets × 5 levels for Fig. 4.
    assert len(result["fig3"]["differences"]) == 5 * 3 * 2
    assert len(result["fig4"]["differences"]) == 5 * 3 * 5
    lines = (folder / "fig3" / "differences.txt").read_text().splitlines()
    assert len(lines) == 1 + 5 * 3 * 2 + 1
    for d in result["fig3"]["differences"]:
        assert d["difference"] == pytest.approx(d["ours"] - d["paper"])
    # Every stated finding is judged exactly once, by the part its data belongs to.
    judged = [v["id"] for part in reproduce.PARTS for v in result[part]["verdicts"]]
    assert sorted(judged) == sorted(f.id for f in data.findings())
    for part in reproduce.PARTS:
        text = (folder / part / "verdicts.txt").read_text()
        assert all(f"] {v['id']}:" in text for v in result[part]["verdicts"])


def test_levels_partition_the_problems(tiny):
    """Fig. 4's level rows are a split of Fig. 3's problems: their n-weighted mean is Fig. 3's
    accuracy in every (method, N), and the levels' sizes are MATH500's proportions of P."""
    _, (_, out, _), _ = tiny
    result = json.loads(out)
    fig3 = {(r["method"], r["budget"]): r["accuracy"] for r in result["fig3"]["rows"]}
    levels: dict[tuple, list[tuple[int, float]]] = {}
    for r in result["fig4"]["rows"]:
        levels.setdefault((r["method"], r["budget"]), []).append((r["n"], r["accuracy"]))
    assert set(levels) == set(fig3)
    for cell, parts in levels.items():
        n = np.asarray([p[0] for p in parts])
        assert n.sum() == 10
        assert np.dot(n, [p[1] for p in parts]) / n.sum() == pytest.approx(fig3[cell])


def test_table1_json_fields(tiny):
    _, (_, out, _), _ = tiny
    t = json.loads(out)["table1"]
    for key in ("flops_ratio", "paper_flops_ratio", "latency_ratio", "paper_latency_ratio"):
        assert isinstance(t[key], float) and t[key] > 0
    rebase, dora = t["methods"]["rebase"], t["methods"]["dora"]
    assert (rebase["budget"], dora["budget"]) == TINY_TABLE1
    assert t["flops_ratio"] == pytest.approx(rebase["flops"]["total"] / dora["flops"]["total"])
    assert t["paper_flops_ratio"] == pytest.approx(data.PAPER_FLOPS_RATIO)
    assert t["paper_latency_ratio"] == pytest.approx(data.PAPER_LATENCY_RATIO)
    assert t["problems"] == 10


def test_table1_alone_json_has_the_ratios_at_top_level(tiny):
    folder, _, _ = tiny
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reproduce, "TABLE1_BUDGETS", TINY_TABLE1)
        args = ["table1", "--problems", "10", "--max-rounds", "4", "--json"]
        code, out, _ = _run(["paper", *args, "--out", str(folder)])
    assert code == 0
    t = json.loads(out)
    assert {"flops_ratio", "paper_flops_ratio", "latency_ratio", "paper_latency_ratio"} <= set(t)


def test_rerun_reuses_the_records(tiny):
    folder, (_, out, _), (code, text, _) = tiny
    assert code == 0
    assert f"reused {folder / 'search'}" in text and f"reused {folder / 'table1'}" in text
    # The reused run prints the same numbers as the first.
    first = json.loads(out)["fig3"]["differences"][0]
    assert f"{first['ours']:>8.2f}" in text


def test_other_settings_are_refused_before_any_work(tiny):
    folder, _, _ = tiny
    records = folder / "search" / "results.jsonl"
    before = records.stat().st_mtime_ns, records.read_bytes()
    code, out, err = _run(["paper", "fig3", *TINY[:-2], "--max-rounds", "5", "--out", str(folder)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "other settings" in err and "max_rounds" in err
    assert (records.stat().st_mtime_ns, records.read_bytes()) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fig5"], "unknown part 'fig5'"),
        (["all", "--backend", "vllm"], "dora bench --backend vllm"),
        (["fig3", "--backend", "replay"], "use --backend sim"),
        (["fig3", "--backend", "tpu"], "unknown --backend"),
        (["fig3", "--problems", "0"], "--problems must be >= 1"),
        (["fig4", "--seeds", "0"], "--seeds must be >= 1"),
        (["fig3", "--budgets", "16,16"], "repeats 16"),
        (["fig3", "--budgets", "2"], "beam width"),
        (["fig3", "--budgets", "x"], "comma-separated integers"),
        (["table1", "--budgets", "64"], "does not apply to table1"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    out = tmp_path / "out"
    code, printed, err = _run(["paper", *args, "--out", str(out)])
    assert code == 2 and printed == ""
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_level_split_sizes_and_order():
    rng = np.random.default_rng(0)
    p = rng.random(500)
    levels = reproduce.level_split(p)
    assert np.bincount(levels, minlength=6)[1:].tolist() == list(data.LEVEL_SIZES)
    # Level 1 is the easiest: every problem of a level has a higher p(root) than any of the next.
    for a, b in zip(data.LEVELS, data.LEVELS[1:], strict=False):
        assert p[levels == a].min() > p[levels == b].max()
    assert np.bincount(reproduce.level_split(rng.random(7)), minlength=6)[1:].sum() == 7
