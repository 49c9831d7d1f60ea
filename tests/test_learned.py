"""The `learned` rule (dora_jax.learned) and its training (simulations.train).

The shared conformance suite (tests/test_conformance.py) runs `learned` with its shipped
checkpoint because it is registered; here: the training objective, a short training run's loss,
determinism and resumption, the shipped checkpoint's pinned allocations, and one-line errors.
"""

from __future__ import annotations

import dataclasses
import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dora_jax
from dora_cli.main import main
from dora_jax import learned
from simulations import train

K, E = 12, 8


def _states(seed: int, m: int = 48) -> train.States:
    """Hand-made states (no world: fast): 3–5 directions of unequal size sharing one score each;
    κ = 5. The optimum concentrates on the best directions and not by copy count."""
    rng = np.random.default_rng(seed)
    scores = np.zeros((m, K), np.float32)
    emb = np.zeros((m, K, E), np.float32)
    dirs = np.zeros((m, K), np.int32)
    for s in range(m):
        d = rng.integers(3, 6)
        member = np.sort(rng.integers(0, d, size=K))
        centers = rng.normal(size=(d, E))
        first = np.searchsorted(member, member)  # the first index of each direction
        score = rng.uniform(0.01, 0.3, size=d)
        scores[s] = score[member]
        emb[s] = centers[member] + 0.02 * rng.normal(size=(K, E))
        dirs[s] = first
    valid = rng.random((m, K)) < 0.9
    valid[:, 0] = True
    return train.States(
        scores=jnp.asarray(scores),
        embeddings=jnp.asarray(emb),
        valid=jnp.asarray(valid),
        directions=jnp.asarray(dirs),
        w=jnp.asarray(scores),
        kappa=jnp.full((m,), 5.0, jnp.float32),
        budget=jnp.asarray(rng.choice([8, 16, 32], size=m).astype(np.int32)),
    )


SETTINGS = train.TrainSettings(batch=16, learning_rate=3e-3, width=16, layers=1)


def _fresh(settings=SETTINGS):
    keys = train._keys(settings)
    config, graphdef, params, optimizer = train._init(settings, keys["init"])
    return config, keys, (graphdef, params, optimizer.init(params), optimizer)


def _loss(graphdef, params, states):
    return float(train.relaxed_loss(graphdef, params, states, jnp.zeros(states.budget.shape, bool)))


def _bits(tree):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def test_relaxed_failure_is_the_exact_expected_failure_at_integers():
    """At integer B the relaxed objective equals dora_jax.expected_failure with the directions
    (tolerance 1e-4 relative: float32 log-gamma differences); control: other directions differ."""
    states = _states(0, m=6)
    for i in range(6):
        n = int(states.budget[i])
        valid = np.asarray(states.valid[i])
        w = np.asarray(states.w[i])
        counts = np.asarray(dora_jax.allocate("rebase", w, n, mask=valid))
        relaxed = train.direction_failure(
            jnp.asarray(counts / n, jnp.float32),
            jnp.float32(n),
            states.w[i],
            states.directions[i],
            states.valid[i],
            states.kappa[i],
        )
        exact = dora_jax.expected_failure(
            w, counts, kappa=5.0, directions=np.asarray(states.directions[i]), mask=valid
        )
        np.testing.assert_allclose(float(relaxed), float(exact), rtol=1e-4)
        alone = dora_jax.expected_failure(w, counts, kappa=5.0, mask=valid)
        if not np.isclose(float(alone), float(exact), rtol=1e-3):
            break
    else:
        pytest.fail("control: treating shared directions as independent never changed the value")


def test_direction_cross_entropy_sees_direction_totals_not_the_split():
    """The imitation term depends on the shares only through their TRUE-direction totals
    (declared: equal to 1e-6 when mass moves within a direction) and is lowest at the target's
    totals (Gibbs); control: moving mass between directions changes it."""
    directions = jnp.asarray([0, 0, 0, 3, 3, 5], jnp.int32)
    valid = jnp.ones(6, bool)
    target = jnp.asarray([0.5, 0.0, 0.0, 0.1, 0.2, 0.2], jnp.float32)  # totals 0.5, 0.3, 0.2
    same_totals = jnp.asarray([0.1, 0.2, 0.2, 0.3, 0.0, 0.2], jnp.float32)
    other = jnp.asarray([0.2, 0.1, 0.0, 0.3, 0.1, 0.3], jnp.float32)  # totals 0.3, 0.4, 0.3

    def ce(shares):
        return float(train.direction_cross_entropy(shares, target, directions, valid))

    assert abs(ce(target) - ce(same_totals)) < 1e-6
    assert ce(other) > ce(target) + 1e-3


