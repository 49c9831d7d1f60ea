"""Fitting the PRM reliability κ of the Beta model (Eq. 6) from Monte Carlo rollout labels.

Data: units (partial solutions) in a [P, K] layout, P problems × K candidates. Unit (p, k) has PRM
score w ∈ (0, 1), m rollouts run from it to the end, c of them correct (Math-Shepherd-style labels),
and a mask. Model, with the success probability integrated out analytically:

    p ~ Beta(κ f(w), κ (1 − f(w))),   c | p ~ Binomial(m, p)
    ⇒  c ~ BetaBinomial(m, κ f(w), κ (1 − f(w))),
    log P(c) = log C(m, c) + log Γ(α + c)/Γ(α) + log Γ(β + m − c)/Γ(β) − log Γ(κ + m)/Γ(κ)

with α = κ f(w), β = κ (1 − f(w)). The three rising-factorial ratios are evaluated as a short sum
of logs plus a Stirling *difference* (`optimal._log_rising_ratio`), so nothing cancels even at
κ = 1e4, m = 256 in float32 (plain lgamma differences lose ~1e-2 per unit there). κ is only
identified through over-dispersion, so units need m ≥ 2 (with m = 1 the posterior is the prior),
and m comparable to κ to pin down a large κ.

f is a monotone calibration map ("identity": f(w) = w, the paper's model; "logistic":
f(w) = σ(a + b·logit w), b > 0). Priors: log κ ~ Normal(log 10, 2); a ~ Normal(0, 1);
b ~ LogNormal(0, 0.5). Pooling across problems: "complete" (one κ) or "partial" (per problem
log κ_p = log κ + τ z_p, z_p ~ Normal(0, 1), τ ~ HalfNormal(1), the non-centred form).

Inference with NumPyro: NUTS for small data, SVI (AutoNormal or AutoMultivariateNormal guide) for
large data. The model is vectorized over plates "problems" × "candidates" (no loop per problem).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import lax
from jax.scipy.special import gammaln
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model

from dora_jax import _checks
from dora_jax.optimal import _log_rising_ratio

__all__ = [
    "CALIBRATIONS",
    "GUIDES",
    "METHODS",
    "POOLINGS",
    "BetaBinomial",
    "KappaPosterior",
    "Records",
    "beta_binomial_log_prob",
    "calibrated_scores",
    "fit_kappa",
    "kappa_model",
    "point_estimate",
    "posterior_from_dict",
    "prior_predictive",
    "simulate_records",
    "summary",
]

METHODS = ("nuts", "svi")
CALIBRATIONS = ("identity", "logistic")
POOLINGS = ("complete", "partial")
GUIDES = ("normal", "mvn")

# Prior on the global log κ. Centred on κ = 10 with sd 2 in log space, its ±2σ range
# 10·e^{±4} ≈ [0.18, 546] spans a PRM barely better than a coin flip (κ → 0, the paper's default
# regime) to one worth ~500 rollouts, which is as far as m ≤ 256 rollouts per unit can resolve.
LOG_KAPPA_LOC = math.log(10.0)
LOG_KAPPA_SCALE = 2.0
# Spread of the per-problem log κ_p around log κ (partial pooling): τ ~ HalfNormal(1) allows
# problems to differ by a factor e^{±2} ≈ 7 at 2σ without forcing any heterogeneity.
TAU_SCALE = 1.0
# Logistic calibration f(w) = σ(a + b·logit w): a ~ Normal(0, 1) shifts the log-odds by up to ±2 at
# 2σ; log b ~ Normal(0, 0.5) keeps the map monotone (b > 0) with b ∈ [0.37, 2.7] at 2σ.
CALIBRATION_A_SCALE = 1.0
CALIBRATION_LOG_B_SCALE = 0.5
# The reported interval: the 5% and 95% posterior quantiles of κ.
INTERVAL_MASS = 0.9


class Records(NamedTuple):
    """Monte Carlo labelled units, one row per problem (any 4-tuple in this order is accepted)."""

    scores: Float[Array, "P K"]  # PRM score w ∈ (0, 1)
    rollouts: Int[Array, "P K"]  # m ≥ 0 rollouts run from the unit
    correct: Int[Array, "P K"]  # 0 ≤ c ≤ m of them correct
    mask: Bool[Array, "P K"]  # valid units; masked ones contribute nothing


# ----------------------------------------------------------------------------------------------
# Likelihood


def _log_prob(
    c: Float[Array, "..."],
    m: Float[Array, "..."],
    alpha: Float[Array, "..."],
    beta: Float[Array, "..."],
) -> Float[Array, "..."]:
    """log BetaBinomial(c | m, α, β), accurate for large α + β (see module docstring)."""
    shape = jnp.broadcast_shapes(c.shape, m.shape, alpha.shape, beta.shape)
    c, m, alpha, beta = (jnp.broadcast_to(x, shape) for x in (c, m, alpha, beta))
    log_choose = gammaln(m + 1) - gammaln(c + 1) - gammaln(m - c + 1)
    return (
        log_choose
        + _log_rising_ratio(alpha, c)
        + _log_rising_ratio(beta, m - c)
        - _log_rising_ratio(alpha + beta, m)
    )


def beta_binomial_log_prob(
    correct: Int[Array, "..."],
    rollouts: Int[Array, "..."],
    mean: Float[Array, "..."],
    kappa: Float[Array, "..."],
) -> Float[Array, "..."]:
    """log P(c | m) for c ~ BetaBinomial(m, κ·mean, κ(1 − mean)), elementwise (broadcasts).

    Args:
      correct: Int[...], c with 0 ≤ c ≤ m.
      rollouts: Int[...], m ≥ 0.
      mean: Float[...], E p = f(w) ∈ (0, 1).
      kappa: Float[...], κ > 0.

    Returns:
      Float[...] log-pmf, in the dtype of `mean`.
    """
    mean = jnp.asarray(mean)
    dtype = mean.dtype if jnp.issubdtype(mean.dtype, jnp.floating) else jnp.result_type(float)
    mean = mean.astype(dtype)
    kappa = jnp.asarray(kappa, dtype)
    c = jnp.asarray(correct).astype(dtype)
    m = jnp.asarray(rollouts).astype(dtype)
    return _log_prob_compiled(c, m, kappa * mean, kappa * (1 - mean))


_log_prob_compiled = jax.jit(_log_prob)


class BetaBinomial(dist.BetaBinomial):
    """numpyro's BetaBinomial (same sampler and support) with the accurate log-pmf above."""

    def log_prob(self, value):
        dtype = jnp.result_type(self.concentration1)
        return _log_prob(
            jnp.asarray(value).astype(dtype),
            jnp.asarray(self.total_count).astype(dtype),
            self.concentration1,
            self.concentration0,
        )


