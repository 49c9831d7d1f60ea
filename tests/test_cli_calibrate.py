"""`dora calibrate` (κ from rollout labels) and `--kappa-from` in `dora simulate`."""

from __future__ import annotations

import json

import numpy as np

from dora_cli.main import main


def _call(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _write_records(path, kappa=20.0, problems=60, k=10, m=12, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for p in range(problems):
        w = rng.beta(2, 3, size=k).clip(0.01, 0.99)
        prob = rng.beta(kappa * w, kappa * (1 - w))
        c = rng.binomial(m, prob)
        lines += [
            json.dumps({"problem": f"p{p}", "score": float(a), "rollouts": m, "correct": int(b)})
            for a, b in zip(w, c, strict=True)
        ]
    path.write_text("\n".join(lines) + "\n")


def test_calibrate_from_records_writes_a_kappa_file(capsys, tmp_path):
    records, out = tmp_path / "r.jsonl", tmp_path / "kappa.json"
    _write_records(records)
    code, stdout, err = _call(
        capsys, "calibrate", "--records", str(records), "--method", "svi", "--svi-steps", "800",
        "--samples", "400", "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    lo, hi = summary["kappa_interval"]
    # 600 units at m = 12: the 90% interval is about ×1.5 wide; generous factor-2 sanity check
    assert 10 < summary["kappa"] < 40 and lo < summary["kappa"] < hi
    assert summary["units"] == 600 and summary["method"] == "svi"
    saved = json.loads(out.read_text())
    assert saved["kappa"] == summary["kappa"] and "samples" in saved


def test_simulate_takes_kappa_from_a_calibration(capsys, tmp_path):
    kappa = tmp_path / "kappa.json"
    kappa.write_text(json.dumps({"kappa": 12.345678}))
    code, stdout, err = _call(
        capsys, "simulate", "--methods", "optimal,rebase", "--budgets", "8", "--problems", "8",
        "--max-rounds", "6", "--kappa-from", str(kappa), "--out", str(tmp_path / "s"), "--json",
    )  # fmt: skip
    assert code == 0, err
    methods = {r["method"] for r in json.loads(stdout)}
    assert methods == {"optimal(kappa=12.35)", "rebase"}


def test_bad_calibrate_input(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "a", "score": 0.5, "rollouts": 4}\n')
    for args, needle in (
        (("--records", str(bad)), "lacks 'correct'"),
        (("--records", str(tmp_path / "nope.jsonl")), "not found"),
        (("--method", "mcmc"), "unknown method"),
        (("--preset", "nowhere"), "unknown world preset"),
        (("--preset", "independent", "--records", str(bad)), "not both"),
    ):
        code, _, err = _call(capsys, "calibrate", *args)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    missing = tmp_path / "k.json"
    code, _, err = _call(capsys, "simulate", "--kappa-from", str(missing))
    assert code == 2 and "not found" in err
