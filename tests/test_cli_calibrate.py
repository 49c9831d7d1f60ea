"""`dora calibrate` (κ from rollout labels) and `--kappa-from` in `dora simulate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

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


# ---------------------------------------------------------------------------------------------
# simulations.calibrate, the library behind the command


def test_read_records_pads_and_masks(tmp_path):
    from simulations import calibrate as lib

    path = tmp_path / "r.jsonl"
    rows = [("a", 0.2, 4, 1), ("b", 0.9, 8, 7), ("a", 0.6, 4, 3)]
    path.write_text(
        "\n".join(
            json.dumps({"problem": p, "score": w, "rollouts": m, "correct": c})
            for p, w, m, c in rows
        )
        + "\n\n"
    )
    labels = lib.read_records(path)
    assert labels.units == 3 and labels.truth is None
    np.testing.assert_array_equal(labels.mask, [[True, True], [True, False]])
    np.testing.assert_allclose(labels.scores[0], [0.2, 0.6])
    np.testing.assert_array_equal(labels.rollouts, [[4, 4], [8, 0]])
    np.testing.assert_array_equal(labels.correct, [[1, 3], [7, 0]])
    assert labels.source == {"records": str(path)}


def test_auto_picks_nuts_up_to_the_threshold():
    from simulations import calibrate as lib

    n = lib.AUTO_NUTS_MAX_UNITS
    assert lib.choose_method("auto", n) == "nuts"
    assert lib.choose_method("auto", n + 1) == "svi"
    assert lib.choose_method("nuts", n + 1) == "nuts"
    with pytest.raises(lib.CalibrateError, match="unknown method"):
        lib.choose_method("mcmc", 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"kappa": 0}', "positive"),
        ('{"kappa": true}', "positive"),
        ('{"kappa": "12"}', "positive"),
        ('{"kappa": Infinity}', "finite"),
        ('{"kappa_mean": 3}', "no 'kappa'"),
        ("[1, 2]", "no 'kappa'"),
        ("not json", "no 'kappa'"),
    ],
)
def test_load_kappa_rejects_bad_files(tmp_path, text, message):
    from simulations import calibrate as lib

    path = tmp_path / "k.json"
    path.write_text(text)
    with pytest.raises(lib.CalibrateError, match=message):
        lib.load_kappa(path)


def test_with_kappa_only_fills_rules_that_take_it_and_keeps_a_given_one():
    from dora_jax.search import Rule
    from simulations import calibrate as lib

    rules = (Rule.make("rebase"), Rule.make("optimal"), Rule.make("bayes", kappa=3.0))
    out = lib.with_kappa(rules, 12.345678)
    assert [r.label for r in out] == ["rebase", "optimal(kappa=12.35)", "bayes(kappa=3.0)"]