# ----------------------------------------------------------------------------------------------
# Calibration maps


class _Calibration(NamedTuple):
    """A monotone map w ↦ f(w): priors of its parameters and the map returning (f, 1 − f)."""

    priors: Mapping[str, Callable[[], dist.Distribution]]
    mean: Callable[[Float[Array, "P K"], Mapping[str, Array]], tuple[Array, Array]]


def _identity_mean(w, params):
    del params
    return w, 1 - w


def _logistic_mean(w, params):
    # 1 − f = σ(−η) is computed directly so neither tail loses precision.
    eta = params["a"] + params["b"] * (jnp.log(w) - jnp.log1p(-w))
    return jax.nn.sigmoid(eta), jax.nn.sigmoid(-eta)


# Another monotone family joins with one entry: its priors (sites) and its (f, 1 − f) map.
_CALIBRATIONS: dict[str, _Calibration] = {
    "identity": _Calibration({}, _identity_mean),
    "logistic": _Calibration(
        {
            "a": lambda: dist.Normal(0.0, CALIBRATION_A_SCALE),
            "b": lambda: dist.LogNormal(0.0, CALIBRATION_LOG_B_SCALE),
        },
        _logistic_mean,
    ),
}


# ----------------------------------------------------------------------------------------------
# Model


def kappa_model(
    scores: Float[Array, "P K"],
    rollouts: Int[Array, "P K"],
    mask: Bool[Array, "P K"],
    correct: Int[Array, "P K"] | None = None,
    *,
    calibration: str = "identity",
    pooling: str = "complete",
) -> None:
    """The NumPyro model of the module docstring (Eq. 6 with Binomial rollout labels).

    Sites: "log_kappa" (global), "a", "b" (logistic calibration), "tau" and "log_kappa_z" [P, 1]
    (partial pooling; deterministic "log_kappa_problem" [P]), observed "correct" [P, K].
    With `correct=None` the model samples c (prior predictive).
    """
    _checks.check_choice("calibration", calibration, CALIBRATIONS)
    _checks.check_choice("pooling", pooling, POOLINGS)
    num_problems, num_candidates = scores.shape
    calib = _CALIBRATIONS[calibration]
    params = {name: numpyro.sample(name, prior()) for name, prior in calib.priors.items()}
    log_kappa = numpyro.sample("log_kappa", dist.Normal(LOG_KAPPA_LOC, LOG_KAPPA_SCALE))
    # Masked units get a harmless score and no rollouts, so they can never produce NaN.
    w = jnp.where(mask, scores, 0.5)
    m = jnp.where(mask, rollouts, 0)
    if pooling == "partial":
        tau = numpyro.sample("tau", dist.HalfNormal(TAU_SCALE))
    with numpyro.plate("problems", num_problems, dim=-2):
        if pooling == "partial":
            z = numpyro.sample("log_kappa_z", dist.Normal(0.0, 1.0))
            log_kappa = log_kappa + tau * z
            numpyro.deterministic("log_kappa_problem", log_kappa[:, 0])
        with numpyro.plate("candidates", num_candidates, dim=-1):
            kappa = jnp.exp(log_kappa)
            f, one_minus_f = calib.mean(w, params)
            obs = None if correct is None else jnp.where(mask, correct, 0)
            numpyro.sample(
                "correct", BetaBinomial(kappa * f, kappa * one_minus_f, m).mask(mask), obs=obs
            )


