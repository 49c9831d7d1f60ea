"""Every experiment file in simulations/examples/ parses and runs (with tiny sizes)."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from simulations import runner, spec

EXAMPLES = sorted(
    (pathlib.Path(__file__).resolve().parents[1] / "simulations" / "examples").glob("*.toml")
)


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_with_tiny_sizes(path):
    full = spec.load_spec(path)
    tiny = dataclasses.replace(
        full, budgets=(max(4, min(full.budgets) // 4),), problems=3, seeds=1, max_rounds=5
    )
    records = runner.run(tiny)
    assert [r["method"] for r in records] == [r.label for r in full.rules]
    assert all(0 <= r["accuracy"] <= 1 for r in records)