@pytest.mark.slow  # compiling the training step takes > 10 s on two shared cores
def test_short_training_lowers_the_loss_and_is_bit_for_bit_deterministic():
    states = _states(1)
    _, keys, run = _fresh()
    graphdef = run[0]
    before = _loss(graphdef, run[1], states)
    params_a, _, losses = train.fit(run, states, keys, SETTINGS.batch, 0, 40, log_every=10)
    after = _loss(graphdef, params_a, states)
    assert after < 0.95 * before, (before, after, losses)  # declared: at least 5% lower
    _, keys_b, run_b = _fresh()
    params_b, _, losses_b = train.fit(run_b, states, keys_b, SETTINGS.batch, 0, 40, log_every=10)
    assert _bits(params_a) == _bits(params_b)
    assert losses == losses_b
    # Control: another seed gives other bits.
    _, keys_c, run_c = _fresh(dataclasses.replace(SETTINGS, seed=1))
    params_c, _, _ = train.fit(run_c, states, keys_c, SETTINGS.batch, 0, 40)
    assert _bits(params_a) != _bits(params_c)


@pytest.mark.slow
def test_resuming_from_a_checkpoint_equals_an_uninterrupted_run(tmp_path):
    states = _states(2)
    config, keys, run = _fresh()
    straight, _, _ = train.fit(run, states, keys, SETTINGS.batch, 0, 20)
    config, keys, run = _fresh()
    graphdef, params, opt_state, optimizer = run
    params, opt_state, _ = train.fit(run, states, keys, SETTINGS.batch, 0, 10)
    path = tmp_path / "ck.msgpack"
    train.save_checkpoint(path, SETTINGS, config, params, opt_state, 10)
    _, _, fresh = _fresh()
    record = train.resume_point(path, SETTINGS)
    params, opt_state = train.restore(record, fresh[1], fresh[2])
    resumed, _, _ = train.fit(
        (graphdef, params, opt_state, optimizer), states, keys, SETTINGS.batch, 10, 20
    )
    assert _bits(resumed) == _bits(straight)
    with pytest.raises(ValueError, match="seed"):
        train.resume_point(path, dataclasses.replace(SETTINGS, seed=3))


# The packaged checkpoints on one fixed input: two directions of three copies at 0.9 and 0.8,
# and two singletons at 0.85 and 0.3 (one-hot embeddings per direction), N = 32.
_FIXED_SCORES = np.array([0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.85, 0.3], np.float32)
_FIXED_EMB = np.eye(8, 4, dtype=np.float32)[[0, 0, 0, 1, 1, 1, 2, 3]]
# DORA: [6, 5, 5, 2, 2, 2, 10, 0]
PINNED = {
    learned.SHIPPED: [4, 4, 4, 4, 4, 3, 9, 0],  # the default: fine-tuned end to end
    learned.IMITATION: [5, 5, 5, 3, 3, 3, 8, 0],  # its first stage
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_packaged_checkpoints_load_and_their_allocations_are_pinned(name):
    learned.load_checkpoint(name)
    assert learned.resolve_checkpoint(name).stat().st_size < 1_000_000
    counts = dora_jax.allocate("learned", _FIXED_SCORES, 32, embeddings=_FIXED_EMB, checkpoint=name)
    assert int(np.sum(counts)) == 32
    np.testing.assert_array_equal(counts, PINNED[name])


def test_the_default_checkpoint_is_the_fine_tuned_one():
    default = dora_jax.allocate("learned", _FIXED_SCORES, 32, embeddings=_FIXED_EMB)
    np.testing.assert_array_equal(default, PINNED[learned.SHIPPED])
    assert learned.resolve_checkpoint(learned.SHIPPED).name == "learned_e2e.msgpack"
    # the fine-tuning's recorded start is the packaged first stage, byte for byte
    record = learned.read_checkpoint(learned.resolve_checkpoint(learned.SHIPPED))
    first = learned.resolve_checkpoint(learned.IMITATION).read_bytes()
    assert record["train"]["start"] == learned.IMITATION
    assert record["train"]["start_sha256"] == hashlib.sha256(first).hexdigest()


def _wrong_shape(tmp_path):
    from flax import serialization

    record = learned.read_checkpoint(learned.resolve_checkpoint(learned.SHIPPED))
    record["config"] = {**record["config"], "width": 64}
    path = tmp_path / "wide.msgpack"
    path.write_bytes(serialization.msgpack_serialize(record))
    return path


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="checkpoint not found"):
        dora_jax.allocate("learned", _FIXED_SCORES, 8, checkpoint=str(tmp_path / "none"))
    garbage = tmp_path / "garbage.msgpack"
    garbage.write_bytes(b"\x00\x01not msgpack")
    with pytest.raises(ValueError, match="not a"):
        dora_jax.allocate("learned", _FIXED_SCORES, 8, checkpoint=str(garbage))
    with pytest.raises(ValueError, match="does not fit the model"):
        dora_jax.allocate("learned", _FIXED_SCORES, 8, checkpoint=str(_wrong_shape(tmp_path)))


