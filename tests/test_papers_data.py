"""papers.data: the paper's numbers load, are complete, agree with the paper notes they were
extracted from (when those notes are present), and pass the paper's own cross-checks."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import numpy as np
import pytest

from papers import data

REPO = Path(__file__).resolve().parents[1]


def _notes() -> Path | None:
    """The project's paper notes (kept outside the repository): $DORA_PAPER_NOTES, or
    shared/PAPER.md beside the repository or one of its parent folders."""
    env = os.environ.get("DORA_PAPER_NOTES")
    if env:
        return Path(env) if Path(env).is_file() else None
    for parent in REPO.parents:
        candidate = parent / "shared" / "PAPER.md"
        if candidate.is_file():
            return candidate
    return None


NOTES = _notes()
needs_notes = pytest.mark.skipif(
    NOTES is None, reason="the paper notes (shared/PAPER.md) are not beside this checkout"
)

MODEL_NAMES = {
    "Llama-3.2-1B-Instruct": "llama-3.2-1b",
    "Llama-3.2-3B-Instruct": "llama-3.2-3b",
    "Qwen2.5-1.5B-Instruct": "qwen2.5-1.5b",
}
METHOD_NAMES = {
    "TempSampling": "temperature_sampling",
    "BeamSearch": "beam_search",
    "Beam Search": "beam_search",
    "DVTS": "dvts",
    "REBASE": "rebase",
    "DORA": "dora",
}


def _markdown_tables(text: str) -> list[tuple[str, list[list[str]]]]:
    """(the nearest preceding bold caption or heading, body rows) of every markdown table."""
    out = []
    caption = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append([c.strip().strip("*") for c in lines[i].strip().strip("|").split("|")])
                i += 1
            out.append((caption, block[0], block[2:]))
            continue
        if (line.startswith("**") and line.endswith("**")) or line.startswith("#"):
            caption = line.strip("*# ")
        i += 1
    return out


@pytest.fixture(scope="module")
def notes_tables():
    assert NOTES is not None
    return _markdown_tables(NOTES.read_text())


@needs_notes
def test_fig3_matches_the_notes(notes_tables):
    paper = {(r.metric, r.model, r.dataset, r.method, r.budget): r.value for r in data.fig3()}
    checked = 0
    for caption, header, rows in notes_tables:
        m = re.fullmatch(r"(Accuracy|PassRate) — (MATH500|AIME2024|AIME2025) — (\S+)", caption)
        if not m:
            continue
        metric = "accuracy" if m[1] == "Accuracy" else "pass_rate"
        assert [h.removeprefix("N=") for h in header[1:]] == [str(b) for b in data.BUDGETS]
        for row in rows:
            for budget, text in zip(data.BUDGETS, row[1:], strict=True):
                key = (metric, MODEL_NAMES[m[3]], m[2].lower(), METHOD_NAMES[row[0]], budget)
                assert paper[key] == float(text), key
                checked += 1
    assert checked == len(paper) == 450


@needs_notes
def test_fig4_matches_the_notes(notes_tables):
    paper = {(r.model, r.level, r.method, r.budget): r.value for r in data.fig4()}
    checked = 0
    for caption, _, rows in notes_tables:
        m = re.fullmatch(r"Figure 4 — (\S+) — MATH500 accuracy by difficulty level", caption)
        if not m:
            continue
        for row in rows:
            for budget, text in zip(data.BUDGETS, row[2:], strict=True):
                key = (MODEL_NAMES[m[1]], int(row[0][1:]), METHOD_NAMES[row[1]], budget)
                assert paper[key] == float(text), key
                checked += 1
    assert checked == len(paper) == 375


@needs_notes
def test_table1_matches_the_notes(notes_tables):
    (body,) = [rows for caption, _, rows in notes_tables if caption.startswith("6.1 Table 1")]
    table = data.table1_dict()
    assert len(body) == len(table) == 4
    for row in body:
        got = table[METHOD_NAMES[row[0]]]
        assert got["rollouts"] == int(row[1])
        assert [got[q] for q in data.TABLE1_QUANTITIES] == [float(x) for x in row[2:]]


def test_every_cell_present_exactly_once():
    fig3 = data.fig3()
    keys3 = [(r.metric, r.model, r.dataset, r.method, r.budget) for r in fig3]
    assert len(keys3) == len(set(keys3)) == 2 * 3 * 3 * 5 * 5
    assert set(keys3) == set(
        itertools.product(data.METRICS, data.MODELS, data.DATASETS, data.METHODS, data.BUDGETS)
    )
    fig4 = data.fig4()
    keys4 = [(r.model, r.level, r.method, r.budget) for r in fig4]
    assert len(keys4) == len(set(keys4)) == 3 * 5 * 5 * 5
    assert {(r.model, r.method) for r in fig4} == set(itertools.product(data.MODELS, data.METHODS))
    assert sorted({r.method for r in data.table1()}) == ["beam_search", "dora", "dvts", "rebase"]
    assert len(data.table1()) == 4 * len(data.TABLE1_QUANTITIES)


def test_precision_and_provenance():
    for r in data.fig3():
        assert r.precision == (0.05 if r.dataset == "math500" else 0.2)
        assert (r.page, r.provenance) == (7, "read from the vector graphics")
    assert {(r.precision, r.page) for r in data.fig4()} == {(0.1, 9)}
    assert {(r.precision, r.page, r.provenance) for r in data.table1()} == {
        (0.0, 8, "printed in the table")
    }


def test_math500_values_are_multiples_of_0_04():
    # 500 problems × 5 runs: a MATH500 accuracy is a multiple of 100 / 2500 = 0.04 points, up to
    # the ±0.05 reading precision (the notes' sanity check on the extraction).
    grid = data.fig3_grid("accuracy")
    math500 = grid.values[:, data.DATASETS.index("math500")]
    residue = np.abs(math500 / 0.04 - np.round(math500 / 0.04)) * 0.04
    assert residue.max() <= 0.05
    assert np.median(residue) < 0.011  # most values land on the 0.04 grid (to the print's 0.01)


def test_table1_ratios():
    table = data.table1_dict()
    flops = table["rebase"]["total_flops"] / table["dora"]["total_flops"]
    latency = table["rebase"]["latency"] / table["dora"]["latency"]
    assert round(flops, 2) == 3.49 and round(latency, 2) == 3.95
    assert (flops, latency) == (data.PAPER_FLOPS_RATIO, data.PAPER_LATENCY_RATIO)
    for method, row in table.items():
        parts = row["policy_flops"] + row["prm_flops"] + row["embedding_flops"]
        assert parts == pytest.approx(row["total_flops"], rel=0.01), method


def test_fig4_levels_average_to_fig3():
    # The size-weighted mean of Llama-1B's DORA@256 level accuracies is Fig. 3's 71.0 (to 0.2).
    g4, g3 = data.fig4_grid(), data.fig3_grid("accuracy")
    model, dora, n256 = data.MODELS.index("llama-3.2-1b"), data.METHODS.index("dora"), -1
    sizes = np.asarray(data.LEVEL_SIZES, float)
    weighted = float(sizes @ g4.values[model, :, dora, n256] / sizes.sum())
    assert abs(weighted - 70.9) < 0.05
    assert abs(weighted - g3.values[model, data.DATASETS.index("math500"), dora, n256]) < 0.2


def test_findings():
    found = data.findings()
    assert len({f.id for f in found}) == len(found) >= 8
    assert all(f.where and f.statement for f in found)


def _copy_with(tmp_path: Path, name: str, edit) -> Path:
    text = (data.DATA_DIR / name).read_text().splitlines(keepends=True)
    path = tmp_path / name
    path.write_text("".join(edit(text)))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t[:1] + t[2:], "cells missing"),
        (lambda t: t + t[1:2], "more than once"),
        (lambda t: [t[0], t[1].replace(",16,", ",17,"), *t[2:]], "budget '17' is not one of"),
        (lambda t: [t[0], t[1].replace("46.22", "abc"), *t[2:]], "value 'abc' is not float"),
        (lambda t: [t[0], t[1].replace("llama-3.2-1b", "gpt"), *t[2:]], "model 'gpt'"),
        (lambda t: [t[0].replace("value", "val"), *t[1:]], "header"),
        (lambda t: [t[0], t[1].rstrip() + ",x\n", *t[2:]], "line 2: 11 fields"),
    ],
)
def test_malformed_fig3_is_one_line(tmp_path, edit, message):
    path = _copy_with(tmp_path, "fig3.csv", edit)
    with pytest.raises(data.PaperDataError, match=re.escape(message)) as err:
        data.fig3(path)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(data.PaperDataError, match="no such file"):
        data.table1(tmp_path / "table1.csv")
