"""dora_jax.calibration: the Beta-Binomial log-pmf against exact sums, the simulator's moments, NUTS
against an exact grid posterior and against SVI, recovery of κ across decades, partial pooling,
the logistic calibration, the JSON round trip and bad input.

Statistical assertions state their false-failure rate (STYLE §12). The fast fits share one shape
(P, K) and one NUTS configuration, so each xdist worker compiles the sampler once (~15 s of CPU,
the bulk of this file's cost; a fit after it takes ~0.2 s).
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from dora_jax import calibration as cal

P, K = 16, 8
ROLLOUTS = 256
FIT = {"num_warmup": 300, "num_samples": 500, "num_chains": 2}
SVI_FIT = {"method": "svi", "svi_steps": 2000, "num_samples": 1000}
# Target false-failure rate of each statistical assertion (per test run).
FALSE_FAILURE = 1e-3
# |estimate − truth| < Z_TOL · SE: two-sided normal tail 5.7e-7 per comparison.
Z_TOL = 5.0


def _key(*ints):
    key = jax.random.key(ints[0])
    for i in ints[1:]:
        key = jax.random.fold_in(key, i)
    return key


def _coverage_floor(trials: int, mass: float, rate: float = FALSE_FAILURE) -> int:
    """The largest b with P(Binomial(trials, mass) < b) < rate."""
    b = 0
    while stats.binom.cdf(b, trials, mass) < rate:
        b += 1
    return b


def _simulate(key, kappa, **kw):
    kw = {"num_problems": P, "num_candidates": K, "rollouts": ROLLOUTS} | kw
    return cal.simulate_records(key, kappa=kappa, **kw)


# ---------------------------------------------------------------------------------------------
# Oracles


def _exact_log_prob(c: int, m: int, w: float, kappa: float) -> float:
    """log BetaBinomial(c | m, κw, κ(1 − w)) as an exactly rounded sum of logs (math.fsum)."""
    a, b = kappa * w, kappa * (1 - w)
    terms = [math.lgamma(m + 1) - math.lgamma(c + 1) - math.lgamma(m - c + 1)]
    terms += [math.log(a + r) for r in range(c)]
    terms += [math.log(b + r) for r in range(m - c)]
    terms += [-math.log(kappa + r) for r in range(m)]
    return math.fsum(terms)


LOG_KAPPA_GRID = np.linspace(-8.0, 14.0, 4401)


def _grid_posterior(records):
    """Exact posterior of log κ (identity calibration, complete pooling) on a fine grid, with
    scipy's independent float64 Beta-Binomial: its CDF on LOG_KAPPA_GRID and its sd."""
    w, m, c, mask = (np.asarray(x) for x in records)
    w, m, c = w[mask].astype(np.float64), m[mask], c[mask]
    kappa = np.exp(LOG_KAPPA_GRID)[:, None]
    loglik = stats.betabinom.logpmf(c, m, kappa * w, kappa * (1 - w)).sum(axis=1)
    logp = loglik + stats.norm.logpdf(LOG_KAPPA_GRID, cal.LOG_KAPPA_LOC, cal.LOG_KAPPA_SCALE)
    p = np.exp(logp - logp.max())
    p /= p.sum()
    mean = np.sum(p * LOG_KAPPA_GRID)
    sd = math.sqrt(np.sum(p * (LOG_KAPPA_GRID - mean) ** 2))
    return np.cumsum(p), sd


# ---------------------------------------------------------------------------------------------
# Shared fits (module scope: one simulation, one NUTS and one SVI fit per worker)


@pytest.fixture(scope="module")
def data20():
    return _simulate(_key(20), 20.0)


@pytest.fixture(scope="module")
def nuts20(data20):
    return cal.fit_kappa(_key(1), data20, **FIT)


@pytest.fixture(scope="module")
def svi20(data20):
    return cal.fit_kappa(_key(1), data20, **SVI_FIT)


# ---------------------------------------------------------------------------------------------
# Likelihood


