"""A first fitted world (issue 13, item 3): the difficulty prior fitted to ONE cell's baselines,
then DORA's curve predicted, held out.

What is fitted. The synthetic world's difficulty prior p(root) ~ Beta(a, b) (`WorldConfig`'s
difficulty_a, difficulty_b; every other knob stays at the "paper-like" values), to the paper's
Fig. 3a accuracies of the four BASELINES (temperature sampling, beam search, DVTS, REBASE) at
N = 16…256 for one model × dataset (default Llama-3.2-1B on MATH500: 20 cells). DORA's five
values are not used; they are predicted.

Why only (a, b). p(root) enters the world only through `sample_problem`, so one set of searches
on problems with p(root) drawn from a wide PROPOSAL q serves every prior by importance weighting
(self-normalised: accuracy_θ = Σ w_i y_i / Σ w_i, w_i = Beta(p_i; a, b) / q(p_i)). The same
problems and search keys serve every θ (common random numbers), so the objective is a smooth
function of θ and the optimizer needs no further simulation. The other knobs (κ, redundancy α,
token model, …) are static arguments of the compiled search: fitting them needs one compile per
value, which is what a grid over κ would cost next.

Objective: the mean squared error, in accuracy points², over the 20 baseline cells (the paper's
values are read to ±0.05 points, far below our simulation noise, so the cells are weighted
equally). Optimizer: Nelder–Mead on (log(a − A_MIN), log(b − A_MIN)), A_MIN = the proposal's
Beta tail parameter, so that the weights stay bounded near p = 0 and p = 1. Uncertainty: a
bootstrap over the simulated problems (resample them, refit): it gives intervals for (a, b) and
for the held-out DORA prediction that carry the simulation's noise (not the paper's run-to-run
noise, which Fig. 3 does not report).

Run: `python -m papers.fit [--problems P] [--seed S]` prints the fit and the prediction.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from papers import data

BASELINES = ("temperature_sampling", "beam_search", "dvts", "rebase")
HELD_OUT = "dora"
# The proposal q of p(root): half uniform, half Beta(A_MIN, A_MIN) (mass at both ends).
A_MIN = 0.1
UNIFORM_SHARE = 0.5
START = (0.4, 0.8)  # the "paper-like" prior
BOOTSTRAP_DRAWS = 200
P_CLIP = 1e-6  # the world's clip of probabilities


@dataclasses.dataclass(frozen=True)
class Simulation:
    """Outcomes of searches on problems with p(root) drawn from the proposal.

    p_root: [P]; outcomes: {method: [B, P] 0/1 accuracy}, budgets: the B values of N;
    searches: how many (problem, method, N) searches were run.
    """

    p_root: np.ndarray
    outcomes: Mapping[str, np.ndarray]
    budgets: tuple[int, ...]
    searches: int


@dataclasses.dataclass(frozen=True)
class Fit:
    """The fitted prior: a, b, the objective (mean squared error, points²), the effective sample
    size of the weights at the optimum, and the optimizer's function evaluations."""

    a: float
    b: float
    mse: float
    ess: float
    evaluations: int


def proposal_pdf(p: np.ndarray) -> np.ndarray:
    """q(p) of the module docstring."""
    return UNIFORM_SHARE + (1 - UNIFORM_SHARE) * stats.beta.pdf(p, A_MIN, A_MIN)


def proposal_sample(seed: int, count: int) -> np.ndarray:
    """[count] draws from q (numpy generator seeded with `seed`), clipped as the world clips."""
    rng = np.random.default_rng(seed)
    uniform = rng.random(count) < UNIFORM_SHARE
    p = np.where(uniform, rng.random(count), rng.beta(A_MIN, A_MIN, count))
    return np.clip(p, P_CLIP, 1 - P_CLIP)


def weights(p: np.ndarray, a: float, b: float) -> np.ndarray:
    """Self-normalised importance weights [P] of the prior Beta(a, b) against q."""
    w = stats.beta.pdf(p, a, b) / proposal_pdf(p)
    return w / w.sum()


def predict(sim: Simulation, method: str, a: float, b: float, rows=None) -> np.ndarray:
    """[B] accuracy (%) of `method` per N under the prior Beta(a, b); `rows`: problem indices
    (a bootstrap resample), default all."""
    idx = np.arange(len(sim.p_root)) if rows is None else rows
    w = weights(sim.p_root[idx], a, b)
    return 100.0 * sim.outcomes[method][:, idx] @ w