# ----------------------------------------------------------------------------------------------
# Posterior


@dataclasses.dataclass(frozen=True, eq=False)
class KappaPosterior:
    """Posterior draws of κ (and the calibration), their summary and inference diagnostics.

    Samples are flattened over chains: S = num_samples × num_chains (NUTS) or num_samples (SVI).
    """

    log_kappa: Float[Array, " S"]
    method: str
    calibration: str
    pooling: str
    calibration_samples: dict[str, Float[Array, " S"]]  # {} (identity); "a", "b" (logistic)
    log_kappa_problem: Float[Array, "S P"] | None  # partial pooling only
    tau: Float[Array, " S"] | None  # partial pooling only
    kappa_mean: float
    kappa_median: float
    kappa_interval: tuple[float, float]  # 5% and 95% quantiles of κ
    r_hat: float | None  # split R-hat of log κ (NUTS)
    ess: float | None  # effective sample size of log κ (NUTS)
    divergences: int | None  # divergent transitions after warmup (NUTS)
    loss: Float[Array, " T"] | None  # SVI: −ELBO per step

    @property
    def kappa(self) -> Float[Array, " S"]:
        return jnp.exp(self.log_kappa)


def point_estimate(posterior: KappaPosterior) -> float:
    """The posterior median of κ: the single κ the allocation commands use."""
    return posterior.kappa_median


def calibrated_scores(
    posterior: KappaPosterior, scores: Float[Array, "..."]
) -> Float[Array, "..."]:
    """f(w) with each calibration parameter at its posterior median (w itself for "identity")."""
    params = {k: jnp.median(v) for k, v in posterior.calibration_samples.items()}
    w = jnp.asarray(scores)
    return _CALIBRATIONS[posterior.calibration].mean(w, params)[0]


def _quantiles(x) -> tuple[float, float]:
    tail = (1 - INTERVAL_MASS) / 2
    lo, hi = np.quantile(np.asarray(x, np.float64), [tail, 1 - tail])
    return float(lo), float(hi)