def test_log_prob_matches_exact_sum(x64):
    cases = [(0, 0), (0, 1), (1, 1), (1, 2), (5, 17), (0, 256), (200, 256), (256, 256)]
    for kappa in (0.01, 0.2, 2.0, 20.0, 200.0, 2000.0, 1e4):
        for w in (1e-3, 0.3, 0.97):
            c, m = (np.array(x) for x in zip(*cases, strict=True))
            got = np.asarray(cal.beta_binomial_log_prob(c, m, np.full(c.shape, w), kappa))
            want = np.array([_exact_log_prob(int(ci), int(mi), w, kappa) for ci, mi in cases])
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_log_prob_is_a_distribution(x64):
    m = 40
    c = np.arange(m + 1)
    for kappa in (0.5, 20.0, 3000.0):
        p = np.exp(np.asarray(cal.beta_binomial_log_prob(c, np.full_like(c, m), 0.3, kappa)))
        assert abs(p.sum() - 1) < 1e-12


def test_log_prob_float32_keeps_precision_at_large_kappa():
    # Plain lgamma differences lose ~3e-2 per unit at κ = 1e4, m = 256 in float32 (numpyro's
    # BetaBinomial ~1e-2); the rising-factorial form keeps ~5e-4.
    rng = np.random.default_rng(0)
    m = rng.integers(0, 257, size=500)
    w = rng.uniform(0.01, 0.99, size=500)
    for kappa in (2.0, 1e4):
        c = rng.binomial(m, rng.beta(kappa * w, kappa * (1 - w)))
        got = cal.beta_binomial_log_prob(c, m, w.astype(np.float32), np.float32(kappa))
        assert got.dtype == jnp.float32
        want = [
            _exact_log_prob(int(ci), int(mi), float(wi), kappa)
            for ci, mi, wi in zip(c, m, w, strict=True)
        ]
        assert np.max(np.abs(np.asarray(got, np.float64) - want)) < 2e-3


@pytest.mark.parametrize(
    ("calibration", "pooling"), [("identity", "complete"), ("logistic", "partial")]
)
def test_model_log_density_is_the_hand_sum(calibration, pooling):
    # The model's joint log density (under strict dtype promotion, as everywhere here) against
    # scipy: priors + Σ over unmasked units of log BetaBinomial; masked units hold garbage.
    from numpyro.infer.util import log_density

    rng = np.random.default_rng(2)
    w = rng.uniform(0.05, 0.95, (3, 4)).astype(np.float32)
    m = rng.integers(0, 20, (3, 4)).astype(np.int32)
    c = rng.binomial(m, 0.5).astype(np.int32)
    mask = rng.random((3, 4)) < 0.7
    w[~mask], m[~mask], c[~mask] = np.nan, -1, 7

    params = {"log_kappa": 2.5}
    want = stats.norm.logpdf(2.5, cal.LOG_KAPPA_LOC, cal.LOG_KAPPA_SCALE)
    f = w.astype(np.float64)
    log_kappa = np.full((3, 1), 2.5)
    if calibration == "logistic":
        a, b = 0.3, 1.4
        params |= {"a": a, "b": b}
        f = 1 / (1 + np.exp(-(a + b * np.log(f / (1 - f)))))
        want += stats.norm.logpdf(a, 0, cal.CALIBRATION_A_SCALE)
        want += stats.lognorm.logpdf(b, cal.CALIBRATION_LOG_B_SCALE)
    if pooling == "partial":
        tau, z = 0.6, np.array([[0.5], [-1.0], [2.0]])
        params |= {"tau": tau, "log_kappa_z": z}
        log_kappa = log_kappa + tau * z
        want += stats.halfnorm.logpdf(tau, scale=cal.TAU_SCALE) + stats.norm.logpdf(z).sum()
    kappa = np.exp(log_kappa)
    want += stats.betabinom.logpmf(c, m, kappa * f, kappa * (1 - f))[mask].sum()

    args = tuple(jnp.asarray(x) for x in (w, m, mask, c))
    kwargs = {"calibration": calibration, "pooling": pooling}
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    # Jitted: one compile instead of one per primitive (3.5 s → 0.7 s of CPU).
    got = jax.jit(lambda p: log_density(cal.kappa_model, args, kwargs, p)[0])(params)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Simulation and prior predictive


