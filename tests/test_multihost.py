"""`dora simulate` and `dora verify`'s Pareto claim across processes (`jax.distributed`): two
local processes give exactly what one process gives; the multi-host options are checked before
any work."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from dora_cli.main import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
# An odd P (padded to 8 rows, 4 per process) and 2 seeds: the padding and several gathers.
TINY = "--problems 7 --seeds 2 --budgets 8 --max-rounds 8 --methods rebase,dora --no-plots"
TIMING = ("wall_s", "compile_s", "versions")  # versions holds the device and process counts
TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _records(out: pathlib.Path) -> list[dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def _start(out: pathlib.Path, extra: list[str], env_extra: dict[str, str]) -> subprocess.Popen:
    command = ["simulate", *TINY.split(), "--out", str(out)]
    return _start_dora([*command, *extra], env_extra)


def _start_dora(args: list[str], env_extra: dict[str, str]) -> subprocess.Popen:
    env = dict(os.environ, DORA_JAX_CACHE="off", **env_extra)
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    return subprocess.Popen(
        [sys.executable, "-m", "dora_cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(processes: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    """Waits for every process (bounded); kills them all if one hangs."""
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in processes]
        return [(p.returncode, *output) for p, output in zip(processes, outputs, strict=True)]
    except subprocess.TimeoutExpired:
        for p in processes:
            p.kill()
            p.communicate()
        pytest.fail(f"multi-host run did not finish within {TIMEOUT_S} s")
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()


@pytest.mark.slow
def test_two_processes_give_the_records_of_one(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    coordinator = f"127.0.0.1:{_free_port()}"
    # Process 0 takes the options, process 1 the environment variables: both ways are checked.
    first = _start(
        two, ["--coordinator", coordinator, "--num-processes", "2", "--process-id", "0"], {}
    )
    second = _start(
        two,
        [],
        {"DORA_COORDINATOR": coordinator, "DORA_NUM_PROCESSES": "2", "DORA_PROCESS_ID": "1"},
    )
    finished = _finish([first, second])
    for rank, (code, _, err) in enumerate(finished):
        assert code == 0, f"process {rank}: {err[-2000:]}"
    # Process 0 alone prints the report (gloo's own connection line goes to both stdouts).
    assert "wrote" in finished[0][1] and "wrote" not in finished[1][1]
    assert "world" not in finished[1][1]
    [(code, _, err)] = _finish([_start(one, [], {})])
    assert code == 0, err[-2000:]
    lines = (two / "results.jsonl").read_text().splitlines()
    versions = [json.loads(line)["versions"] for line in lines]
    assert {(v["processes"], v["devices"]) for v in versions} == {(2, 2)}
    records = _records(two)
    assert len(records) == 4  # 2 methods × 1 budget × 2 seeds
    assert records == _records(one)


ADAPTIVE = ["--stop-threshold", "0.8", "--pool-cap", "2", "--total-rollouts", "40"]


def _rank(i: int) -> list[str]:
    return ["--process-id", str(i)]


@pytest.mark.slow
def test_adaptive_on_two_processes_equals_one(tmp_path):
    """The pooled search across processes: the batch (7 problems padded to 8 rows over two
    processes) is one pool of the 7 real problems, so the records equal one process's (no
    padding there); the padding row takes no share."""
    two, one = tmp_path / "two", tmp_path / "one"
    coordinator = f"127.0.0.1:{_free_port()}"
    processes = [
        _start(
            two,
            [*ADAPTIVE, "--coordinator", coordinator, "--num-processes", "2", *_rank(i)],
            {},
        )
        for i in (0, 1)
    ]
    for rank, (code, _, err) in enumerate(_finish(processes)):
        assert code == 0, f"process {rank}: {err[-2000:]}"
    [(code, _, err)] = _finish([_start(one, ADAPTIVE, {})])
    assert code == 0, err[-2000:]
    records = _records(two)
    assert len(records) == 4 and all(r["adaptive"]["pool"] == 7 * 8 for r in records)
    assert all(r["adaptive"]["total"] == 7 * 40 for r in records)
    assert records == _records(one)


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in ("wall_s", "seconds")}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


@pytest.mark.slow
def test_pareto_claim_on_two_processes_equals_one():
    """`dora verify`'s Pareto claim (§4.3, Table 1) runs its simulated batches across processes."""
    claim = ["verify", "--only", "pareto", "--fast", "--json"]
    coordinator = f"127.0.0.1:{_free_port()}"
    processes = [
        _start_dora(
            [*claim, "--coordinator", coordinator, "--num-processes", "2", "--process-id", str(i)],
            {},
        )
        for i in (0, 1)
    ]
    finished = _finish(processes)
    for rank, (code, _, err) in enumerate(finished):
        assert code == 0, f"process {rank}: {err[-2000:]}"
    assert "pareto" not in finished[1][1]  # process 0 alone prints
    [(code, alone, err)] = _finish([_start_dora(claim, {})])
    assert code == 0, err[-2000:]
    two = json.loads(finished[0][1].strip().splitlines()[-1])
    one = json.loads(alone.strip().splitlines()[-1])
    assert one[0]["claim_id"] == "pareto" and one[0]["verdict"] in ("holds", "fails")
    assert _without_timing(two) == _without_timing(one)


@pytest.mark.parametrize("command", ["simulate", "verify"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--coordinator", "127.0.0.1:1234"], "needs all of"),
        (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"], "HOST:PORT"),
        (["--coordinator", "h:99999", "--num-processes", "2", "--process-id", "0"], "HOST:PORT"),
        (["--coordinator", "h:1234", "--num-processes", "0", "--process-id", "0"], "at least 1"),
        (["--coordinator", "h:1234", "--num-processes", "2", "--process-id", "2"], "0..1"),
    ],
)
def test_multihost_bad_input_is_one_line(tmp_path, capsys, monkeypatch, command, args, message):
    for name in ("DORA_COORDINATOR", "DORA_NUM_PROCESSES", "DORA_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    code = main([command, *args, "--out", str(tmp_path / "never")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "never").exists()
