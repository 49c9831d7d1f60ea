"""`dora simulate`: the spec, the runner's pairing and records, multi-device sharding, the CLI."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dora_cli.main import main
from simulations import report, runner, spec

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = {"methods": ["rebase", "dora"], "budgets": [4], "problems": 6, "max_rounds": 6}
RECORD_KEYS = {
    "method",
    "budget",
    "seed",
    "accuracy",
    "majority_accuracy",
    "best_of_n_accuracy",
    "pass_at_n",
    "rollouts",
    "tokens",
    "flops",
}


def test_spec_from_toml(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(
        'methods = ["rebase", {method = "dora", similarity_temperature = 0.05}]\n'
        "budgets = [8, 4]\nproblems = 5\nseeds = 2\n"
        '[world]\npreset = "redundant"\nalpha = 0.5\nprm_mode = "logit_noise"\n'
    )
    s = spec.load_spec(path)
    assert [r.label for r in s.rules] == ["rebase", "dora(similarity_temperature=0.05)"]
    assert s.budgets == (4, 8) and s.problems == 5 and s.seeds == 2
    assert s.world.alpha == 0.5 and s.world.prm_mode == "logit_noise"
    assert s.world_name == "redundant+custom"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("budgets = [0]", "budgets"),
        ("budgets = [8, 4, 8]", "budgets repeat 8"),
        ('budgets = ["a"]', "budgets"),
        ('methods = ["nope"]', "unknown method"),
        ('methods = [{method = "rebase", beam_width = 2}]', "no hyperparameter"),
        ('methods = ["beam_search"]\nbudgets = [2]', "beam width"),
        ("problems = 0", "problems"),
        ('world = "atlantis"', "unknown world preset"),
        ("[world]\nalpha = -1.0", "alpha"),
        ("[world]\ncolour = 1", "unknown world field"),
        ("frobs = 1", "unknown key"),
        ("budgets = [4", "not valid TOML"),
        ('policy = "gpt-9"', "unknown policy"),
    ],
)
def test_bad_specs_are_one_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(spec.SpecError, match=message) as info:
        spec.load_spec(path)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def tiny_records():
    return runner.run(spec.build_spec(world="redundant", seeds=2, **TINY))


def test_records_schema_and_pairing(tiny_records):
    assert len(tiny_records) == 2 * 2  # methods × seeds
    for r in tiny_records:
        assert RECORD_KEYS <= set(r)
        assert 0 <= r["accuracy"] <= r["pass_at_n"] <= 1
        assert r["flops"]["total"] == pytest.approx(
            r["flops"]["policy"] + r["flops"]["prm"] + r["flops"]["embedding"], rel=1e-9
        )
        assert (r["flops"]["embedding"] > 0) == (r["method"] == "dora")
    rows = report.summarize(tiny_records)
    assert {(r["method"], r["budget"]) for r in rows} == {("rebase", 4), ("dora", 4)}
    json.dumps([runner.public_record(r) for r in tiny_records])  # serializable


def test_same_seed_same_records():
    again = runner.run(spec.build_spec(world="redundant", seeds=1, **TINY))
    once = runner.run(spec.build_spec(world="redundant", seeds=1, **TINY))
    strip = [{k: v for k, v in r.items() if k not in ("wall_s", "compile_s")} for r in once]
    for a, b in zip(strip, again, strict=True):
        for key, value in a.items():
            assert np.array_equal(np.asarray(value), np.asarray(b[key])), key


def test_budgets_share_compiled_searches_and_records_do_not_depend_on_them():
    """Budgets up to 64 run in one search of 64 slots, so a budget's record is the same whichever
    other budgets the spec lists."""
    budgets = (1, 16, 64, 65, 128, 256, 300)
    assert [runner.slots_for(b) for b in budgets] == [64, 64, 64, 256, 256, 256, 300]
    alone = runner.run(spec.build_spec(world="redundant", seeds=1, **TINY))
    grid = runner.run(spec.build_spec(world="redundant", seeds=1, **{**TINY, "budgets": [8, 4]}))
    order = [("rebase", 4), ("dora", 4), ("rebase", 8), ("dora", 8)]
    assert [(r["method"], r["budget"]) for r in grid] == order  # the spec's order
    drop = ("wall_s", "compile_s")
    for a, b in zip(alone, grid[:2], strict=True):
        for key, value in a.items():
            if key not in drop:
                assert np.array_equal(np.asarray(value), np.asarray(b[key])), key


@pytest.mark.slow
def test_pool_engine_records_equal_the_vmap_engine():
    """`dora simulate`'s engine (search_pool per device) gives the vmapped search's records bit
    for bit: every paper method, two budgets sharing one compiled search, two seeds, and an odd
    P whose pool refills its lanes."""
    s = spec.build_spec(
        world="paper-like",
        seeds=2,
        methods=list(spec.PAPER_METHODS),
        budgets=[8, 4],
        problems=9,
        max_rounds=6,
    )
    pool, vmap = (runner.run(s, engine=engine) for engine in ("pool", "vmap"))
    drop = ("wall_s", "compile_s", "versions")
    assert len(pool) == len(vmap) == 5 * 2 * 2
    for a, b in zip(pool, vmap, strict=True):
        assert (a["versions"]["engine"], b["versions"]["engine"]) == ("pool", "vmap")
        for key, value in a.items():
            if key not in drop:
                assert np.array_equal(np.asarray(value), np.asarray(b[key])), (key, a["method"])


def test_two_devices_give_identical_results(tmp_path):
    """The problem batch sharded over 2 (host) devices computes exactly what one device does."""
    code = (
        "import json, sys; from simulations import runner, spec; "
        f"s = spec.build_spec(world='paper-like', seeds=1, **{TINY!r}); "
        "import jax; rs = runner.run(s); "
        "print(json.dumps({'devices': jax.device_count(), "
        "'records': [runner.public_record(r) for r in rs]}, default=float))"
    )
    outputs = []
    for count in (1, 2):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={count}")
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
        )
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert [o["devices"] for o in outputs] == [1, 2]
    drop = ("wall_s", "compile_s", "versions")
    one, two = (
        [{k: v for k, v in r.items() if k not in drop} for r in o["records"]] for o in outputs
    )
    assert one == two


def test_dora_simulate_cli_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    args = "simulate --preset independent --methods rebase,dora --budgets 4 --problems 4"
    code = main([*args.split(), "--max-rounds", "5", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "N=4" in captured.out and "dora" in captured.out
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 and RECORD_KEYS <= set(json.loads(lines[0]))
    assert (out / "accuracy_vs_budget.png").stat().st_size > 0
    assert (out / "accuracy_vs_flops.png").stat().st_size > 0
    args = "simulate --preset independent --methods rebase --budgets 4 --problems 3 --json"
    code = main([*args.split(), "--max-rounds", "5", "--out", str(out), "--no-plots"])
    records = json.loads(capsys.readouterr().out)
    assert code == 0 and records[0]["method"] == "rebase" and records[0]["budget"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "unknown world preset"),
        (["--methods", "rebase,frob"], "unknown method"),
        (["--budgets", "4,x"], "budgets"),
        (["--budgets", "2", "--methods", "beam_search"], "beam width"),
        (["--problems", "0"], "problems"),
        (["--config", "/no/such.toml"], "not found"),
        (["--preset", "redundant", "--config", "x.toml"], "not both"),
    ],
)
def test_simulate_bad_input_is_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    code = main(["simulate", *args, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not out.exists()  # nothing half-written