@pytest.mark.parametrize("calibration", [None, (-0.5, 1.8)])
def test_simulated_records_have_the_model_moments(calibration):
    # Given w: E c = m f, E (c − m f)² = m f (1 − f)(κ + m)/(κ + 1). Both residuals average to 0
    # over 19,200 units; |mean| < Z_TOL·SE, false failure 5.7e-7 each (CLT). The units come in
    # data sets of the shared shape (P, K), so the simulator compiles once for the whole file.
    kappa, m = 5.0, 20
    sets = [
        cal.simulate_records(
            _key(3, i),
            kappa=kappa,
            num_problems=P,
            num_candidates=K,
            rollouts=m,
            score_dist=(2.0, 3.0),
            calibration=calibration,
        )
        for i in range(150)
    ]
    w = np.concatenate([np.asarray(r.scores, np.float64) for r in sets])
    c = np.concatenate([np.asarray(r.correct, np.float64) for r in sets])
    assert sets[0].scores.shape == (P, K) and all(bool(r.mask.all()) for r in sets)
    assert np.all((w > 0) & (w < 1)) and np.all((c >= 0) & (c <= m))
    a, b = (0.0, 1.0) if calibration is None else calibration
    f = 1 / (1 + np.exp(-(a + b * np.log(w / (1 - w)))))
    first = c - m * f
    second = first**2 - m * f * (1 - f) * (kappa + m) / (kappa + 1)
    for r in (first, second):
        assert abs(r.mean()) < Z_TOL * r.std() / math.sqrt(r.size)
    # The calibration matters: under the wrong map the first residual is far from 0.
    if calibration is not None:
        wrong = c - m * w
        assert abs(wrong.mean()) > 10 * Z_TOL * wrong.std() / math.sqrt(wrong.size)


def test_simulate_records_is_deterministic_and_takes_per_problem_kappa():
    one = _simulate(_key(4), jnp.full((P,), 20.0))
    two = _simulate(_key(4), 20.0)
    for x, y in zip(one, two, strict=True):
        np.testing.assert_array_equal(x, y)
    assert one.rollouts.dtype == jnp.int32 and one.correct.dtype == jnp.int32
    other = _simulate(_key(5), 20.0)
    assert not np.array_equal(one.correct, other.correct)


@pytest.mark.parametrize("pooling", ["complete", pytest.param("partial", marks=pytest.mark.slow)])
def test_prior_predictive_smoke(pooling):
    rng = np.random.default_rng(1)
    w = rng.uniform(0.05, 0.95, size=(P, K)).astype(np.float32)
    m = rng.integers(0, 33, size=(P, K)).astype(np.int32)
    mask = rng.random((P, K)) < 0.8
    draws = cal.prior_predictive(_key(6), w, m, mask=mask, num_draws=50, pooling=pooling)
    c = np.asarray(draws["correct"])
    assert c.shape == (50, P, K) and c.dtype == np.int32
    assert np.all(c >= 0) and np.all(c <= m) and np.all(c[:, ~mask] == 0)
    assert draws["log_kappa"].shape == (50,)
    # The prior of log κ is Normal(log 10, 2): |mean − log 10| < Z_TOL·2/√50 (rate 5.7e-7).
    assert abs(float(draws["log_kappa"].mean()) - math.log(10)) < Z_TOL * 2 / math.sqrt(50)
    if pooling == "partial":
        assert draws["log_kappa_problem"].shape == (50, P) and draws["tau"].shape == (50,)
    again = cal.prior_predictive(_key(6), w, m, mask=mask, num_draws=50, pooling=pooling)
    np.testing.assert_array_equal(again["correct"], c)


