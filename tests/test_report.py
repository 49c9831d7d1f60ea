"""The one reporting path: backends.files, simulations.report's intervals and table,
simulations.plots' figures, and `dora simulate`'s output folder."""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest

from backends.files import JsonlError, append_jsonl, atomic_write, read_jsonl
from dora_cli.main import main
from simulations import plots, report

# --- files -----------------------------------------------------------------------------------


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    atomic_write(path, "old")
    atomic_write(path, b"new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["a.json"]


def test_append_then_read_round_trip_and_a_torn_last_line_is_cut(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, [{"a": 1}, {"a": 2}])
    append_jsonl(path, [])
    with open(path, "ab") as handle:  # a kill in the middle of an append
        handle.write(b'{"a": 3, "b"')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert path.read_bytes().endswith(b"}\n")  # cut off on disk: the next append is whole
    append_jsonl(path, [{"a": 4}])
    assert [r["a"] for r in read_jsonl(path)] == [1, 2, 4]
    assert read_jsonl(tmp_path / "missing.jsonl") == []


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (b'{"a": ', "not valid JSON (column 7: Expecting value)"),
        (b'{"a": "b', "not valid JSON (column 7: Unterminated string)"),
        (b"[1, 2]", "a JSON list"),
    ],
)
def test_a_damaged_middle_line_is_one_whole_line_naming_file_and_line(tmp_path, line, what):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n' + line + b'\n{"a": 2}\n')
    with pytest.raises(JsonlError) as info:
        read_jsonl(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 2: {what}")
    assert "\n" not in message and message.endswith("move the file away to start afresh")


# --- intervals ---------------------------------------------------------------------------------


def _bench_records(outcomes, method="m", budget=4, seeds=(0,)):
    return [
        {
            "problem": f"p{i}",
            "method": method,
            "budget": budget,
            "seed": s,
            "accuracy": int(a),
            "majority_accuracy": int(a),
            "best_of_n_accuracy": int(a),
            "pass_at_n": 1,
            "rollouts": budget,
            "flops": {"total": 1e12},
            "level": 1 + i % 3,
        }
        for s in seeds
        for i, a in enumerate(outcomes)
    ]


def test_bootstrap_matches_the_normal_interval_on_many_independent_problems():
    """P = 400 coin flips at p = 1/2: the percentile interval's half width is the normal one,
    1.96·sqrt(p(1-p)/P), up to the bootstrap's own Monte Carlo error (2000 draws: ≈ 3% on a
    tail quantile; the tolerance, 10%, is ≈ 3 of those, and the draws are seeded, so the test
    is deterministic)."""
    outcomes = np.arange(400) % 2
    (row,) = report.summarize(_bench_records(outcomes))
    low, high = row["accuracy_ci95"]
    assert row["accuracy"] == 0.5
    assert (high - low) / 2 == pytest.approx(1.959964 * np.sqrt(0.25 / 400), rel=0.10)


def test_seeds_of_one_problem_are_one_cluster():
    """Claim: seeds that repeat every problem's outcome add no information, so the interval is
    the one-seed interval exactly. Control: the same outcomes as independent problems (the
    simulate grain, where each seed draws fresh problems) narrow it by about sqrt(2)."""
    outcomes = (np.arange(60) % 3 == 0).astype(int)
    (one,) = report.summarize(_bench_records(outcomes))
    (two,) = report.summarize(_bench_records(outcomes, seeds=(0, 1)))
    assert two["accuracy_ci95"] == one["accuracy_ci95"] and two["seeds"] == 2
    fresh = [
        {**_bench_records([0])[0], "seed": s, "per_problem_accuracy": "".join(map(str, outcomes))}
        for s in (0, 1)
    ]
    for r in fresh:
        del r["problem"]
    (independent,) = report.summarize(fresh)
    assert independent["accuracy"] == one["accuracy"] and independent["problems"] == 60
    width = np.diff(one["accuracy_ci95"])[0] / np.diff(independent["accuracy_ci95"])[0]
    assert 1.2 < width < 1.7  # sqrt(2) ≈ 1.41


def test_paired_difference_cancels_the_problems():
    """Claim: a method equal to the reference differs by exactly 0 with a zero-width interval.
    Control: one that loses 10 of 50 problems differs by -0.2 with an interval excluding 0."""
    base = np.ones(50, int)
    worse = base.copy()
    worse[:10] = 0
    records = [
        *_bench_records(base, method="ref"),
        *_bench_records(base, method="same"),
        *_bench_records(worse, method="worse"),
    ]
    rows = {d["method"]: d for d in report.paired_differences(records, "ref")}
    assert rows["same"]["difference"] == 0 and rows["same"]["ci95"] == [0.0, 0.0]
    assert rows["worse"]["difference"] == pytest.approx(-0.2)
    assert rows["worse"]["ci95"][1] < 0 < 1 + rows["worse"]["ci95"][0]
    text = report.differences_table(report.paired_differences(records, "ref"), "ref")
    assert "worse" in text and "-20.00" in text and "95%" in text


def test_table_groups_by_method_and_names_its_interval():
    records = [
        *_bench_records([1, 0, 1], method="a", budget=8),
        *_bench_records([1, 1, 1], method="a", budget=4),
        *_bench_records([0, 0, 1], method="b", budget=4),
    ]
    lines = report.table(report.summarize(records)).splitlines()
    assert [line.split()[:2] for line in lines[1:4]] == [["a", "4"], ["a", "8"], ["b", "4"]]
    assert "TFLOPs" in lines[0] and "66.7" in lines[2] and lines[-1].startswith("CI: 95%")


# --- plots -----------------------------------------------------------------------------------


def _legend_texts(fig):
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_a_single_budget_gets_error_bars_labelled_as_95_percent_intervals():
    records = [*_bench_records([1, 0, 1, 1], method="a"), *_bench_records([0, 0, 1, 1], "b")]
    fig = plots.versus_figure(report.summarize(records), "budget", "t")
    ax = fig.axes[0]
    assert len(ax.containers) == 2  # one error bar per method
    assert not ax.collections or all(c.get_label().startswith("_") for c in ax.collections)
    assert any("bars: 95% interval" in t for t in _legend_texts(fig))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4"]


def test_several_budgets_get_bands_labelled_as_95_percent_intervals():
    records = [*_bench_records([1, 0, 1], budget=4), *_bench_records([1, 1, 1], budget=16)]
    fig = plots.versus_figure(report.summarize(records), "budget", "t")
    assert any("shaded: 95% interval" in t for t in _legend_texts(fig))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["4", "16"]


@pytest.mark.parametrize(
    ("low", "high"), [(2.1e13, 8.7e13), (3.3e13, 3.9e13), (1.2e12, 9.5e15), (5e9, 6e9)]
)
def test_flops_ticks_are_few_round_and_do_not_overlap(low, high):
    rows = [
        {**row, "budget": n, "flops": f}
        for n, f in zip((4, 8, 16), np.geomspace(low, high, 3), strict=True)
        for row in report.summarize(_bench_records([1, 0]))
    ]
    fig = plots.versus_figure(rows, "flops", "t")
    fig.canvas.draw()
    labels = [t for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert 2 <= len(labels) <= plots.MAX_TICKS
    boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: b.x0)
    assert all(a.x1 < b.x0 for a, b in itertools.pairwise(boxes))


def test_level_plot_is_bars_with_whole_levels_and_n_per_level():
    records = [*_bench_records([1, 0, 1, 1, 0, 1, 1], "a"), *_bench_records([0] * 7, "b")]
    fig = plots.level_figure(report.by_level(records), "t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "level 1\n(n=3)",
        "level 2\n(n=2)",
        "level 3\n(n=2)",
    ]
    assert sum(len(c.patches) for c in ax.containers if hasattr(c, "patches")) == 2 * 3
    assert "95% interval" in ax.get_legend().get_title().get_text()


# --- the output folder -----------------------------------------------------------------------


def test_simulate_no_plots_removes_the_previous_runs_plots(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["simulate", "--preset", "independent", "--methods", "rebase,dora"]
    args += ["--budgets", "4", "--problems", "4", "--max-rounds", "5", "--out", str(out)]
    assert main(args) == 0
    assert {p.name for p in out.glob("*.png")} == {plots.BUDGET_PLOT, plots.FLOPS_PLOT}
    text = capsys.readouterr().out
    assert "paired difference vs rebase" in text and "CI: 95%" in text
    assert main([*args, "--no-plots"]) == 0
    assert not list(out.glob("*.png"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interval"] == report.INTERVAL and len(summary["rows"]) == 2
