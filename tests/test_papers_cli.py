"""`dora paper`: the command end to end on tiny settings, its --json, its reuse of --out, and its
one-line refusals. Also the Fig. 4 level model (`papers.reproduce.level_split`).

One tiny `all` run (two of the nine cells, each in its own fitted world, with the same static
search knobs so that one compiled search serves both; 10 problems, so that all five levels are
non-empty; N = 16, 32, 64; T_max = 4; Table 1 shrunk to REBASE@8 vs DORA@4 through
`TABLE1_BUDGETS`, the same code path as 256 vs 64) is shared by the tests. No assertion is
statistical, so no test here has a false-failure rate.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from dora_cli.main import main
from dora_jax.paper_worlds import PAPER_WORLDS
from papers import data, reproduce

CELLS = "llama-1b-math500,qwen-1.5b-math500"
TINY = ["--problems", "10", "--budgets", "16,32,64", "--cells", CELLS, "--max-rounds", "4"]
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
    for model in ("llama-3.2-1b", "qwen2.5-1.5b"):
        for name in (
            f"fig3/overlay_accuracy_{model}_math500.png",
            f"fig3/overlay_pass_rate_{model}_math500.png",
            f"fig4/overlay_levels_{model}.png",
        ):
            png = (folder / name).read_bytes()
            assert png.startswith(b"\x89PNG") and len(png) > 10_000
    # A difference per value the paper reports: 2 cells × 5 methods × 3 budgets × (accuracy,
    # pass rate) for Fig. 3, 2 models × 5 methods × 3 budgets × 5 levels for Fig. 4.
    assert len(result["fig3"]["differences"]) == 2 * 5 * 3 * 2
    assert len(result["fig4"]["differences"]) == 2 * 5 * 3 * 5
    lines = (folder / "fig3" / "differences.txt").read_text().splitlines()
    assert len(lines) == 1 + 2 * 5 * 3 * 2 + 1
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
    fig3 = {(r["model"], r["method"], r["budget"]): r["accuracy"] for r in result["fig3"]["rows"]}
    levels: dict[tuple, list[tuple[int, float]]] = {}
    for r in result["fig4"]["rows"]:
        key = (r["model"], r["method"], r["budget"])
        levels.setdefault(key, []).append((r["n"], r["accuracy"]))
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


def test_each_cell_runs_in_its_own_fitted_world(tiny):
    """Each cell's records sit in their own folder beside the settings of ITS world (the
    preset fitted to that cell); the two worlds differ (control: the same settings read twice
    are equal), and so do the two cells' curves."""
    folder, (_, out, _), _ = tiny
    held = {
        name: json.loads((folder / "search" / name / "settings.json").read_text())
        for name in CELLS.split(",")
    }
    for name, settings in held.items():
        assert settings["world"] == f"paper-{name}"
        assert settings["world_config"]["difficulty_a"] == pytest.approx(
            PAPER_WORLDS[f"paper-{name}"]["difficulty_a"]
        )
    llama, qwen = held.values()
    assert llama["world_config"] != qwen["world_config"]
    assert held == {
        n: json.loads((folder / "search" / n / "settings.json").read_text()) for n in held
    }
    rows = json.loads(out)["fig3"]["rows"]
    curves = {
        m: [r["accuracy"] for r in rows if r["model"] == m]
        for m in ("llama-3.2-1b", "qwen2.5-1.5b")
    }
    assert len(curves["llama-3.2-1b"]) == len(curves["qwen2.5-1.5b"]) == 5 * 3
    assert curves["llama-3.2-1b"] != curves["qwen2.5-1.5b"]


def test_rerun_reuses_the_records(tiny):
    folder, (_, out, _), (code, text, _) = tiny
    assert code == 0
    for name in CELLS.split(","):
        assert f"reused {folder / 'search' / name}" in text
    assert f"reused {folder / 'table1'}" in text
    # The reused run prints the same numbers as the first.
    first = json.loads(out)["fig3"]["differences"][0]
    assert f"{first['ours']:>8.2f}" in text


def test_other_settings_are_refused_before_any_work(tiny):
    folder, _, _ = tiny
    records = folder / "search" / "llama-1b-math500" / "results.jsonl"
    before = records.stat().st_mtime_ns, records.read_bytes()
    code, out, err = _run(["paper", "fig3", *TINY[:-2], "--max-rounds", "5", "--out", str(folder)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "other settings" in err and "max_rounds" in err
    assert (records.stat().st_mtime_ns, records.read_bytes()) == before
    # A cell asked alone with the same settings is reused; with other settings, refused.
    alone = [*TINY[:-4], "--cells", "llama-1b-math500", "--out", str(folder)]
    code, out, err = _run(["paper", "fig3", *alone, "--max-rounds", "4"])
    assert code == 0 and f"reused {records.parent}" in out and "qwen" not in out
    code, out, err = _run(["paper", "fig3", *alone, "--max-rounds", "5"])
    assert code == 2 and out == "" and err.count("\n") == 1 and "other settings" in err
    assert (records.stat().st_mtime_ns, records.read_bytes()) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fig5"], "unknown part 'fig5'"),
        (["all", "--backend", "vllm"], "needs --recipe"),
        (["fig3", "--backend", "replay"], "needs --bank"),
        (["fig3", "--cells", "llama-1b-gsm8k"], "unknown cell 'llama-1b-gsm8k'"),
        (["fig3", "--cells", "llama-1b-math500,llama-1b-math500"], "repeats llama-1b-math500"),
        (["fig4", "--cells", "llama-1b-aime2024"], "fig4 is MATH500 only"),
        (["table1", "--cells", "llama-1b-math500"], "does not apply to table1"),
        (["fig3", "--recipe", "paper-llama-1b"], "--recipe applies to --backend vllm or replay"),
        (["fig3", "--model", "llama-3.2-1b"], "--model applies to --backend vllm or replay"),
        (["fig3", "--on-miss", "resample"], "--on-miss applies to --backend replay only"),
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


def test_a_run_of_the_older_layout_is_refused(tmp_path):
    """A folder written when every cell ran in one world (out/search/settings.json) cannot be
    split by cell: refused in one line, nothing written."""
    old = tmp_path / "out" / "search"
    old.mkdir(parents=True)
    (old / "settings.json").write_text("{}")
    code, printed, err = _run(["paper", "fig3", *TINY, "--out", str(tmp_path / "out")])
    assert code == 2 and printed == "" and err.count("\n") == 1 and "older layout" in err
    assert sorted(p.name for p in old.iterdir()) == ["settings.json"]


def test_level_split_sizes_and_order():
    rng = np.random.default_rng(0)
    p = rng.random(500)
    levels = reproduce.level_split(p)
    assert np.bincount(levels, minlength=6)[1:].tolist() == list(data.LEVEL_SIZES)
    # Level 1 is the easiest: every problem of a level has a higher p(root) than any of the next.
    for a, b in zip(data.LEVELS, data.LEVELS[1:], strict=False):
        assert p[levels == a].min() > p[levels == b].max()
    assert np.bincount(reproduce.level_split(rng.random(7)), minlength=6)[1:].sum() == 7