# ---------------------------------------------------------------------------------------------
# Inference: accuracy


def test_nuts_matches_the_exact_grid_posterior(data20, nuts20):
    # Quantiles of log κ: |NUTS − grid| < Z_TOL·SE, SE = σ √(q(1−q)/ESS) / φ(Φ⁻¹(q)) (the
    # normal-posterior approximation), false failure ~6e-7 per quantile.
    cdf, sd = _grid_posterior(data20)
    samples = np.asarray(nuts20.log_kappa, np.float64)
    for q in (0.05, 0.5, 0.95):
        exact = np.interp(q, cdf, LOG_KAPPA_GRID)
        se = sd * math.sqrt(q * (1 - q) / nuts20.ess) / stats.norm.pdf(stats.norm.ppf(q))
        assert abs(np.quantile(samples, q) - exact) < Z_TOL * se, q
    assert nuts20.r_hat < 1.05 and nuts20.ess > 200 and nuts20.divergences == 0


def test_recovers_kappa_across_decades():
    # R independent data sets per κ; the 90% interval covers κ in ≥ _coverage_floor of the 3·R
    # fits: false failure < 1e-3 if coverage is exactly 90%. It is so on average over the prior
    # (slow test below); at a fixed κ only asymptotically (the grid oracle gave 35/40 at κ = 2).
    # Median: the geometric mean of the R medians is within a factor 1.35 of κ; the per-fit sd
    # of log median is ≤ 0.23 here (κ = 200), so log 1.35 = 0.30 is ≥ 4 sd of the mean of 10
    # (false failure < 1e-4 per κ).
    reps = 10
    covered = 0
    for kappa in (2.0, 20.0, 200.0):
        medians = []
        for r in range(reps):
            post = cal.fit_kappa(_key(7, r), _simulate(_key(8, int(kappa), r), kappa), **FIT)
            lo, hi = post.kappa_interval
            covered += lo <= kappa <= hi
            medians.append(cal.point_estimate(post))
        assert abs(np.mean(np.log(medians)) - math.log(kappa)) < math.log(1.35), kappa
    assert covered >= _coverage_floor(3 * reps, cal.INTERVAL_MASS)


def test_nuts_and_svi_agree(nuts20, svi20):
    # Not a sampling tolerance: the posterior of log κ is near-normal at this data size, so the
    # mean-field guide should put its median within a quarter posterior sd of NUTS's (whose own
    # Monte Carlo error is 1.25·sd/√ESS ≈ 0.05 sd) and its 90% width within 25%.
    sd = float(np.std(nuts20.log_kappa))
    gap = abs(math.log(svi20.kappa_median) - math.log(nuts20.kappa_median))
    assert gap < 0.25 * sd
    ratio = np.log(svi20.kappa_interval[1] / svi20.kappa_interval[0]) / np.log(
        nuts20.kappa_interval[1] / nuts20.kappa_interval[0]
    )
    assert 0.8 < ratio < 1.25
    assert svi20.loss is not None and svi20.loss.shape == (SVI_FIT["svi_steps"],)
    assert float(svi20.loss[-1]) < float(svi20.loss[0])
    assert svi20.r_hat is None and svi20.ess is None


# ---------------------------------------------------------------------------------------------
# Inference: mechanics


@pytest.mark.parametrize("method", cal.METHODS)
def test_same_key_same_bits(data20, method):
    config = FIT if method == "nuts" else SVI_FIT
    one = cal.fit_kappa(_key(9), data20, **config)
    two = cal.fit_kappa(_key(9), data20, **config)
    np.testing.assert_array_equal(one.log_kappa, two.log_kappa)
    assert cal.summary(one) == cal.summary(two)
    other = cal.fit_kappa(_key(10), data20, **config)
    assert not np.array_equal(one.log_kappa, other.log_kappa)


