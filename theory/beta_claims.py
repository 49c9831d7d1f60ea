"""Beta-model claims (§3.1, App. B.1): Eq. 5, the Beta moment, B.1's steps, Prop. 1, REBASE.

Every check runs in float64 (`jax.enable_x64`); the exact optimum and objective come from
`dora_jax` (`optimal_allocation`, `expected_failure`, `log_expected_failure`). Each claim
declares its protocol (quantity, tolerance, control) in `theory.core` terms and returns
measurements only; the protocol judges them.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

import dora_jax
from theory.core import CLAIMS, Measurement, Protocol, claim, judge

# The setting of the paper's numeric check of App. B.1: k = 8 candidates, N = 32,
# R ~ U(0.2, 0.95), w = softmax(R / 0.1).
K_PAPER, N_PAPER, T_B = 8, 32, 0.1
FWER = 1e-3  # family-wise error rate of every Monte Carlo verdict in this module


def _pick(mode: str, fast, default, thorough):
    return {"fast": fast, "default": default, "thorough": thorough}[mode]


def _f(x) -> float:
    return float(np.asarray(x))


# Batched public API (one problem per row). Built once; compiled per shape/dtype on first use.
_optimal_batch = jax.jit(
    jax.vmap(
        lambda w, n, kappa: dora_jax.optimal_allocation(w, n, kappa=kappa), in_axes=(0, None, None)
    )
)
_optimal_per_kappa = jax.jit(
    jax.vmap(
        lambda w, n, kappa: dora_jax.optimal_allocation(w, n, kappa=kappa), in_axes=(0, None, 0)
    )
)
_log_fail_batch = jax.jit(
    jax.vmap(
        lambda w, b, kappa: dora_jax.log_expected_failure(w, b, kappa=kappa),
        in_axes=(0, 0, None),
    )
)
_rebase_batch = jax.jit(jax.vmap(lambda r, n: dora_jax.allocate("rebase", r, n), in_axes=(0, None)))
_apportion_batch = jax.jit(jax.vmap(lambda x, n: dora_jax.apportion(x, n), in_axes=(0, None)))


def _paper_draws(seed: int, draws: int, k: int = K_PAPER):
    """R ~ U(0.2, 0.95) and w = softmax(R / T_b), float64, shape [draws, k]."""
    r = np.random.default_rng(seed).uniform(0.2, 0.95, size=(draws, k))
    z = r / T_B
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return r, e / e.sum(axis=1, keepdims=True)


def _product_moment(w: float, kappa: float, b: int) -> float:
    """Π_{r<B} (κ(1−w)+r)/(κ+r), the closed form of E[(1−p)^B], in float64."""
    r = np.arange(b, dtype=np.float64)
    return float(np.prod((kappa * (1 - w) + r) / (kappa + r)))


# ---------------------------------------------------------------------------------------------
# Eq. 5 cases: prior means w, rollouts B, κ, and the directions that share one p in the control.
EQ5_CASES = (
    ((0.1, 0.3, 0.05), (2, 1, 4), 1.0, (0, 0, 1)),
    ((0.02,) * 8, (4,) * 8, 10.0, (0, 0, 0, 0, 1, 1, 1, 1)),
    ((0.5, 0.2), (1, 3), 0.5, (0, 0)),
    ((0.9, 0.01, 0.01, 0.01), (1, 10, 10, 10), 2.0, (0, 1, 1, 1)),
    ((0.3, 0.3, 0.3, 0.3), (2, 2, 2, 2), 0.3, (0, 0, 1, 1)),
)


@claim(
    "eq5-success",
    statement=(
        "Eq. 5 with Eq. 6: under Assumption 1 (independent candidates), P(at least one of the "
        "rollouts succeeds) = 1 − E Π_i (1 − p_i)^{B_i}, p_i ~ Beta(κw_i, κ(1 − w_i))."
    ),
    source="§3.1, Eqs. 5–7, Assumption 1",
    protocol=Protocol(
        quantity=(
            "|simulated P(≥ 1 success) − (1 − dora_jax.expected_failure(w, B, κ))| per case "
            "(p_i drawn from Beta, then B_i Bernoulli rollouts each)"
        ),
        tolerance=0.01,
        sense="magnitude",
        fwer=FWER,
        unit="in probability",
        control=(
            "a world where Assumption 1 fails: candidates of one direction share one p "
            "(correlated), judged against the same independent-candidate Eq. 5"
        ),
    ),
    region=lambda mode: {
        "cases": [dict(w=w, B=b, kappa=k) for w, b, k, _ in EQ5_CASES],
        "draws_per_case": _pick(mode, 200_000, 400_000, 4_000_000),
        "seed": 5,
    },
)
def eq5_success(region, control):
    draws = region["draws_per_case"]
    rng = np.random.default_rng(region["seed"])
    values, ses, labels, rows = [], [], [], []
    for c, (w, b, kappa, dirs) in enumerate(EQ5_CASES):
        w, b, dirs = np.asarray(w), np.asarray(b), np.asarray(dirs)
        with jax.enable_x64(True):
            predicted = 1.0 - _f(
                dora_jax.expected_failure(jnp.asarray(w), jnp.asarray(b), kappa=kappa)
            )
        hits = 0
        for start in range(0, draws, 250_000):  # chunks: bounded memory
            n = min(250_000, draws - start)
            if control:  # one p per direction, mean prior of its members (Assumption 1 broken)
                wd = np.bincount(dirs, weights=w) / np.bincount(dirs)
                p = rng.beta(kappa * wd, kappa * (1 - wd), size=(n, wd.size))[:, dirs]
            else:
                p = rng.beta(kappa * w, kappa * (1 - w), size=(n, w.size))
            successes = rng.binomial(b, p)
            hits += int(np.any(successes > 0, axis=1).sum())
        simulated = hits / draws
        se = math.sqrt(max(simulated * (1 - simulated), 1e-12) / draws)
        values.append(simulated - predicted)
        ses.append(se)
        labels.append(f"case {c}: w={w.tolist()}, B={b.tolist()}, κ={kappa:g}")
        rows.append({"predicted": predicted, "simulated": simulated, "se": se})
    return Measurement(values, labels, draws, se=ses, details={"cases": rows})


# ---------------------------------------------------------------------------------------------
def _tanh_sinh_log_beta_integral(a: float, b: float, h: float, t_max: float) -> float:
    """log ∫_0^1 p^{a−1} (1−p)^{b−1} dp by tanh-sinh quadrature, evaluated in log space.

    p = 1/(1 + e^{−π sinh t}), so log p and log(1 − p) are softplus values (no underflow at the
    endpoints, where the integrand of a < 1 or b < 1 is singular).
    """
    t = np.arange(-t_max, t_max + h / 2, h)
    s = np.pi * np.sinh(t)
    log_p = -np.logaddexp(0.0, -s)
    log_q = -np.logaddexp(0.0, s)
    # dp/dt = (π/2) cosh t · p (1 − p)
    log_jac = np.log(np.pi / 2 * np.cosh(t)) + log_p + log_q
    terms = (a - 1) * log_p + (b - 1) * log_q + log_jac
    m = terms.max()
    return float(m + np.log(h * np.exp(terms - m).sum()))


@claim(
    "beta-moment",
    statement="App. B.1 step 1: E[(1−p)^B] = Π_{r<B} (κ(1−w)+r)/(κ+r) for p ~ Beta(κw, κ(1−w)).",
    source="App. B.1 step 1, Eq. 6",
    protocol=Protocol(
        quantity=(
            "relative error of the product form against tanh-sinh quadrature of the Beta integral "
            "and against dora_jax.expected_failure, max of the two per grid point"
        ),
        tolerance=1e-9,
        unit="relative",
        control="the product taken over r ≤ B (one factor too many)",
    ),
    region=lambda mode: {
        "kappa": _pick(
            mode, [0.5, 10.0], [0.1, 0.5, 2.0, 10.0, 100.0], [0.05, 0.1, 0.5, 2, 10, 100, 1e3]
        ),
        "w": _pick(mode, [0.1, 0.7], [0.1, 0.5, 0.7, 0.9], [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98]),
        "B": _pick(mode, [1, 5, 32], [1, 3, 10, 64], [1, 2, 3, 10, 64, 256]),
    },
)
def beta_moment(region, control):
    grid = [
        (float(k), float(w), int(b))
        for k in region["kappa"]
        for w in region["w"]
        for b in region["B"]
    ]
    values, labels = [], []
    with jax.enable_x64(True):
        for kappa, w, b in grid:
            closed = _product_moment(w, kappa, b + 1 if control else b)
            a, c = kappa * w, kappa * (1 - w)
            # ∫ (1−p)^B Beta(p; a, c) dp = ∫ p^{a−1}(1−p)^{c+B−1} dp / B(a, c), by quadrature.
            quad = math.exp(
                _tanh_sinh_log_beta_integral(a, c + b, 1 / 64, 9.0)
                - _tanh_sinh_log_beta_integral(a, c, 1 / 64, 9.0)
            )
            core = _f(dora_jax.expected_failure(np.array([w]), np.array([b]), kappa=kappa))
            values.append(max(abs(quad - closed) / quad, abs(core - closed) / core))
            labels.append(f"κ={kappa:g}, w={w:g}, B={b}")
    return Measurement(values, labels, len(grid))


# ---------------------------------------------------------------------------------------------
X_BINS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.3, 0.6, 0.9, 1.0)


@claim(
    "digamma-step",
    statement=(
        "App. B.1 step 3: −log E Π(1−p_i)^{B_i} 'simplifies to' L(B) = Σ κw_i[ψ(κ+B_i) − ψ(κ)] "
        "(stated as an identity)."
    ),
    source="App. B.1 step 3",
    protocol=Protocol(
        quantity="relative error (exact − L)/exact of the digamma form per grid point",
        # An identity to six digits: far above the core's precision on small −log E (its log E is
        # exact to ~1e-12 absolute, so ~1e-8 relative where −log E ≈ 1e-4), far below any
        # approximation error (the smallest in the region is ≈ w/2 ≥ 5e-4).
        tolerance=1e-6,
        unit="relative",
        control=(
            "the step written as the identity it would need: Σ_r −log(1 − κw/(κ+r)) in place "
            "of Σ_r κw/(κ+r) = κw[ψ(κ+B) − ψ(κ)]"
        ),
    ),
    region=lambda mode: {
        "kappa": ["logspace", -3, 3, _pick(mode, 7, 25, 61)],
        "w": _pick(
            mode,
            [0.01, 0.3, 0.9],
            [0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99],
            [0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99],
        ),
        "B": _pick(mode, [1, 4, 32, 256], [1, 2, 4, 8, 16, 32, 64, 128, 256], list(range(1, 257))),
    },
)
def digamma_step(region, control):
    _, lo, hi, count = region["kappa"]
    kappas = np.logspace(lo, hi, count)
    ws, bs = np.asarray(region["w"], np.float64), np.asarray(region["B"])
    kk, ww, bb = (a.ravel() for a in np.meshgrid(kappas, ws, bs, indexing="ij"))
    with jax.enable_x64(True):
        exact = -np.asarray(
            jax.vmap(lambda w, b, k: dora_jax.log_expected_failure(w[None], b[None], kappa=k))(
                jnp.asarray(ww), jnp.asarray(bb, jnp.int32), jnp.asarray(kk)
            )
        )
        psi = jax.scipy.special.digamma
        approx = np.asarray(kk * ww * (psi(jnp.asarray(kk + bb)) - psi(jnp.asarray(kk))))
    r = np.arange(int(bs.max()), dtype=np.float64)
    x = kk[:, None] * ww[:, None] / (kk[:, None] + r[None, :])
    used = r[None, :] < bb[:, None]
    t = np.where(used, -np.log1p(-x), 0)
    harmonic = kk * ww * np.where(used, 1 / (kk[:, None] + r[None, :]), 0).sum(axis=1)
    digamma_identity = float(np.max(np.abs(approx - harmonic) / harmonic))  # exact, ~1e-15
    if control:
        approx = t.sum(axis=1)
    rel = (exact - approx) / exact
    # Diagnostics: the error is a t-weighted average of per-term errors 1 − x/(−log(1−x)),
    # so it is governed by the t-weighted mean x ("x_eff"); the r = 0 term has x = w at every κ.
    x_mean = (t * x).sum(axis=1) / t.sum(axis=1)
    bins = []
    for a, b in itertools.pairwise(X_BINS):
        sel = (x_mean > a) & (x_mean <= b)
        if sel.any():
            bins.append(
                {"x_eff": [a, b], "points": int(sel.sum()), "median": float(np.median(rel[sel])),
                 "max": float(rel[sel].max())}
            )  # fmt: skip
    labels = [f"κ={k:.3g}, w={w:g}, B={b}" for k, w, b in zip(kk, ww, bb, strict=True)]
    details = {
        "median_rel_err": float(np.median(rel)),
        "max_rel_err": float(rel.max()),
        "fraction_within_1pct": float(np.mean(rel < 0.01)),
        "digamma_vs_harmonic_sum": digamma_identity,
        "by_x_eff": bins,
    }  # fmt: skip
    return Measurement(rel, labels, int(rel.size), details=details)


# ---------------------------------------------------------------------------------------------
def _paper_region(mode: str, seed: int, draws: tuple[int, int, int]) -> dict:
    return {
        "draws": _pick(mode, *draws),
        "K": K_PAPER,
        "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
        "seed": seed,
    }


@claim(
    "prop1-kappa-inf",
    statement="Prop. 1, κ → ∞: the optimal allocation puts all N rollouts on argmax_j w_j.",
    source="§3.1 Prop. 1, App. B.1",
    protocol=Protocol(
        quantity=(
            "per draw: 1 if the exact optimum does not put all N on argmax w at κ = 1.001·κ*, "
            "κ* = w₂(N − 1)/(w₁ − w₂) the finite κ where the limit is reached, else 0"
        ),
        tolerance=0.0,
        control="REBASE's allocation (independent of κ) in place of the exact optimum",
    ),
    region=lambda mode: {**_paper_region(mode, 21, (16, 64, 512)), "N": N_PAPER},
)
def prop1_kappa_inf(region, control):
    draws, n = region["draws"], region["N"]
    r, w = _paper_draws(region["seed"], draws)
    top = np.argmax(w, axis=1)
    srt = np.sort(w, axis=1)
    w1, w2 = srt[:, -1], srt[:, -2]
    threshold = w2 * (n - 1) / (w1 - w2)
    with jax.enable_x64(True):
        wj = jnp.asarray(w)
        above = np.asarray(_optimal_per_kappa(wj, n, jnp.asarray(threshold * 1.001)))
        below = np.asarray(_optimal_per_kappa(wj, n, jnp.asarray(threshold * 0.999)))
        if control:
            above = np.asarray(_rebase_batch(jnp.asarray(r), n))
    rows = np.arange(draws)
    missed = (above[rows, top] != n).astype(np.float64)
    details = {
        "threshold_kappa_median": float(np.median(threshold)),
        "threshold_kappa_max": float(threshold.max()),
        "sharp: below 0.999·κ* not all on argmax": bool(np.all(below[rows, top] < n)),
    }
    return Measurement(missed, [f"draw {i}" for i in rows], draws, details=details)


@claim(
    "prop1-kappa-0",
    statement=(
        "Prop. 1, κ → 0: the optimum gives one rollout each to the top min(k, N) candidates; "
        "the rest can go anywhere."
    ),
    source="§3.1 Prop. 1, App. B.1",
    protocol=Protocol(
        quantity=(
            "per (N, κ, draw): how many of the top min(k, N) candidates get no rollout from the "
            "exact optimum"
        ),
        tolerance=0.0,
        unit="candidates",
        control="round(N·w) by largest remainders (the 'B_i ∝ w_i' reading of App. B.2)",
    ),
    region=lambda mode: {
        **_paper_region(mode, 31, (16, 64, 512)),
        "N": _pick(mode, [4, 32], [4, 8, 32, 64], [2, 4, 8, 16, 32, 64, 256]),
        "kappa": _pick(mode, [1e-6, 1e-8], [1e-6, 1e-7, 1e-8], [1e-6, 1e-7, 1e-8, 1e-10]),
    },
)
def prop1_kappa_0(region, control):
    draws = region["draws"]
    _, w = _paper_draws(region["seed"], draws)
    order = np.argsort(-w, axis=1, kind="stable")
    values, labels, far = [], [], {}
    with jax.enable_x64(True):
        wj = jnp.asarray(w)
        for n in region["N"]:
            s = min(K_PAPER, n)
            prop = np.asarray(_apportion_batch(wj, n))
            for kappa in region["kappa"]:
                b = prop if control else np.asarray(_optimal_batch(wj, n, float(kappa)))
                top = np.take_along_axis(b, order[:, :s], axis=1)
                values += list((top == 0).sum(axis=1).astype(np.float64))
                labels += [f"N={n}, κ={kappa:g}, draw {i}" for i in range(draws)]
                far[f"N={n}, κ={kappa:g}"] = float((np.abs(b - prop).sum(axis=1) / n).mean())
    details = {"mean L1/N between the optimum and round(N·w) (B.2's reading)": far}
    return Measurement(values, labels, draws, details=details)


# ---------------------------------------------------------------------------------------------
@claim(
    "prop1-linear",
    statement="Prop. 1, finite κ: the optimum approximately follows B_i ≈ (N + kκ)w_i − κ.",
    source="§3.1 Prop. 1, App. B.1 step 5",
    protocol=Protocol(
        quantity=(
            "per (κ, N): mean over draws of the relative excess failure P_fail(rule)/P_fail(opt) "
            "− 1 of the rule clipped at 0 and apportioned to N"
        ),
        tolerance=0.01,
        approximately=0.10,
        fwer=FWER,
        unit="relative",
        control="the exact optimum in place of the rule (a rule known to be right)",
    ),
    region=lambda mode: {
        **_paper_region(mode, 41, (64, 128, 512)),
        "kappa": _pick(
            mode,
            [0.01, 1.0, 10.0],
            [1e-3, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0],
            [1e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1e3],
        ),
        "N": _pick(mode, [32], [16, 32, 64, 256], [8, 16, 32, 64, 128, 256, 1024]),
    },
)
def prop1_linear(region, control):
    draws = region["draws"]
    _, w = _paper_draws(region["seed"], draws)
    values, ses, labels, table = [], [], [], []
    with jax.enable_x64(True):
        wj = jnp.asarray(w)
        for n in region["N"]:
            for kappa in region["kappa"]:
                opt = np.asarray(_optimal_batch(wj, n, float(kappa)))
                lin = (n + K_PAPER * kappa) * w - kappa
                clipped = np.maximum(lin, 0)
                clipped = np.where(clipped.sum(axis=1, keepdims=True) > 0, clipped, w)
                rule = np.asarray(_apportion_batch(jnp.asarray(clipped), n))
                if control:
                    rule = opt
                lf_opt = np.asarray(_log_fail_batch(wj, jnp.asarray(opt), float(kappa)))
                lf_rule = np.asarray(_log_fail_batch(wj, jnp.asarray(rule), float(kappa)))
                loss = np.expm1(lf_rule - lf_opt)
                values.append(float(loss.mean()))
                ses.append(float(loss.std(ddof=1) / math.sqrt(draws)))
                labels.append(f"κ={kappa:g}, N={n}")
                table.append(
                    {"kappa": kappa, "N": n, "rel_excess_failure": values[-1], "se": ses[-1],
                     "fraction_negative_B": float((lin < 0).mean())}
                )  # fmt: skip
    return Measurement(values, labels, draws, se=ses, details={"table": table})


# ---------------------------------------------------------------------------------------------
@claim(
    "rebase-near-optimal",
    statement=(
        "§3.1: in the low-confidence regime the paper adopts (small κ), REBASE (w = "
        "softmax(R/T_b), apportioned) is the Beta-optimal allocation."
    ),
    source="§3.1 (after Prop. 1), Eq. 4",
    protocol=Protocol(
        quantity=(
            "per κ ≤ 1: mean over draws of the relative excess failure P_fail(REBASE)/P_fail(opt) "
            "− 1 (k = 8, N = 32)"
        ),
        tolerance=0.01,
        approximately=0.10,
        fwer=FWER,
        unit="relative",
        control="anti-REBASE, softmax(−R/T_b) (the budget on the worst candidates)",
    ),
    region=lambda mode: {
        **_paper_region(mode, 51, (64, 512, 4096)),
        "N": N_PAPER,
        "kappa": _pick(
            mode,
            [1e-3, 0.1, 1.0],
            [1e-3, 0.01, 0.1, 0.3, 1.0],
            [1e-3, 0.01, 0.03, 0.1, 0.3, 0.5, 1.0],
        ),
        "kappa beyond the region (reported, not judged)": [2.0, 5.0, 10.0, 20.0],
    },
)
def rebase_near_optimal(region, control):
    draws, n = region["draws"], region["N"]
    r, w = _paper_draws(region["seed"], draws)
    values, ses, labels, beyond = [], [], [], {}
    with jax.enable_x64(True):
        wj = jnp.asarray(w)
        rebase = _rebase_batch(jnp.asarray(-r if control else r), n)
        for kappa in [*region["kappa"], *region["kappa beyond the region (reported, not judged)"]]:
            opt = _optimal_batch(wj, n, float(kappa))
            lf_opt = np.asarray(_log_fail_batch(wj, opt, float(kappa)))
            lf_reb = np.asarray(_log_fail_batch(wj, rebase, float(kappa)))
            loss = np.expm1(lf_reb - lf_opt)
            if kappa in region["kappa"]:
                values.append(float(loss.mean()))
                ses.append(float(loss.std(ddof=1) / math.sqrt(draws)))
                labels.append(f"κ={kappa:g}")
            else:
                beyond[f"κ={kappa:g}"] = float(loss.mean())
    details = {"relative excess failure beyond the region": beyond}
    return Measurement(values, labels, draws, se=ses, details=details)


# ---------------------------------------------------------------------------------------------
# Declared from the paper's statement alone (re-declared; see theory/preregistration.py):
# - the statement is a pair of LIMITS (κ → 0, κ → ∞), so it is judged at the κ nearest each limit
#   that float64 evaluates, κ = 1e∓8, and judged as the limit it is: the finite-κ residual there
#   is O(κ·H_N) ≈ 1e-8·6 relative for κ → 0 (the r ≥ 1 factors 1 − κw/(κ + r) of App. B.1
#   step 1) and vanishes for κ → ∞ beyond κ* = w₂(N − 1)/(w₁ − w₂) (see prop1-kappa-inf), so a
#   limit that holds leaves ≤ LIMIT_TOL = 1e-6; "closely aligned" (the paper's words for κ → 0)
#   is granted up to 1% in failure probability (LIMIT_APPROX);
# - N: the paper's budgets (§4.1); k ≤ N because Algorithm 1 allocates among the ≤ N active
#   candidates of a round and Eq. 1 gives each one rollout; k = 8 (the paper names no k;
#   8 ≤ 16, the smallest budget); R ~ U(0, 1) (a PRM probability; the paper gives no law), w =
#   softmax(R/T_b), T_b = 0.1 (App. D.1);
# - the approach to each limit (κ = 1e∓2, 1e∓4, 1e∓6) is reported, not judged: the paper claims
#   the limit only.
LIMIT_TOL = 1e-6  # relative excess failure a limit that holds leaves at κ = 1e∓8
LIMIT_APPROX = 1e-2  # "closely aligned": within 1% in failure probability


@functools.cache  # the control swaps the same (method, N) pairs: compiled once for both
def _limit_rule(method: str, n: int):
    """R [draws, K] -> allocations [draws, K] at budget n. Beam search's M = N is a checked
    Python int (one compile per N); temperature sampling's N is traced (one compile)."""
    if method == "beam_search":  # Eq. 2 with M = N: the top candidate gets all N
        return jax.jit(jax.vmap(lambda r: dora_jax.allocate(method, r, n, beam_width=n)))
    rule = _traced_budget_rule(method)
    return lambda r: rule(r, n)


