"""The `dora` command: as a user runs it (the installed console script, in a subprocess) and,
for speed, in-process through the same entry point; and the benchmark script."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dora_cli.main import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
DORA = shutil.which("dora")


def run_installed(*args: str) -> subprocess.CompletedProcess:
    assert DORA, "the dora console script is not installed (pip install -e .[dev])"
    return subprocess.run([DORA, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def run(capsys):
    """The console script's entry point, in-process (one JAX start-up for the whole file)."""

    def call(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        code = main(list(args))
        out, err = capsys.readouterr()
        if check:
            assert code == 0, err
        return subprocess.CompletedProcess(args, code, out, err)

    return call


def test_installed_console_script():
    result = run_installed("allocate", "--scores", "0.9,0.1", "--budget", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["allocation"] == [3, 0]
    result = run_installed("allocate", "--scores", "0.9,0.1", "--budget", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == "dora: error: budget must be >= 1, got 0"


def test_allocate_prints_a_table_that_sums_to_n(run):
    out = run("allocate", "--method", "dora", "--scores", "0.9,0.9,0.7", "--budget", "16").stdout
    assert "DORA equals REBASE" in out  # no embeddings: said, not silently assumed
    assert out.strip().splitlines()[-1].split() == ["sum", "16"]


def test_allocate_json_with_embeddings(run, tmp_path):
    emb = tmp_path / "emb.npy"
    np.save(emb, np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32))
    out = run(
        "allocate",
        "--method",
        "dora",
        "--scores",
        "0.9,0.9,0.7",
        "--budget",
        "16",
        "--embeddings",
        str(emb),
        "--json",
    ).stdout
    record = json.loads(out)
    assert record["allocation"] == [7, 7, 2]
    assert record["note"] is None
    assert sum(record["allocation"]) == 16
    np.testing.assert_allclose(sum(record["weights"]), 1.0, rtol=1e-6)


@pytest.mark.parametrize("suffix", [".json", ".csv", ".txt"])
def test_embedding_file_formats(run, tmp_path, suffix):
    rows = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    path = tmp_path / f"emb{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        sep = "," if suffix == ".csv" else " "
        path.write_text("\n".join(sep.join(map(str, r)) for r in rows))
    out = run(
        "allocate", "--scores", "0.9,0.9,0.7", "--budget", "16", "--embeddings", str(path), "--json"
    ).stdout
    assert json.loads(out)["allocation"] == [7, 7, 2]


def test_every_method_and_variant_answers(run):
    for method in ("temperature_sampling", "beam_search", "dvts", "rebase", "dora", "optimal"):
        out = run(
            "allocate", "--method", method, "--scores", "0.9,0.5,0.7,0.1", "--budget", "9", "--json"
        ).stdout
        assert sum(json.loads(out)["allocation"]) == 9
    out = run(
        "allocate",
        "--method",
        "dora",
        "--scores",
        "0.9,0.5,0.7",
        "--budget",
        "9",
        "--rounding",
        "round_half_even_then_cycle",
        "--prefilter",
        "rebase_round",
        "--mask",
        "1,0,1",
        "--seed",
        "3",
        "--json",
    ).stdout
    record = json.loads(out)
    assert record["allocation"][1] == 0 and sum(record["allocation"]) == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["allocate", "--method", "nope", "--scores", "0.5", "--budget", "2"], "unknown method"),
        (["allocate", "--scores", "0.5,x", "--budget", "2"], "comma-separated"),
        (["allocate", "--scores", "0.5", "--budget", "0"], "budget"),
        (["allocate", "--scores", "0.5"], "budget"),
        (["allocate", "--scores", "0.5", "--budget", "two"], "budget"),
        (["allocate", "--scores", "0.5,0.2", "--budget", "2", "--mask", "1"], "mask"),
        (["allocate", "--scores", "0.5,0.2", "--budget", "2", "--mask", "0,0"], "masked"),
        (["allocate", "--scores", "0.5", "--budget", "2", "--embeddings", "/no/such"], "not found"),
        (["allocate", "--scores", "0.5", "--budget", "2", "--temperature", "0"], "temperature"),
        (["allocate", "--method", "optimal", "--scores", "1.5", "--budget", "2"], "[0, 1]"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run, args, message):
    result = run(*args, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dora: error:") and message in lines[0]


def test_bad_embedding_file_is_one_line(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3\n")
    result = run(
        "allocate", "--scores", "0.5,0.5", "--budget", "2", "--embeddings", str(bad), check=False
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    wrong = tmp_path / "wrong.json"
    wrong.write_text("[[1, 0], [0, 1], [1, 1]]")
    result = run(
        "allocate",
        "--method",
        "dora",
        "--scores",
        "0.5,0.5",
        "--budget",
        "2",
        "--embeddings",
        str(wrong),
        check=False,
    )
    assert result.returncode == 2 and "embeddings must have shape" in result.stderr


def test_benchmark_script_runs_with_tiny_arguments():
    script = ROOT / "benchmarks" / "allocate_throughput.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--problems",
            "8",
            "--k",
            "6",
            "--budget",
            "5",
            "--repeats",
            "1",
            "--rounds",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (
        sum(line.startswith(("rebase", "dora", "optimal")) for line in result.stdout.splitlines())
        == 4
    )
    assert "call time / temperature_sampling: " in result.stdout


def test_search_benchmark_runs_with_tiny_arguments():
    script = ROOT / "benchmarks" / "search_throughput.py"
    args = ["--problems", "4", "--reference-problems", "1", "--budget", "4", "--methods", "rebase"]
    result = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("rebase")


# ---------------------------------------------------------------------------------------------
# The app: help, version, help text from the registries, bounds and repeats


def _unwrapped(text: str) -> str:
    """Help text with the terminal wrapping undone (it breaks lines at spaces and hyphens)."""
    return re.sub(r"\s+", " ", re.sub(r"-\n\s+", "-", text))


def test_dora_alone_prints_the_help(run):
    out = run().stdout
    assert out.startswith("Usage: dora [OPTIONS] COMMAND")
    for command in ("allocate", "simulate", "bench", "calibrate", "verify"):
        assert f"  {command} " in out


def test_version(run):
    import dora_jax

    assert run("--version").stdout.strip() == f"dora {dora_jax.__version__}"


def test_help_lists_the_registries(run):
    import dora_jax
    from dora_jax import world
    from theory import runner

    for command in ("simulate", "bench"):
        text = _unwrapped(run(command, "--help").stdout)
        assert ", ".join(dora_jax.RULES) in text, command
    text = _unwrapped(run("allocate", "--help").stdout)  # each rule with its description
    for name, info in dora_jax.RULES.items():
        assert f"{name}: {info.description}" in text, name
    for command in ("simulate", "calibrate"):
        text = _unwrapped(run(command, "--help").stdout)
        for name in world.PRESETS:  # the fitted paper-* presets listed after the hand-set ones
            assert name in text, (command, name)
    assert ", ".join(runner.claim_ids()) in _unwrapped(run("verify", "--help").stdout)


def test_budget_at_the_bound_sums_exactly_and_above_is_one_line(run):
    from dora_cli._common import MAX_BUDGET

    for method in ("temperature_sampling", "rebase", "optimal"):
        out = run(
            "allocate", "--method", method, "--scores", "0.5,0.2,0.3", "--budget",
            str(MAX_BUDGET), "--json",
        ).stdout  # fmt: skip
        assert sum(json.loads(out)["allocation"]) == MAX_BUDGET, method
    for budget in (str(MAX_BUDGET + 1), "100000000000"):
        result = run("allocate", "--scores", "0.5,0.2", "--budget", budget, check=False)
        assert result.returncode == 2 and result.stdout == ""
        assert (
            result.stderr.strip()
            == f"dora: error: budget must be <= {MAX_BUDGET} (2**20), got {budget}"
        )
    result = run("allocate", "--scores", "0.5,0.2", "--budget", "1e11", check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "'--budget'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--budgets", "16,16"], "--budgets repeats 16"),
        (["simulate", "--methods", "rebase,dora,rebase"], "--methods repeats 'rebase'"),
        (["simulate", "--budgets", "100000000000"], "--budgets must be <= 1048576"),
        (["simulate", "--budgets", "1e11"], "comma-separated integers"),
        (["simulate", "--max-rounds", "100000000000"], "--max-rounds must be <="),
        (["simulate", "--seeds", "0"], "--seeds must be >= 1"),
        (["bench", "--budgets", "8,4,8"], "--budgets repeats 8"),
        (["bench", "--methods", "dora,dora"], "--methods repeats 'dora'"),
        (["bench", "--budgets", "2097152"], "--budgets must be <= 1048576"),
        (["bench", "--limit", "0"], "--limit must be >= 1"),
        (["allocate", "--scores", "0.5", "--budget", "2", "--seed", "4294967296"], "--seed must"),
        (["allocate", "--scores", "0.5", "--budget", "2", "--seed", "-1"], "--seed must be >= 0"),
        (["allocate", "--scores", "0.5", "--budget", "2", "--beam-width", "2097152"], "beam"),
        (["calibrate", "--seed", "100000000000000000000"], "--seed must be <= 4294967295"),
        (["calibrate", "--problems", "100000000", "--candidates", "1000"], "--candidates must"),
        (["verify", "--only", "rounding,rounding"], "--only repeats 'rounding'"),
        (["verify", "--only", ","], "--only is empty"),
    ],
)
def test_repeats_and_bounds_are_one_line_before_any_work(run, tmp_path, args, message):
    out = tmp_path / "never"
    result = run(*args, *(["--out", str(out)] if args[0] != "allocate" else []), check=False)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dora: error: ") and message in lines[0]
    assert not out.exists()


def test_bench_recipe_budgets_repeat_is_an_error(run, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text("[search]\nbudgets = [4, 4]\n")
    result = run("bench", "--recipe", str(recipe), "--out", str(tmp_path / "o"), check=False)
    assert result.returncode == 2 and "budgets repeats 4" in result.stderr


def test_simulate_out_of_memory_is_one_line(run, tmp_path, monkeypatch):
    import jax

    from simulations import runner

    def exhausted(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 1 bytes.")

    monkeypatch.setattr(runner, "run", exhausted)
    out = tmp_path / "o"
    result = run(
        "simulate", "--methods", "rebase", "--budgets", "4", "--out", str(out), check=False
    )
    assert result.returncode == 1 and not out.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dora: error: out of memory"), lines