def test_masked_units_contribute_nothing(data20):
    # Mask the last candidate of every problem; whatever the masked entries hold (even NaN
    # scores or c > m), the fit is the same to the bit.
    mask = np.ones((P, K), bool)
    mask[:, -1] = False
    w, m, c = (np.array(x) for x in data20[:3])
    garbage = (np.where(mask, w, np.nan), np.where(mask, m, -3), np.where(mask, c, 999), mask)
    plain = (np.where(mask, w, 0.3), np.where(mask, m, 5), np.where(mask, c, 2), mask)
    one = cal.fit_kappa(_key(11), garbage, **FIT)
    two = cal.fit_kappa(_key(11), plain, **FIT)
    np.testing.assert_array_equal(one.log_kappa, two.log_kappa)


def test_second_fit_does_not_recompile(nuts20):
    del nuts20  # compiled the FIT configuration for shape (P, K)
    before = cal._nuts_draws._cache_size()
    cal.fit_kappa(_key(12), _simulate(_key(13), 3.0, rollouts=17), **FIT)
    assert cal._nuts_draws._cache_size() == before


@pytest.mark.parametrize("which", ["nuts20", "svi20"])
def test_summary_round_trip_through_json(which, request):
    post = request.getfixturevalue(which)
    d = cal.summary(post)
    text = json.dumps(d, allow_nan=False)
    back = cal.posterior_from_dict(json.loads(text))
    assert cal.summary(back) == d
    np.testing.assert_array_equal(back.log_kappa, post.log_kappa)
    assert cal.point_estimate(back) == post.kappa_median == d["kappa_median"]
    lo, hi = post.kappa_interval
    assert lo < post.kappa_median < hi and d["interval_mass"] == 0.9
    short = cal.summary(post, include_samples=False)
    assert "samples" not in short and set(short) < set(d)
    with pytest.raises(ValueError, match="no 'samples'"):
        cal.posterior_from_dict(short)


def _heterogeneous_records():
    """κ_p = 20·e^{z_p}, z_p ~ Normal(0, 1), little data each (K = 8 units of m = 64 rollouts);
    the last problem is fully masked."""
    kappa_p = 20.0 * jnp.exp(jax.random.normal(_key(15), (P,)))
    rec = _simulate(_key(16), kappa_p, rollouts=64)
    mask = np.ones((P, K), bool)
    mask[-1] = False
    return rec._replace(mask=jnp.asarray(mask))


def _check_partial_pooling(rec, post):
    """Shapes; per-problem medians lie closer (in total) to the global median than per-problem
    maximum-likelihood estimates (a grid over the public log-pmf) do; the problem without data
    follows the population: its median is the global one and its interval is wider than most."""
    s = post.log_kappa.shape[0]
    assert post.log_kappa_problem.shape == (s, P) and post.tau.shape == (s,)
    d = cal.summary(post)
    assert len(d["kappa_problem_median"]) == P and len(d["kappa_problem_interval"]) == P

    grid = np.linspace(-4.0, 10.0, 701)
    loglik = cal.beta_binomial_log_prob(
        rec.correct[None], rec.rollouts[None], rec.scores[None], jnp.exp(grid)[:, None, None]
    )
    mask = np.asarray(rec.mask)
    mle = grid[np.argmax(np.sum(np.where(mask, np.asarray(loglik), 0), axis=2), axis=0)]
    log_kappa_p = np.asarray(post.log_kappa_problem, np.float64)
    medians = np.median(log_kappa_p, axis=0)
    centre = float(np.median(post.log_kappa))
    assert np.sum(np.abs(medians - centre)[:-1]) < np.sum(np.abs(mle - centre)[:-1])
    # Monte Carlo error of a median: 1.25·sd/√n_eff, n_eff ≥ s/4 here; false failure 5.7e-7.
    se = 1.25 * log_kappa_p[:, -1].std() / math.sqrt(s / 4)
    assert abs(medians[-1] - centre) < Z_TOL * se
    lo, hi = np.quantile(log_kappa_p, [0.05, 0.95], axis=0)
    assert (hi - lo)[-1] > np.median((hi - lo)[:-1])


