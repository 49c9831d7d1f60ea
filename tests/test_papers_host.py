"""`dora paper --backend replay|vllm`: the paper's figures from recorded trees (a toy bank) and
from the real search's machinery (the same `dora bench` path, with the model stack swapped for
the scripted toy backend), its one-cell output, its reuse of --out, and its one-line refusals.

The end-to-end runs take about a minute on two cores, so they are in the slow stage; the
refusals read only a bank's settings row and stay in the default stage.

The bank is recorded once by `dora bench --backend toy --record` on MATH500's first 3 problems,
the five methods at N = 16, T_max = 4 (Table 1 shrunk to REBASE@16 vs DORA@16 through
`TABLE1_BUDGETS`). No assertion is statistical, so no test here has a false-failure rate.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from dora_cli.main import main
from papers import reproduce
from simulations import bench as bench_lib

RUN = ["--problems", "3", "--budgets", "16", "--max-rounds", "4"]
TINY_TABLE1 = (16, 16)


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def _records(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """(bank path, the recording run's records)."""
    folder = tmp_path_factory.mktemp("bank")
    path = folder / "BANK.sqlite"
    args = ["bench", "--backend", "toy", "--dataset", "math500", "--limit", "3"]
    args += ["--budgets", "16", "--max-rounds", "4", "--no-plots", "--record", str(path)]
    code, _, err = _run([*args, "--out", str(folder / "A")])
    assert code == 0, err
    return path, _records(folder / "A")


@pytest.fixture
def settings_bank(tmp_path):
    """A bank holding only the toy backend's settings row (what the refusals read)."""
    from backends.bank import SampleBank
    from backends.toy import ToyBackend

    bank = SampleBank(tmp_path / "settings.sqlite")
    bank.register({"backend": "toy", **ToyBackend.settings(), "embed_dim": 16})
    bank.close()
    return bank.path


@pytest.fixture(scope="module")
def replayed(bank, tmp_path_factory):
    path, _ = bank
    out = tmp_path_factory.mktemp("paper")
    args = ["paper", "all", "--backend", "replay", "--bank", str(path), "--model", "llama-3.2-1b"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reproduce, "TABLE1_BUDGETS", TINY_TABLE1)
        first = _run([*args, *RUN, "--out", str(out), "--json"])
        again = _run([*args, *RUN, "--out", str(out)])
    return out, first, again


def _means(records, key="accuracy") -> dict[str, float]:
    methods = dict.fromkeys(r["method"] for r in records)
    return {m: 100 * float(np.mean([r[key] for r in records if r["method"] == m])) for m in methods}


@pytest.mark.slow
def test_replay_reanalyses_the_recorded_trees(bank, replayed):
    """The figures' numbers are the recorded run's (the replay reproduces it with no model call):
    Fig. 3 per method, Fig. 4 on MATH500's own levels, Table 1 from the counted FLOPs."""
    _, recorded = bank
    out, (code, printed, err), _ = replayed
    assert code == 0, err
    result = json.loads(printed)
    rows = result["fig3"]["rows"]
    assert {(r["model"], r["dataset"], r["budget"]) for r in rows} == {
        ("llama-3.2-1b", "math500", 16)
    }
    assert {r["method"]: r["accuracy"] for r in rows} == pytest.approx(_means(recorded))
    rates = {r["method"]: r["pass_rate"] for r in rows}
    assert rates == pytest.approx(_means(recorded, "correct_fraction"))
    assert result["fig3"]["cells"] == ["llama-1b-math500"]
    assert result["fig3"]["backend_calls"] == 0 and result["fig3"]["bank_misses"] == 0
    assert result["fig3"]["bank_hits"] > 0
    assert len(result["fig3"]["differences"]) == 5 * 2  # 5 methods × (accuracy, pass rate)
    levels = {r["problem"]: r["level"] for r in recorded}
    for method in reproduce.data.METHODS:
        mine = [r for r in result["fig4"]["rows"] if r["method"] == method]
        assert sorted(r["level"] for r in mine) == sorted(set(levels.values()))
        assert sum(r["n"] for r in mine) == 3
    t = result["table1"]
    flops = {
        m: np.mean([r["flops"]["total"] for r in recorded if r["method"] == m])
        for m in ("rebase", "dora")
    }
    assert t["flops_ratio"] == pytest.approx(flops["rebase"] / flops["dora"])
    assert t["latency_model"].startswith("measured")
    for part in reproduce.PARTS:
        assert (out / "replay-llama-1b-math500" / part / f"{part}.json").is_file()


@pytest.mark.slow
def test_replay_names_its_one_cell_and_reuses_its_records(replayed):
    out, _, (code, text, _) = replayed
    assert code == 0
    assert "cells: llama-3.2-1b × math500 (one cell: the policy toy" in text
    records = out / "replay-llama-1b-math500" / "search" / "results.jsonl"
    assert len(records.read_text().splitlines()) == 5 * 3  # not appended twice


@pytest.mark.slow
def test_replay_with_other_settings_or_a_miss_is_one_line(bank, replayed, tmp_path):
    path, _ = bank
    out, _, _ = replayed
    records = out / "replay-llama-1b-math500" / "search" / "results.jsonl"
    before = records.read_bytes()
    args = ["paper", "fig3", "--backend", "replay", "--bank", str(path), "--model", "llama-3.2-1b"]
    code, printed, err = _run([*args, *RUN[:-1], "5", "--out", str(out)])  # T_max 5
    assert code == 2 and printed == "" and err.count("\n") == 1 and "max_rounds" in err
    assert records.read_bytes() == before
    # N = 32 was never recorded: the bank misses (one line naming the prefix and --on-miss).
    code, printed, err = _run([*args, *RUN[:2], "--budgets", "32", "--out", str(tmp_path / "B")])
    # (stderr also holds the progress bar's closing newline)
    line = err.strip()
    assert code == 2 and line.count("\n") == 0 and "the bank" in line and "--on-miss" in line


@pytest.mark.slow
def test_vllm_runs_the_bench_machinery_on_the_recipes_cell(monkeypatch, tmp_path):
    """--backend vllm goes through `dora bench`'s spec, model factory and runner; the model stack
    is swapped for the toy backend here (the real engine is tested in tests/vllm)."""
    from backends.toy import ToyBackend

    built = []

    def fake_stack(rec):
        built.append(rec.vllm["policy"])
        return ToyBackend.for_problems

    monkeypatch.setattr(bench_lib, "vllm_backend", fake_stack)
    args = ["paper", "fig3", "--backend", "vllm", "--recipe", "paper-qwen-1.5b", *RUN]
    code, printed, err = _run([*args, "--seeds", "1", "--out", str(tmp_path), "--json"])
    assert code == 0, err
    assert built == ["Qwen/Qwen2.5-1.5B-Instruct"]
    result = json.loads(printed)
    assert result["cells"] == ["qwen-1.5b-math500"]
    assert {(r["model"], r["dataset"]) for r in result["rows"]} == {("qwen2.5-1.5b", "math500")}
    run = json.loads((tmp_path / "vllm-qwen-1.5b-math500" / "search" / "run.json").read_text())
    assert run["backend"] == "vllm" and run["dataset"] == "math500"
    assert run["backend_settings"]["policy"] == "Qwen/Qwen2.5-1.5B-Instruct"


# Recipes the bad-input cases name: [search] dataset and [vllm] policy (None: no [vllm]).
_RECIPES = {
    "RECIPE": ("math500", "org/Llama-3.2-1B"),
    "AIME": ("aime2024", "org/Llama-3.2-1B"),
    "GSM8K": ("gsm8k", "org/Llama-3.2-1B"),
    "SMOL": ("math500", "HuggingFaceTB/SmolLM2-135M"),
    "NOPOLICY": ("math500", None),
}


def _recipe(folder: Path, dataset: str, policy: str | None) -> str:
    folder.mkdir()
    path = folder / "r.toml"
    vllm = "" if policy is None else f'\n[vllm]\npolicy = "{policy}"\n'
    path.write_text(f'[search]\ndataset = "{dataset}"\n{vllm}')
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "replay", "--bank", "NOBANK"], "not found"),
        (["--backend", "replay", "--bank", "BANK", "--on-miss", "guess"], "--on-miss must be"),
        (["--backend", "replay", "--bank", "BANK"], "none of the paper's models"),
        (["--backend", "replay", "--bank", "BANK", "--model", "gpt-2"], "--model must be one"),
        (["--backend", "vllm", "--recipe", "RECIPE", "--bank", "BANK"], "--bank applies to"),
        (["--backend", "vllm", "--recipe", "RECIPE", "--cells", "llama-1b-math500"], "--cells"),
        (["--backend", "vllm", "--recipe", "nope"], "recipe not found"),
        (["--backend", "vllm", "--recipe", "RECIPE", "--dataset", "aime2024"], "MATH500 only"),
        (["--backend", "vllm", "--recipe", "AIME"], "fig4 is MATH500 only"),
        (["--backend", "vllm", "--recipe", "GSM8K"], "none of the paper's (math500"),
        (["--backend", "vllm", "--recipe", "SMOL"], "none of the paper's models"),
        (["--backend", "vllm", "--recipe", "NOPOLICY"], "naming at least the policy"),
    ],
)
def test_bad_host_input_is_one_line_before_any_work(settings_bank, tmp_path, args, message):
    recipes = {k: _recipe(tmp_path / k.lower(), *v) for k, v in _RECIPES.items()}
    names = {**recipes, "BANK": str(settings_bank), "NOBANK": str(tmp_path / "none.sqlite")}
    out = tmp_path / "out"
    code, printed, err = _run(
        ["paper", "fig4", *[names.get(a, a) for a in args], "--out", str(out)]
    )
    assert code == 2 and printed == ""
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_table1_on_a_text_backend_needs_its_two_searches_in_the_run(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[vllm]\npolicy = "meta-llama/Llama-3.2-1B-Instruct"\n')
    args = ["paper", "table1", "--backend", "vllm", "--recipe", str(recipe), "--budgets", "16"]
    code, printed, err = _run([*args, "--out", str(tmp_path / "out")])
    assert code == 2 and printed == "" and err.count("\n") == 1
    assert "REBASE@256 and DORA@64" in err and "rebase@256, dora@64" in err


def test_a_policy_is_recognised_by_its_name():
    assert reproduce.model_of_policy("meta-llama/Llama-3.2-3B-Instruct") == "llama-3.2-3b"
    assert reproduce.model_of_policy("/models/Qwen2.5-1.5B-Instruct") == "qwen2.5-1.5b"
    assert reproduce.model_of_policy("HuggingFaceTB/SmolLM2-135M") is None