def _build(
    samples: Mapping[str, Array],
    *,
    method: str,
    calibration: str,
    pooling: str,
    r_hat=None,
    ess=None,
    divergences=None,
    loss=None,
) -> KappaPosterior:
    log_kappa = jnp.asarray(samples["log_kappa"])
    kappa = np.exp(np.asarray(log_kappa, np.float64))
    partial = pooling == "partial"
    return KappaPosterior(
        log_kappa=log_kappa,
        method=method,
        calibration=calibration,
        pooling=pooling,
        calibration_samples={k: jnp.asarray(samples[k]) for k in _CALIBRATIONS[calibration].priors},
        log_kappa_problem=jnp.asarray(samples["log_kappa_problem"]) if partial else None,
        tau=jnp.asarray(samples["tau"]) if partial else None,
        kappa_mean=float(kappa.mean()),
        kappa_median=float(np.median(kappa)),
        kappa_interval=_quantiles(kappa),
        r_hat=r_hat,
        ess=ess,
        divergences=divergences,
        loss=None if loss is None else jnp.asarray(loss),
    )


def _describe(x) -> dict[str, Any]:
    lo, hi = _quantiles(x)
    return {"median": float(np.median(np.asarray(x))), "interval": [lo, hi]}


def _tolist(x) -> list:
    return np.asarray(x, np.float64).tolist()


def summary(posterior: KappaPosterior, *, include_samples: bool = True) -> dict[str, Any]:
    """A JSON-safe dict (floats, lists, None) of the posterior; `posterior_from_dict` inverts it.

    Without samples it is a report only (per-problem κ as medians and intervals).
    """
    out: dict[str, Any] = {
        "method": posterior.method,
        "calibration": posterior.calibration,
        "pooling": posterior.pooling,
        "num_samples": int(posterior.log_kappa.shape[0]),
        "kappa_mean": posterior.kappa_mean,
        "kappa_median": posterior.kappa_median,
        "kappa_interval": list(posterior.kappa_interval),
        "interval_mass": INTERVAL_MASS,
        "r_hat": posterior.r_hat,
        "ess": posterior.ess,
        "divergences": posterior.divergences,
        "loss_first": None if posterior.loss is None else float(posterior.loss[0]),
        "loss_final": None if posterior.loss is None else float(posterior.loss[-1]),
        "calibration_params": {k: _describe(v) for k, v in posterior.calibration_samples.items()},
    }
    if posterior.pooling == "partial":
        kp = np.exp(np.asarray(posterior.log_kappa_problem, np.float64))
        tail = (1 - INTERVAL_MASS) / 2
        out["tau"] = _describe(posterior.tau)
        out["kappa_problem_median"] = np.median(kp, axis=0).tolist()
        out["kappa_problem_interval"] = np.quantile(kp, [tail, 1 - tail], axis=0).T.tolist()
    if include_samples:
        samples = {"log_kappa": _tolist(posterior.log_kappa)}
        samples |= {k: _tolist(v) for k, v in posterior.calibration_samples.items()}
        if posterior.pooling == "partial":
            samples["tau"] = _tolist(posterior.tau)
            samples["log_kappa_problem"] = _tolist(posterior.log_kappa_problem)
        out["samples"] = samples
        out["loss"] = None if posterior.loss is None else _tolist(posterior.loss)
    return out


def posterior_from_dict(d: Mapping[str, Any]) -> KappaPosterior:
    """Rebuilds a `KappaPosterior` from `summary(posterior)` (which must include the samples)."""
    if "samples" not in d:
        raise ValueError(
            "the dict has no 'samples': save it with summary(..., include_samples=True)"
        )
    for name, value, choices in (
        ("method", d.get("method"), METHODS),
        ("calibration", d.get("calibration"), CALIBRATIONS),
        ("pooling", d.get("pooling"), POOLINGS),
    ):
        _checks.check_choice(name, value, choices)
    dtype = jnp.result_type(float)
    samples = {k: jnp.asarray(v, dtype) for k, v in d["samples"].items()}
    loss = d.get("loss")
    return _build(
        samples,
        method=d["method"],
        calibration=d["calibration"],
        pooling=d["pooling"],
        r_hat=d.get("r_hat"),
        ess=d.get("ess"),
        divergences=d.get("divergences"),
        loss=None if loss is None else jnp.asarray(loss, dtype),
    )