def paper_curves(
    model: str = "llama-3.2-1b", dataset: str = "math500", budgets: Sequence[int] = data.BUDGETS
) -> dict[str, np.ndarray]:
    """Fig. 3a accuracy (%) per method at `budgets`, from `papers.data`."""
    out: dict[str, list[float]] = {}
    values = {
        (r.method, r.budget): r.value
        for r in data.fig3()
        if (r.metric, r.model, r.dataset) == ("accuracy", model, dataset)
    }
    for method in data.METHODS:
        out[method] = [values[(method, n)] for n in budgets]
    return {k: np.asarray(v) for k, v in out.items()}


def _theta(x: np.ndarray) -> tuple[float, float]:
    return A_MIN + math.exp(x[0]), A_MIN + math.exp(x[1])


def mse(sim: Simulation, target: Mapping[str, np.ndarray], a: float, b: float, rows=None):
    """The objective: mean squared error (points²) over the baseline cells."""
    errors = [predict(sim, m, a, b, rows) - target[m] for m in BASELINES]
    return float(np.mean(np.square(errors)))


def fit(sim: Simulation, target: Mapping[str, np.ndarray], rows=None, start=START) -> Fit:
    """Nelder–Mead over (a, b) from `start` (module docstring)."""
    x0 = np.log(np.maximum(np.asarray(start, np.float64) - A_MIN, 1e-3))
    result = optimize.minimize(
        lambda x: mse(sim, target, *_theta(x), rows),
        x0,
        method="Nelder-Mead",
        options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000},
    )
    a, b = _theta(result.x)
    idx = np.arange(len(sim.p_root)) if rows is None else rows
    w = weights(sim.p_root[idx], a, b)
    return Fit(a, b, float(result.fun), float(1.0 / np.sum(w**2)), int(result.nfev))


def bootstrap(
    sim: Simulation, target: Mapping[str, np.ndarray], best: Fit, *, seed: int = 0, draws=200
) -> dict[str, np.ndarray]:
    """Refits on `draws` resamples of the problems; returns the draws of a, b and of the
    held-out DORA prediction [draws, B]."""
    rng = np.random.default_rng(seed)
    a, b, dora = [], [], []
    for _ in range(draws):
        rows = rng.integers(0, len(sim.p_root), len(sim.p_root))
        f = fit(sim, target, rows, start=(best.a, best.b))
        a.append(f.a)
        b.append(f.b)
        dora.append(predict(sim, HELD_OUT, f.a, f.b, rows))
    return {"a": np.asarray(a), "b": np.asarray(b), "dora": np.asarray(dora)}


def simulate(
    seed: int,
    *,
    problems: int,
    budgets: Sequence[int] = data.BUDGETS,
    methods: Sequence[str] = (*BASELINES, HELD_OUT),
    max_rounds: int | None = None,
) -> Simulation:
    """The searches: `problems` problems of the "paper-like" world with p(root) replaced by
    draws from q, every method at every N, paired (same problems and keys for all)."""
    import jax
    import jax.numpy as jnp

    from dora_jax.search import MAX_ROUNDS
    from dora_jax.world import Problem
    from simulations import runner
    from simulations import spec as spec_lib

    spec = spec_lib.build_spec(
        world="paper-like",
        methods=list(methods),
        budgets=list(budgets),
        problems=problems,
        max_rounds=max_rounds or MAX_ROUNDS,
    )
    sampled, keys = runner.make_batch(spec, seed, problems)
    p_root = proposal_sample(seed, problems)
    batch = (Problem(key=sampled.key, p_root=jnp.asarray(p_root, jnp.float32)), keys)
    compiled: dict[int, Any] = {}
    outcomes = {m: np.zeros((len(spec.budgets), problems)) for m in methods}
    for j, budget in enumerate(spec.budgets):
        slots = runner.slots_for(budget)
        if slots not in compiled:
            compiled[slots] = runner.compile_search(spec, slots, batch)
        for index, rule in enumerate(spec.rules):
            result = jax.block_until_ready(
                compiled[slots](keys, batch[0], jnp.int32(index), jnp.int32(budget))
            )
            outcomes[rule.label][j] = np.asarray(result.accuracy, np.float64)
    return Simulation(
        p_root=np.asarray(batch[0].p_root, np.float64),
        outcomes=outcomes,
        budgets=tuple(spec.budgets),
        searches=problems * len(methods) * len(spec.budgets),
    )