@pytest.mark.parametrize("case", ["missing", "wrong_shape"])
def test_cli_bad_checkpoint_exits_2_with_one_line(case, tmp_path, capsys):
    path = tmp_path / "none.msgpack" if case == "missing" else _wrong_shape(tmp_path)
    args = ["allocate", "--method", "learned", "--scores", "0.9,0.5", "--budget", "4"]
    code = main([*args, "--checkpoint", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("dora: error: ")
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'world = "paper-like"\nmethods = [{{method = "learned", checkpoint = "{path}"}}]\n'
        "budgets = [16]\nproblems = 2\n"
    )
    code = main(["simulate", "--config", str(spec), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "checkpoint" in err
    assert not (tmp_path / "run").exists()  # before any work


def test_cli_train_rejects_bad_options_before_work(tmp_path, capsys):
    out = tmp_path / "ck.msgpack"
    assert main(["train", "--out", str(out), "--worlds", "nowhere"]) == 2
    assert "unknown training world" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--steps", "0"]) == 2
    capsys.readouterr()
    assert not out.exists()


@pytest.mark.slow
def test_cli_train_tiny_run_then_resume(tmp_path, capsys):
    """`dora train` end to end with tiny arguments (the world's search compiles: slow stage)."""
    out = tmp_path / "ck.msgpack"
    args = ["train", "--out", str(out), "--worlds", "paper-like", "--problems", "5"]
    assert main([*args, "--steps", "3", "--budgets", "16"]) == 0
    assert "mean posterior expected failure" in capsys.readouterr().out
    assert main([*args, "--steps", "5", "--budgets", "16", "--resume"]) == 0
    assert "step 5" in capsys.readouterr().out
    counts = dora_jax.allocate("learned", _FIXED_SCORES, 32, checkpoint=str(out))
    assert int(np.sum(counts)) == 32


def test_one_exponential_kernels_match_dora_gamma():
    """similarity_kernels' T_s row sums are those of exp((S − 1)/T_s) (declared: 1e-5 relative on
    log γ, float32 rounding), i.e. DORA's log γ; control: the 0.1 kernel's are not."""
    from dora_jax.rules import log_uniqueness

    valid = np.ones(K, bool)
    valid[-2:] = False
    emb = _states(3, m=1).embeddings[0]
    sim = dora_jax.rules.cosine_similarity(emb)
    wide, sums = learned.similarity_kernels(sim, jnp.asarray(valid))
    want = np.asarray(log_uniqueness(emb, jnp.asarray(valid), 0.01))
    np.testing.assert_allclose(-np.log(np.asarray(sums[:, 0]))[valid], want[valid], rtol=1e-5)
    assert not np.allclose(-np.log(np.asarray(sums[:, 1]))[valid], want[valid], rtol=1e-2)
    assert float(jnp.max(wide[:, ~valid])) == 0.0


def test_untrained_network_allocates_like_dora():
    """The head starts at 0 and c_R = c_γ = 1: an untrained network's allocation is DORA's
    (declared: equal counts on the fixed input); control: a non-zero head changes them."""
    from flax import nnx

    from dora_jax.apportion import apportion_shares

    _, _, run = _fresh()
    graphdef, params = run[0], run[1]

    def counts(params):
        model = nnx.merge(graphdef, params)
        scores, valid = jnp.asarray(_FIXED_SCORES), jnp.ones(8, bool)
        args = (scores, 32, valid, jnp.asarray(_FIXED_EMB), jnp.float32(1), jnp.asarray(False))
        shares = jax.nn.softmax(learned.learned_logits(model, *args))
        return np.asarray(apportion_shares(shares, 32, valid))

    dora = np.asarray(dora_jax.allocate("dora", _FIXED_SCORES, 32, embeddings=_FIXED_EMB))
    np.testing.assert_array_equal(counts(params), dora)
    pure = nnx.to_pure_dict(params)
    # Not constant: the final LayerNorm's output has zero mean over the width.
    width = pure["head"]["kernel"].shape[0]
    pure["head"]["kernel"] = jnp.linspace(-3.0, 3.0, width, dtype=jnp.float32)[:, None]
    nnx.replace_by_pure_dict(params, pure)
    assert not np.array_equal(counts(params), dora)


def test_held_out_worlds_lie_outside_the_declared_training_ranges():
    """Every held-out world has each geometry/PRM knob outside the training worlds' range (or a
    PRM mode no training world has); control: a training world is inside every range."""
    worlds = train.TRAINING_WORLDS.values()
    knobs = ("kappa", "alpha", "within_cosine", "parent_child_cosine")
    ranges = {
        k: (min(getattr(w, k) for w in worlds), max(getattr(w, k) for w in worlds)) for k in knobs
    }
    modes = {w.prm_mode for w in worlds}

    def outside(config) -> bool:
        if config.prm_mode not in modes:
            return True
        return all(not lo <= getattr(config, k) <= hi for k, (lo, hi) in ranges.items())

    assert all(outside(w) for w in train.HELD_OUT_WORLDS.values())
    assert not outside(train.TRAINING_WORLDS["paper-like"])


@pytest.mark.slow  # compiles a search with six rules
def test_learned_eval_runs_with_tiny_arguments(capsys):
    from simulations import learned_eval

    args = ["--problems", "3", "--problems-256", "2", "--seeds", "1", "--budgets", "4"]
    assert learned_eval.main([*args, "--worlds", "paper-like", "--max-rounds", "4"]) == 0
    out = capsys.readouterr().out
    assert "| paper-like (trained on) | 4 | 3 |" in out
    assert learned_eval.main(["--worlds", "nowhere"]) == 2


@pytest.mark.slow  # compiles a 4-slot search and six allocators
def test_learned_diagnose_runs_with_tiny_arguments(capsys):
    from simulations import learned_diagnose

    args = ["--budget", "4", "--problems", "3", "--rounds", "2"]
    assert learned_diagnose.main(args) == 0
    out = capsys.readouterr().out
    assert "optimum, true directions" in out and "top share" in out
    assert learned_diagnose.main(["--world", "nowhere"]) == 2
    assert "unknown world" in capsys.readouterr().err


def test_learned_eval_target_verdicts_can_come_out_every_way():
    """The declared target rule (margin 2 points): met, missed and inconclusive, each reached;
    the markdown table judges against bayes in a trained-on world and DORA in a held-out one."""
    from simulations import learned_eval

    assert learned_eval.target_verdict(-0.015, 0.02) == "met"
    assert learned_eval.target_verdict(-0.02, 0.0) == "met"  # the margin's edge is inside
    assert learned_eval.target_verdict(-0.03, -0.005) == "missed"  # control: a real loss
    assert learned_eval.target_verdict(-0.025, 0.01) == "inconclusive"  # too few problems

    def row(vs_bayes, vs_dora):
        row = {"budget": 16, "problems": 600, "learned": 0.8, "bayes": 0.8, "dora": 0.8}
        return {**row, "learned-bayes": vs_bayes, "learned-dora": vs_dora}

    fine, loses = (0.0, -0.01, 0.01), (-0.02, -0.03, -0.005)
    table = {"paraphrase": [row(fine, loses)], "far-geometry": [row(loses, fine)]}
    held = {"paraphrase": False, "far-geometry": True}
    text = learned_eval.markdown(table, held, ("bayes", "dora"))
    assert text.count("met (vs bayes)") == 1 and text.count("met (vs dora)") == 1
    flipped = {"paraphrase": [row(loses, fine)], "far-geometry": [row(fine, loses)]}
    text = learned_eval.markdown(flipped, held, ("bayes", "dora"))
    assert "missed (vs bayes)" in text and "missed (vs dora)" in text
    assert "— (no dora)" in learned_eval.markdown(
        {"far-geometry": [row(fine, fine)]}, held, ("bayes",)
    )
