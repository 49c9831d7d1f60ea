"""End-to-end fine-tuning of the `learned` rule (simulations.finetune).

Fast: the sampled allocation and its score, the estimator's unbiasedness against an exact
gradient (with a biased-baseline control that must fail the same check), a few estimator steps
raising an exactly computed objective, and the CLI's one-line errors. Slow: a short fine-tuning
run through the compiled search is bit-for-bit deterministic and resumes exactly.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dora_jax
from dora_cli.main import main
from simulations import finetune, learned_eval

# |mc − exact| < K_SE · SE per coordinate: with 3 coordinates, a false failure rate of
# 3 · P(|Z| > 4.5) ≈ 2e-5 (the Monte Carlo means are sums of 4,000 independent groups: normal).
K_SE = 4.5
TOY_N = 3
TOY_LOGITS = jnp.asarray([0.3, -0.2, 0.1], jnp.float32)
TOY_VALID = jnp.asarray([True, True, True])


def _toy_reward(counts):
    """A reward of the allocation that favours concentrating on candidate 1 (a bandit)."""
    c = counts.astype(jnp.float32)
    return jnp.tanh(0.8 * c[..., 1] - 0.3 * c[..., 0]) + 0.1 * c[..., 2]


def _compositions(n: int, k: int) -> np.ndarray:
    return np.asarray([c for c in itertools.product(range(n + 1), repeat=k) if sum(c) == n])


@jax.jit
def _exact_objective(logits):
    """E f(B) for B ~ Multinomial(N, softmax(logits)), by enumeration."""
    comps = _compositions(TOY_N, 3)
    log_coef = jnp.asarray(
        [math.lgamma(TOY_N + 1) - sum(math.lgamma(b + 1) for b in c) for c in comps], jnp.float32
    )
    logp = log_coef + jnp.asarray(comps, jnp.float32) @ jax.nn.log_softmax(logits)
    return jnp.sum(jnp.exp(logp) * _toy_reward(jnp.asarray(comps)))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _estimates(key, logits, groups: int, rollouts: int, baseline: str = "leave-one-out"):
    """Per group: mean_j A_j · ∂ log P(B_j)/∂ logits ([groups, 3])."""
    keys = jax.random.split(key, groups * rollouts)
    counts, score = jax.vmap(lambda k: finetune.sample_allocation(k, logits, TOY_N, TOY_VALID))(
        keys
    )
    rewards = _toy_reward(counts).reshape(groups, rollouts)
    if baseline == "leave-one-out":
        advantage = finetune.leave_one_out(rewards)
    else:  # the group mean including rollout j's own reward: biased by (R − 1)/R
        advantage = rewards - jnp.mean(rewards, axis=1, keepdims=True)
    return jnp.mean(advantage[..., None] * score.reshape(groups, rollouts, 3), axis=1)


def test_sampled_allocation_is_exact_and_its_score_is_b_minus_n_w():
    logits = jnp.asarray([0.5, -1.0, 2.0, 0.0, 9.0], jnp.float32)
    valid = jnp.asarray([True, True, True, True, False])
    sample = jax.jit(finetune.sample_allocation, static_argnums=2)
    counts, score = sample(jax.random.key(0), logits, 16, valid)
    assert int(jnp.sum(counts)) == 16 and int(counts[4]) == 0
    w = jax.nn.softmax(jnp.where(valid, logits, -jnp.inf))
    np.testing.assert_allclose(
        score, np.where(valid, np.asarray(counts, np.float32) - 16 * w, 0), atol=1e-5
    )
    # ∂/∂logits of Σ B_i log softmax_i is the same vector (the score of the multinomial)
    auto = jax.grad(
        lambda z: jnp.sum(
            jnp.where(
                valid, counts.astype(jnp.float32) * jax.nn.log_softmax(jnp.where(valid, z, -1e9)), 0
            )
        )
    )(logits)
    np.testing.assert_allclose(score, np.where(valid, auto, 0), atol=1e-4)
    again, _ = sample(jax.random.key(0), logits, 16, valid)
    np.testing.assert_array_equal(counts, again)
    none, zero = sample(jax.random.key(0), logits, 16, jnp.zeros(5, bool))
    assert int(jnp.sum(none)) == 0 and float(jnp.sum(jnp.abs(zero))) == 0


def test_leave_one_out_reinforce_is_unbiased_and_the_self_baseline_control_is_not():
    exact = np.asarray(jax.grad(_exact_objective)(TOY_LOGITS))
    key = jax.random.key(7)

    def off_by(baseline):
        g = np.asarray(_estimates(key, TOY_LOGITS, 4000, 2, baseline), np.float64)
        se = g.std(axis=0, ddof=1) / math.sqrt(g.shape[0])
        return np.abs(g.mean(axis=0) - exact) / se

    assert np.all(off_by("leave-one-out") < K_SE)
    # control: a baseline that includes the rollout's own reward halves the gradient at R = 2
    assert np.any(off_by("self") > K_SE)


def test_estimator_steps_raise_the_exact_objective_and_descent_lowers_it():
    """Ten plain gradient steps on the REINFORCE estimate (fixed keys) raise E f(B), computed
    exactly; control: the same steps with the sign flipped lower it."""

    def run(sign: float) -> float:
        def step(logits, key):
            g = jnp.mean(_estimates(key, logits, 64, 4), axis=0)
            return logits + sign * 0.5 * g, None

        keys = jax.random.split(jax.random.key(100), 10)
        logits, _ = jax.lax.scan(step, TOY_LOGITS, keys)
        return float(_exact_objective(logits))

    start = float(_exact_objective(TOY_LOGITS))
    assert run(1.0) > start + 0.05
    assert run(-1.0) < start - 0.05


def test_settings_refuse_held_out_worlds_and_bad_values():
    with pytest.raises(ValueError, match="held out"):
        finetune.FinetuneSettings(e2e_worlds=("far-geometry",))
    with pytest.raises(ValueError, match="rollouts"):
        finetune.FinetuneSettings(rollouts=1)
    with pytest.raises(ValueError, match="reward"):
        finetune.FinetuneSettings(reward="pass")


def test_cli_finetune_rejects_bad_options_before_work(tmp_path, capsys):
    out = tmp_path / "ft.msgpack"
    base = ["train", "--out", str(out), "--finetune-from"]
    cases = [
        ([*base, str(tmp_path / "none")], "checkpoint not found"),
        ([*base, "shipped", "--rollouts", "1"], "--rollouts"),
        ([*base, "shipped", "--e2e-worlds", "noisy-prm"], "held out"),
        ([*base, "shipped", "--e2e-worlds", "nowhere"], "unknown training world"),
        ([*base, "shipped", "--reward", "pass"], "reward"),
        ([*base, "shipped", "--worlds", "paper-like"], "--e2e-"),
        ([*base, "shipped", "--e2e-steps", "0"], "--e2e-steps"),
        ([*base, "shipped", "--resume"], "checkpoint not found"),
    ]
    for args, needle in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err, (args, err)
    assert not out.exists()


def test_learned_eval_rejects_bad_checkpoint_and_references(tmp_path, capsys):
    assert learned_eval.main(["--checkpoint", str(tmp_path / "none")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    # a reference may not be the evaluated checkpoint (default: shipped)
    assert learned_eval.main(["--references", "dora,shipped"]) == 2
    assert learned_eval.main(["--checkpoint", "imitation", "--references", "imitation"]) == 2
    assert learned_eval.main(["--first-seed", "-1"]) == 2
    assert learned_eval.main(["--references", "dora,nobody"]) == 2
    assert learned_eval.main(["--references", "dora,dora"]) == 2
    capsys.readouterr()


@pytest.mark.slow  # compiling the stochastic-policy search takes > 10 s on two shared cores
def test_short_finetuning_is_bit_for_bit_deterministic_and_resumes_exactly(tmp_path, capsys):
    from flax import nnx

    from dora_jax import learned

    settings = finetune.FinetuneSettings(
        e2e_worlds=("paper-like",),
        e2e_budgets=(4,),
        e2e_problems=3,
        rollouts=2,
        max_rounds=6,
        learning_rate=1e-2,
        reward="correct_fraction",  # varies more between rollouts than a 3-problem vote
    ).resolved()

    def params(path):
        return nnx.to_pure_dict(learned.load_checkpoint.__wrapped__(str(path))[1])

    a, b, c = (tmp_path / f"{x}.msgpack" for x in "abc")
    log_a = finetune.finetune(settings, 3, a).log
    log_b = finetune.finetune(settings, 3, b).log
    assert log_a == log_b
    assert a.read_bytes() == b.read_bytes()
    finetune.finetune(settings, 2, c)
    finetune.finetune(settings, 3, c, resume=True)
    assert a.read_bytes() == c.read_bytes()
    assert settings.start == learned.IMITATION  # the default start: the packaged first stage
    start = nnx.to_pure_dict(learned.load_checkpoint(learned.IMITATION)[1])
    moved = jax.tree.map(
        lambda x, y: bool(np.any(np.asarray(x) != np.asarray(y))), params(a), start
    )
    assert any(jax.tree.leaves(moved))  # the steps changed the network
    counts = np.asarray(
        dora_jax.allocate("learned", jnp.asarray([0.9, 0.5, 0.2]), 8, checkpoint=str(a))
    )
    assert counts.sum() == 8
    with pytest.raises(ValueError, match="cannot resume"):
        finetune.resume_point(c, finetune.FinetuneSettings(seed=1).resolved())
    # the evaluation takes the fine-tuned checkpoint and pairs it with the packaged ones
    tiny = ["--problems", "2", "--seeds", "1", "--budgets", "4", "--max-rounds", "4"]
    args = ["--checkpoint", str(a), "--references", "shipped,imitation,dora"]
    assert learned_eval.main([*tiny, *args, "--worlds", "paper-like"]) == 0
    out = capsys.readouterr().out
    assert "learned − shipped" in out and "learned − imitation" in out
    assert "| paper-like (trained on) | 4 | 2 |" in out