# ----------------------------------------------------------------------------------------------
# Validation


def _validated(records) -> Records:
    """Records as arrays (float scores, int32 counts, bool mask), checked eagerly."""
    if len(records) != 4:
        raise ValueError(
            f"records must be (scores, rollouts, correct, mask), got {len(records)} fields"
        )
    scores, rollouts, correct, mask = (np.asarray(x) for x in records)
    if scores.ndim != 2 or 0 in scores.shape:
        raise ValueError(f"scores must have shape [P, K] with P, K >= 1, got {scores.shape}")
    for name, x in (("rollouts", rollouts), ("correct", correct), ("mask", mask)):
        if x.shape != scores.shape:
            raise ValueError(f"{name} must have shape {scores.shape} like scores, got {x.shape}")
    if not np.issubdtype(scores.dtype, np.floating):
        raise ValueError(f"scores must be floats, got dtype {scores.dtype}")
    for name, x in (("rollouts", rollouts), ("correct", correct)):
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{name} must be integers, got dtype {x.dtype}")
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be boolean, got dtype {mask.dtype}")
    if not mask.any():
        raise ValueError("all units are masked: nothing to fit")
    w, m, c = scores[mask], rollouts[mask], correct[mask]
    if not (np.isfinite(w).all() and (w > 0).all() and (w < 1).all()):
        raise ValueError(f"scores must lie in the open interval (0, 1), got [{w.min()}, {w.max()}]")
    if (m < 0).any():
        raise ValueError(f"rollouts must be >= 0, got min {m.min()}")
    if (c < 0).any() or (c > m).any():
        bad = int(np.flatnonzero((c < 0) | (c > m))[0])
        raise ValueError(f"correct must satisfy 0 <= c <= m, got c={c[bad]} with m={m[bad]}")
    dtype = jnp.result_type(float)
    return Records(
        jnp.asarray(np.where(mask, scores, 0.5), dtype),
        jnp.asarray(np.where(mask, rollouts, 0), jnp.int32),
        jnp.asarray(np.where(mask, correct, 0), jnp.int32),
        jnp.asarray(mask),
    )


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# ----------------------------------------------------------------------------------------------
# Inference


def _numpyro_promotion():
    """NumPyro's samplers mix int32 and float32 internally (e.g. NUTS divides an accept-probability
    sum by an integer count), which strict promotion rejects; our own code does not need this
    (`kappa_model` and the log-pmf are tested under strict promotion)."""
    return jax.numpy_dtype_promotion("standard")


def _latent_sites(calibration: str, pooling: str) -> tuple[str, ...]:
    """Sites reported in the posterior (constrained values; deterministic ones included)."""
    partial = ("tau", "log_kappa_problem") if pooling == "partial" else ()
    return ("log_kappa", *_CALIBRATIONS[calibration].priors, *partial)