def report(sim: Simulation, target: Mapping[str, np.ndarray], *, seed: int, draws: int) -> str:
    """The fit, its bootstrap intervals and the held-out DORA prediction, as text."""
    best = fit(sim, target)
    boot = bootstrap(sim, target, best, seed=seed, draws=draws)
    lo_a, hi_a = np.quantile(boot["a"], [0.025, 0.975])
    lo_b, hi_b = np.quantile(boot["b"], [0.025, 0.975])
    mean = best.a / (best.a + best.b)
    lines = [
        f"fitted p(root) ~ Beta(a, b) to the paper's {', '.join(BASELINES)} accuracy at "
        f"N = {', '.join(map(str, sim.budgets))} (Fig. 3a, {len(BASELINES) * len(sim.budgets)} "
        "cells; other knobs: paper-like)",
        f"simulations: {sim.searches} searches ({len(sim.p_root)} problems, p(root) from the "
        f"proposal, reused for every θ by importance weighting); {best.evaluations} objective "
        f"evaluations; effective sample size at the optimum {best.ess:.0f}",
        f"a = {best.a:.3f} [{lo_a:.3f}, {hi_a:.3f}], b = {best.b:.3f} [{lo_b:.3f}, {hi_b:.3f}] "
        f"(95% bootstrap over problems, {draws} refits); prior mean {mean:.3f}",
        f"objective: RMS error over the baseline cells {math.sqrt(best.mse):.2f} points",
        *(
            f"note: {name} = {value:.3f} sits at the bound {A_MIN} the proposal allows: the "
            "curves ask for more mass at that end than this proposal can weight"
            for name, value in (("a", best.a), ("b", best.b))
            if value < A_MIN * 1.05
        ),
        "",
        f"{'method':<22}{'N':>5}{'fitted':>9}{'paper':>8}{'fitted−paper':>14}",
    ]
    for m in BASELINES:
        y = predict(sim, m, best.a, best.b)
        for j, n in enumerate(sim.budgets):
            lines.append(
                f"{m:<22}{n:>5}{y[j]:>9.2f}{target[m][j]:>8.2f}{y[j] - target[m][j]:>+14.2f}"
            )
    lines += ["", "held-out prediction of DORA (not used in the fit):"]
    lines.append(f"{'N':>5}{'predicted':>11}{'95% interval':>19}{'paper':>8}{'error':>8}  inside")
    dora = predict(sim, HELD_OUT, best.a, best.b)
    lo, hi = np.quantile(boot["dora"], [0.025, 0.975], axis=0)
    for j, n in enumerate(sim.budgets):
        paper = target[HELD_OUT][j]
        inside = "yes" if lo[j] <= paper <= hi[j] else "no"
        lines.append(
            f"{n:>5}{dora[j]:>11.2f}   [{lo[j]:>6.2f}, {hi[j]:>6.2f}]{paper:>8.2f}"
            f"{dora[j] - paper:>+8.2f}  {inside}"
        )
    rebase = predict(sim, "rebase", best.a, best.b)
    gap = dora - rebase
    paper_gap = target[HELD_OUT] - target["rebase"]
    lines.append(
        "DORA − REBASE in the fitted world: "
        + ", ".join(f"{g:+.2f}" for g in gap)
        + " points; the paper's: "
        + ", ".join(f"{g:+.2f}" for g in paper_gap)
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m papers.fit", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--problems", type=int, default=100, help="P (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="problems and keys (default 0)")
    parser.add_argument("--draws", type=int, default=BOOTSTRAP_DRAWS, help="bootstrap refits")
    args = parser.parse_args(argv)
    if args.problems < 2 or args.draws < 1 or args.seed < 0:
        print("papers.fit: error: --problems >= 2, --draws >= 1, --seed >= 0", file=sys.stderr)
        return 2
    sim = simulate(args.seed, problems=args.problems)
    print(report(sim, paper_curves(budgets=sim.budgets), seed=args.seed, draws=args.draws))
    return 0


if __name__ == "__main__":
    sys.exit(main())