@functools.cache
def _traced_budget_rule(method: str):
    return jax.jit(jax.vmap(lambda r, n: dora_jax.allocate(method, r, n), in_axes=(0, None)))


def _uniform_draws(seed: int, draws: int, k: int = K_PAPER):
    """R ~ U(0, 1) and w = softmax(R / T_b), float64, shape [draws, k]."""
    r = np.random.default_rng(seed).uniform(0.0, 1.0, size=(draws, k))
    z = r / T_B
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return r, e / e.sum(axis=1, keepdims=True)


@claim(
    "prop1-limits-search",
    statement=(
        "Prop. 1 read as the search methods: κ → 0 gives temperature sampling (every candidate "
        "sampled alike, Eq. 1) and κ → ∞ gives beam search with M = N (all N on the top "
        "candidate, Eq. 2)."
    ),
    source="§3.1 Prop. 1, App. B.1, Eqs. 1–2, Algorithm 1",
    protocol=Protocol(
        quantity=(
            "per (limit, N): max over draws of the relative excess failure P_fail(method)/"
            "P_fail(optimal) − 1 of dora_jax's integer allocations (temperature_sampling at "
            "κ = 1e-8, beam_search(beam_width=N) at κ = 1e8) against the exact optimum"
        ),
        tolerance=LIMIT_TOL,
        approximately=LIMIT_APPROX,
        unit="relative",
        control=(
            "the limits swapped (beam_search(beam_width=N) at κ → 0, temperature_sampling at "
            "κ → ∞) where the claim does not fail; where it fails, the exact optimum's own "
            "allocation (excess 0 by construction)"
        ),
    ),
    region=lambda mode: {
        "draws": _pick(mode, 16, 64, 512),
        "K": K_PAPER,
        "w": "softmax(R/0.1), R ~ U(0, 1)",
        "seed": 61,
        "N": _pick(mode, [16, 256], [16, 32, 64, 128, 256], [16, 32, 64, 128, 256]),
        "kappa → 0": 1e-8,
        "kappa → ∞": 1e8,
        "approach (reported, not judged)": {"kappa → 0": [1e-2, 1e-4, 1e-6],
                                            "kappa → ∞": [1e2, 1e4, 1e6]},
    },
)  # fmt: skip
def prop1_limits_search(region, control):
    if control:
        claimed = prop1_limits_search(region, False)
        if judge(CLAIMS["prop1-limits-search"].protocol, claimed).verdict == "fails":
            return _limits(region, "optimal")
        return _limits(region, "swapped")
    return _limits(region, "paper")