# The drivers are jitted once per (shapes, static configuration) with the data as arguments, so a
# second fit on new data of the same shape does not recompile (numpyro's MCMC and SVI.run build
# fresh closures, and so recompile, on every call).
@functools.partial(
    jax.jit,
    static_argnames=(
        "calibration",
        "pooling",
        "num_warmup",
        "num_samples",
        "num_chains",
        "target_accept_prob",
    ),
)
def _nuts_draws(
    key, data, *, calibration, pooling, num_warmup, num_samples, num_chains, target_accept_prob
):
    """NUTS: {site: [C, S, ...]} and divergent transitions [C, S]; chains vmapped on one device."""
    model = functools.partial(kappa_model, calibration=calibration, pooling=pooling)
    sites = _latent_sites(calibration, pooling)

    def chain(key):
        key_init, key_run = jax.random.split(key)
        info = initialize_model(key_init, model, model_args=data, dynamic_args=True)
        init_kernel, sample_kernel = hmc(potential_fn_gen=info.potential_fn, algo="NUTS")
        state = init_kernel(
            info.param_info,
            num_warmup,
            target_accept_prob=target_accept_prob,
            model_args=data,
            rng_key=key_run,
        )

        def step(state, _):
            state = sample_kernel(state, model_args=data)
            return state, (state.z, state.diverging)

        # One scan over warmup and sampling (one copy of the NUTS kernel to compile, not two):
        # the kernel adapts the step size and diagonal mass matrix during its first num_warmup
        # transitions, as numpyro's MCMC does, and the warmup draws are dropped afterwards.
        _, (z, diverging) = lax.scan(step, state, None, length=num_warmup + num_samples)
        z = jax.tree.map(lambda x: x[num_warmup:], z)
        diverging = diverging[num_warmup:]
        constrained = jax.vmap(info.postprocess_fn(*data))(z)
        return {k: constrained[k] for k in sites}, diverging

    return jax.vmap(chain)(jax.random.split(key, num_chains))


@functools.partial(
    jax.jit, static_argnames=("calibration", "pooling", "guide", "svi_steps", "num_samples")
)
def _svi_draws(key, data, learning_rate, *, calibration, pooling, guide, svi_steps, num_samples):
    """SVI: {site: [S, ...]} drawn from the fitted guide, and the −ELBO per step [T]."""
    model = functools.partial(kappa_model, calibration=calibration, pooling=pooling)
    key_init, key_draw = jax.random.split(key)
    auto = (AutoNormal if guide == "normal" else AutoMultivariateNormal)(model)
    # Adam with gradient clipping and a step size decaying 100× over the run. Adam's steps have
    # the size of the step size whatever the gradient noise, so the final one sets the jitter of
    # the fitted location (single-particle ELBO): 5e-4 at the default, ~0.04 posterior sd on the
    # 128-unit test data (10× decay left ~0.3 sd).
    decay = 0.01 ** (1 / svi_steps)
    optim = numpyro.optim.ClippedAdam(step_size=lambda step: learning_rate * decay**step)
    svi = SVI(model, auto, optim, Trace_ELBO())
    state = svi.init(key_init, *data)
    state, loss = lax.scan(lambda s, _: svi.update(s, *data), state, None, length=svi_steps)
    # Predictive runs the model on guide draws, so deterministic sites come out too.
    predictive = Predictive(
        model,
        guide=auto,
        params=svi.get_params(state),
        num_samples=num_samples,
        return_sites=list(_latent_sites(calibration, pooling)),
    )
    return predictive(key_draw, *data), loss


def _fit_nuts(key, data, *, num_chains, **config):
    with _numpyro_promotion():
        draws, diverging = _nuts_draws(key, data, num_chains=num_chains, **config)
    by_chain = np.asarray(draws["log_kappa"], np.float64)
    diagnostics = {
        # With one chain split_gelman_rubin compares the chain's two halves.
        "r_hat": float(split_gelman_rubin(by_chain)),
        "ess": float(effective_sample_size(by_chain)),
        "divergences": int(np.asarray(diverging).sum()),
    }
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in draws.items()}
    return flat, diagnostics


def _fit_svi(key, data, *, learning_rate, **config):
    dtype = jnp.result_type(float)
    with _numpyro_promotion():
        draws, loss = _svi_draws(key, data, jnp.asarray(learning_rate, dtype), **config)
    return draws, {"loss": loss}