def test_partial_pooling_is_vectorized_and_shrinks():
    rec = _heterogeneous_records()
    _check_partial_pooling(rec, cal.fit_kappa(_key(17), rec, pooling="partial", **SVI_FIT))


def test_calibrated_scores():
    w = jnp.asarray([0.1, 0.5, 0.9], jnp.float32)
    d = {"method": "svi", "calibration": "identity", "pooling": "complete"}
    identity = cal.posterior_from_dict(d | {"samples": {"log_kappa": [1.0, 2.0, 3.0]}})
    np.testing.assert_array_equal(cal.calibrated_scores(identity, w), w)
    samples = {"log_kappa": [1.0, 2.0, 3.0], "a": [-1.0, -0.5, 0.0], "b": [1.0, 2.0, 3.0]}
    logistic = cal.posterior_from_dict(d | {"calibration": "logistic", "samples": samples})
    want = jax.nn.sigmoid(-0.5 + 2.0 * jnp.log(w / (1 - w)))
    np.testing.assert_allclose(cal.calibrated_scores(logistic, w), want, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Bad input


def _good():
    w = np.full((2, 3), 0.5, np.float32)
    m = np.full((2, 3), 4, np.int32)
    return w, m, np.full((2, 3), 2, np.int32), np.ones((2, 3), bool)


def _with(i, value):
    rec = list(_good())
    rec[i] = value
    return tuple(rec)


@pytest.mark.parametrize(
    ("records", "kwargs", "match"),
    [
        (_good()[:3], {}, "records must be"),
        (_with(0, np.full((6,), 0.5)), {}, r"scores must have shape \[P, K\]"),
        (_with(1, np.full((2, 4), 4)), {}, "rollouts must have shape"),
        (_with(3, np.ones((2, 3), np.int32)), {}, "mask must be boolean"),
        (_with(1, np.full((2, 3), 4.0)), {}, "rollouts must be integers"),
        (_with(0, np.full((2, 3), 1, np.int32)), {}, "scores must be floats"),
        (_with(0, np.full((2, 3), 1.0, np.float32)), {}, r"open interval \(0, 1\)"),
        (_with(0, np.zeros((2, 3), np.float32)), {}, r"open interval \(0, 1\)"),
        (_with(0, np.full((2, 3), np.nan, np.float32)), {}, r"open interval \(0, 1\)"),
        (_with(2, np.full((2, 3), 5, np.int32)), {}, "0 <= c <= m"),
        (_with(2, np.full((2, 3), -1, np.int32)), {}, "0 <= c <= m"),
        (_with(1, np.full((2, 3), -1, np.int32)), {}, "rollouts must be >= 0"),
        (_with(3, np.zeros((2, 3), bool)), {}, "all units are masked"),
        (_good(), {"method": "mcmc"}, "unknown method 'mcmc'"),
        (_good(), {"calibration": "isotonic"}, "unknown calibration"),
        (_good(), {"pooling": "none"}, "unknown pooling"),
        (_good(), {"method": "svi", "guide": "flow"}, "unknown guide"),
        (_good(), {"num_samples": 0}, "num_samples must be an integer >= 1"),
        (_good(), {"num_chains": 0}, "num_chains"),
    ],
)
def test_bad_input(records, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cal.fit_kappa(_key(0), records, **kwargs)


def test_bad_simulation_input():
    with pytest.raises(ValueError, match="kappa must be finite and > 0"):
        cal.simulate_records(_key(0), kappa=0.0, num_problems=2, num_candidates=2, rollouts=4)
    with pytest.raises(ValueError, match="slope b must be > 0"):
        cal.simulate_records(
            _key(0), kappa=1.0, num_problems=2, num_candidates=2, rollouts=4, calibration=(0, -1)
        )
    with pytest.raises(ValueError, match="unknown pooling"):
        cal.prior_predictive(_key(0), *_good()[:2], pooling="none")


# ---------------------------------------------------------------------------------------------
# Slow


@pytest.mark.slow
def test_coverage_averaged_over_the_prior():
    # Simulation-based calibration: κ_r drawn from the prior, data from the model, one fit each.
    # Averaged over the prior an exact posterior's 90% interval covers κ_r with probability exactly
    # 0.9, so ≥ _coverage_floor(R) covered has false-failure rate < 1e-3 (up to NUTS error).
    # Each tail is also checked: misses below and above are each Binomial(R, 0.05); more than
    # the 1 − 1e-3 quantile in one tail means a biased posterior (false failure < 1e-3 each).
    reps = 100
    below = above = 0
    for r in range(reps):
        log_kappa = cal.LOG_KAPPA_LOC + cal.LOG_KAPPA_SCALE * float(jax.random.normal(_key(18, r)))
        rec = _simulate(_key(19, r), math.exp(log_kappa))
        lo, hi = np.log(cal.fit_kappa(_key(20, r), rec, **FIT).kappa_interval)
        below += log_kappa < lo
        above += log_kappa > hi
    tail = (1 - cal.INTERVAL_MASS) / 2
    assert reps - below - above >= _coverage_floor(reps, cal.INTERVAL_MASS)
    limit = stats.binom.ppf(1 - FALSE_FAILURE, reps, tail)
    assert below <= limit and above <= limit


@pytest.mark.slow
@pytest.mark.parametrize(("method", "guide"), [("nuts", None), ("svi", "mvn")])
def test_logistic_calibration_recovers_a_and_b(method, guide):
    # Data from f(w) = σ(a + b·logit w) with a = −0.5, b = 1.8, κ = 20. NUTS: each of a, b, log κ
    # within Z_TOL posterior sd of the truth (rate 5.7e-7 each for a near-normal posterior).
    # SVI (full-rank guide, a, b and κ are correlated): within Z_TOL of NUTS's sd, a model check.
    truth = {"a": -0.5, "b": 1.8}
    rec = _simulate(_key(21), 20.0, calibration=(truth["a"], truth["b"]))
    config = FIT if method == "nuts" else SVI_FIT | {"guide": guide}
    post = cal.fit_kappa(_key(22), rec, calibration="logistic", **config)
    for name, value in truth.items():
        x = np.asarray(post.calibration_samples[name], np.float64)
        assert abs(np.median(x) - value) < Z_TOL * x.std(), name
    assert abs(np.median(post.log_kappa) - math.log(20.0)) < Z_TOL * np.std(post.log_kappa)
    d = cal.summary(post)
    assert set(d["calibration_params"]) == {"a", "b"}
    assert cal.summary(cal.posterior_from_dict(json.loads(json.dumps(d)))) == d
    # The identity model on the same data is worse: its κ absorbs the miscalibration as noise.
    plain = cal.fit_kappa(_key(22), rec, **config)
    assert plain.kappa_median < post.kappa_interval[0]


@pytest.mark.slow
def test_one_chain_uses_split_rhat(data20):
    post = cal.fit_kappa(_key(14), data20, num_warmup=300, num_samples=500, num_chains=1)
    assert post.log_kappa.shape == (500,)
    assert post.r_hat is not None and post.r_hat < 1.05


@pytest.mark.slow
def test_partial_pooling_with_nuts():
    rec = _heterogeneous_records()
    post = cal.fit_kappa(_key(23), rec, pooling="partial", target_accept_prob=0.9, **FIT)
    _check_partial_pooling(rec, post)
    assert post.r_hat < 1.05 and post.divergences < 10
    # The mean-field SVI fit of the fast test lands near NUTS for the global κ.
    svi = cal.fit_kappa(_key(17), rec, pooling="partial", **SVI_FIT)
    assert abs(math.log(svi.kappa_median / post.kappa_median)) < 0.5 * np.std(post.log_kappa)