def _limits(region, variant: str) -> Measurement:
    draws = region["draws"]
    r, w = _uniform_draws(region["seed"], draws)
    values, labels, rows = [], [], []
    limits = {"κ → 0": "temperature_sampling", "κ → ∞": "beam_search"}
    if variant == "swapped":
        limits = {"κ → 0": "beam_search", "κ → ∞": "temperature_sampling"}
    approach = region["approach (reported, not judged)"]
    with jax.enable_x64(True):
        wj, rj = jnp.asarray(w), jnp.asarray(r)
        for n in region["N"]:
            for limit, method in limits.items():
                b = _limit_rule(method, n)(rj)
                key = "kappa → 0" if limit == "κ → 0" else "kappa → ∞"
                for kappa in [region[key], *approach[key]]:
                    opt = _optimal_batch(wj, n, float(kappa))
                    mine = opt if variant == "optimal" else b
                    lf_opt = np.asarray(_log_fail_batch(wj, opt, float(kappa)))
                    lf_m = np.asarray(_log_fail_batch(wj, mine, float(kappa)))
                    excess = float(np.expm1(np.minimum(lf_m - lf_opt, 700.0)).max())  # no overflow
                    moved = float(
                        (np.abs(np.asarray(mine) - np.asarray(opt)).sum(axis=1) / (2 * n)).mean()
                    )
                    judged = kappa == region[key]
                    label = f"{limit} ({method}), N={n}, κ={kappa:g}"
                    rows.append(
                        {"cell": label, "judged": judged, "max relative excess": excess,
                         "mean fraction of rollouts placed differently from the optimum": moved}
                    )  # fmt: skip
                    if judged:
                        values.append(excess)
                        labels.append(label)
    return Measurement(values, labels, draws, details={"cells": rows})