def fit_kappa(
    key: PRNGKeyArray,
    records: Records | tuple,
    *,
    method: str = "nuts",
    calibration: str = "identity",
    pooling: str = "complete",
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 2,
    target_accept_prob: float = 0.8,
    svi_steps: int = 2000,
    guide: str = "normal",
    learning_rate: float = 0.05,
) -> KappaPosterior:
    """The posterior of the PRM reliability κ (Eq. 6) given Monte Carlo rollout labels.

    Args:
      key: PRNG key; the same key gives the same draws, bit for bit.
      records: `Records` (scores Float[P, K] in (0, 1), rollouts Int[P, K] ≥ 0, correct
        Int[P, K] in [0, m], mask Bool[P, K]); masked entries are ignored whatever they hold.
      method: "nuts" (exact up to Monte Carlo error; small data) or "svi" (variational; large data).
      calibration: "identity" (f(w) = w, the paper's model) or "logistic" (f = σ(a + b·logit w)).
      pooling: "complete" (one κ) or "partial" (per-problem κ_p around a global κ).
      num_warmup: NUTS warmup steps per chain.
      num_samples: NUTS draws per chain; SVI draws from the fitted guide.
      num_chains: NUTS chains, run vectorized on one device (split R-hat is used with one chain).
      target_accept_prob: NUTS step-size adaptation target.
      svi_steps: SVI optimisation steps.
      guide: SVI guide, "normal" (AutoNormal, mean field) or "mvn" (AutoMultivariateNormal).
      learning_rate: initial SVI (clipped Adam) step size, decayed 100× over the run.

    Returns:
      A `KappaPosterior`: samples, mean, median and 90% interval of κ, and diagnostics (R-hat,
      ESS and divergences for NUTS; the −ELBO trace for SVI).
    """
    _checks.check_choice("method", method, METHODS)
    _checks.check_choice("calibration", calibration, CALIBRATIONS)
    _checks.check_choice("pooling", pooling, POOLINGS)
    _checks.check_choice("guide", guide, GUIDES)
    _check_positive_int("num_samples", num_samples)
    _check_positive_int("num_chains", num_chains)
    _check_positive_int("num_warmup", num_warmup, minimum=0)
    _check_positive_int("svi_steps", svi_steps)
    rec = _validated(records)
    data = (rec.scores, rec.rollouts, rec.mask, rec.correct)
    config = {"calibration": calibration, "pooling": pooling, "num_samples": num_samples}
    if method == "nuts":
        samples, diagnostics = _fit_nuts(
            key,
            data,
            num_warmup=num_warmup,
            num_chains=num_chains,
            target_accept_prob=float(target_accept_prob),
            **config,
        )
    else:
        samples, diagnostics = _fit_svi(
            key, data, guide=guide, svi_steps=svi_steps, learning_rate=learning_rate, **config
        )
    return _build(samples, method=method, calibration=calibration, pooling=pooling, **diagnostics)


# ----------------------------------------------------------------------------------------------
# Simulation


def simulate_records(
    key: PRNGKeyArray,
    *,
    kappa: float | Float[Array, " P"],
    num_problems: int,
    num_candidates: int,
    rollouts: int | Int[Array, "P K"],
    score_dist: tuple[float, float] = (2.0, 2.0),
    calibration: tuple[float, float] | None = None,
) -> Records:
    """Records drawn exactly from the model: w ~ Beta(score_dist), p ~ Beta(κf(w), κ(1 − f(w))),
    c ~ Binomial(m, p).

    Args:
      key: PRNG key.
      kappa: κ > 0, one for all problems or Float[P] (one per problem).
      num_problems: P.
      num_candidates: K.
      rollouts: m, an int for every unit or Int[P, K].
      score_dist: (a, b) of the Beta distribution of the PRM scores w.
      calibration: None for f(w) = w, or (a, b) for f(w) = σ(a + b·logit w).

    Returns:
      `Records` with an all-True mask.
    """
    _check_positive_int("num_problems", num_problems)
    _check_positive_int("num_candidates", num_candidates)
    if min(score_dist) <= 0:
        raise ValueError(f"score_dist must be two Beta parameters > 0, got {score_dist}")
    if calibration is not None and calibration[1] <= 0:
        raise ValueError(f"calibration slope b must be > 0 (a monotone map), got {calibration[1]}")
    shape = (num_problems, num_candidates)
    dtype = jnp.result_type(float)
    kappa = jnp.asarray(kappa, dtype)
    if kappa.ndim not in (0, 1) or (kappa.ndim == 1 and kappa.shape != (num_problems,)):
        raise ValueError(f"kappa must be a scalar or have shape [P] = [{num_problems}]")
    k = _checks.concrete(kappa)
    if k is not None and not (np.isfinite(k).all() and (k > 0).all()):
        raise ValueError("kappa must be finite and > 0")
    m = jnp.broadcast_to(jnp.asarray(rollouts, jnp.int32), shape)
    if (np.asarray(m) < 0).any():
        raise ValueError("rollouts must be >= 0")
    w, c = _simulate(
        key,
        jnp.broadcast_to(kappa, (num_problems,))[:, None],
        m,
        jnp.asarray(score_dist, dtype),
        jnp.asarray((0.0, 1.0) if calibration is None else calibration, dtype),
        jnp.asarray(calibration is not None),
        shape=shape,
    )
    return Records(w, m, c, jnp.ones(shape, bool))


@functools.partial(jax.jit, static_argnames=("shape",))
def _simulate(key, kappa, m, score_dist, calibration, logistic, *, shape):
    """(w, c) for `simulate_records`; one compile per shape whatever κ, m and the parameters."""
    key_w, key_p, key_c = jax.random.split(key, 3)
    dtype = kappa.dtype
    w = jax.random.beta(key_w, score_dist[0], score_dist[1], shape, dtype)
    # A float draw can round to exactly 0 or 1; the model needs w strictly inside (0, 1).
    eps = jnp.finfo(dtype).eps
    w = jnp.clip(w, eps, 1 - eps)
    # Both maps are computed and one selected (traced flag, one compile): f(w) = w exactly when
    # there is no calibration, rather than σ(logit w).
    f, one_minus_f = _logistic_mean(w, {"a": calibration[0], "b": calibration[1]})
    f, one_minus_f = jnp.where(logistic, f, w), jnp.where(logistic, one_minus_f, 1 - w)
    p = jax.random.beta(key_p, kappa * f, kappa * one_minus_f, shape, dtype)
    c = jax.random.binomial(key_c, m.astype(dtype), p, shape, dtype).astype(jnp.int32)
    return w, c


def prior_predictive(
    key: PRNGKeyArray,
    scores: Float[Array, "P K"],
    rollouts: Int[Array, "P K"],
    *,
    mask: Bool[Array, "P K"] | None = None,
    num_draws: int = 1,
    calibration: str = "identity",
    pooling: str = "complete",
) -> dict[str, Array]:
    """Draws of every model site from the prior, c included (a check of the priors' scale).

    Returns:
      {site: Array[S, ...]} with S = num_draws: "log_kappa" [S], "correct" Int[S, P, K] (0 where
      masked), and "a", "b", "tau", "log_kappa_problem" where the model has them.
    """
    _checks.check_choice("calibration", calibration, CALIBRATIONS)
    _checks.check_choice("pooling", pooling, POOLINGS)
    _check_positive_int("num_draws", num_draws)
    scores = jnp.asarray(scores)
    mask = jnp.ones(scores.shape, bool) if mask is None else jnp.asarray(mask)
    rollouts = jnp.asarray(rollouts)
    rec = _validated((scores, rollouts, jnp.zeros_like(rollouts), mask))
    with _numpyro_promotion():
        draws = _prior_draws(
            key,
            rec.scores,
            rec.rollouts,
            rec.mask,
            calibration=calibration,
            pooling=pooling,
            num_draws=num_draws,
        )
    draws["correct"] = jnp.where(rec.mask, draws["correct"], 0).astype(jnp.int32)
    if pooling == "partial":
        draws["log_kappa_z"] = draws["log_kappa_z"][..., 0]
    return draws


@functools.partial(jax.jit, static_argnames=("calibration", "pooling", "num_draws"))
def _prior_draws(key, scores, rollouts, mask, *, calibration, pooling, num_draws):
    model = functools.partial(kappa_model, calibration=calibration, pooling=pooling)
    return Predictive(model, num_samples=num_draws)(key, scores, rollouts, mask)
