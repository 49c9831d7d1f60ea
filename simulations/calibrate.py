"""κ from rollout labels: the library side of `dora calibrate` and of `--kappa-from`.

The Beta model of the PRM (Eq. 6) has one reliability κ; the Bayes-optimal rules (`optimal`,
Eq. 7, and `bayes`) need it. This module gets labelled units — a partial solution with PRM score
w, m rollouts run from it to the end, c of them correct — from a JSONL file (`read_records`) or
by probing a synthetic world (`probe_world`), fits κ with NumPyro (`fit`, over
`dora_jax.calibration.fit_kappa`), saves the posterior (`write_result`), and hands the point
estimate to the rules that take κ (`load_kappa`, `with_kappa`).

    labels = read_records(Path("labels.jsonl"))
    done = fit(jax.random.key(1), labels, method="auto")
    write_result(Path("kappa.json"), done.result)
    rules = with_kappa(rules, load_kappa(Path("kappa.json")))

Every mistake in the input is one `CalibrateError` line.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from backends.files import atomic_write
from dora_jax import world as world_lib
from dora_jax.search import Rule

if TYPE_CHECKING:  # NumPyro loads on the first fit, not with the command line
    from dora_jax.calibration import KappaPosterior

__all__ = [
    "AUTO_NUTS_MAX_UNITS",
    "CalibrateError",
    "Calibration",
    "Labels",
    "choose_method",
    "exact_model",
    "fit",
    "fit_methods",
    "load_kappa",
    "probe_world",
    "read_records",
    "report",
    "seed_keys",
    "with_kappa",
    "write_result",
]

# `method="auto"` runs NUTS up to this many labelled units and SVI above. Both cost O(units) per
# gradient; NUTS (500 warmup + 1000 draws, 2 chains, several leapfrog steps per draw) takes many
# more gradients than SVI's 2000 steps but samples the exact posterior, which matters when few
# units leave κ uncertain; with many units κ is pinned down and the variational fit agrees.
# Measured with the defaults on a busy, shared 2-core CPU (rough; P × 16 units, m = 8, κ = 20):
#     2,000 units: NUTS 28 s, SVI 7 s, κ median 20.1 and 20.1
#    20,000 units: NUTS 948 s, SVI 75 s, κ median 19.6 and 19.7
# So on a CPU the threshold is generous (pass method="svi" sooner for large data). The value is
# the one `dora calibrate` has always used; lowering it would change its default output.
AUTO_NUTS_MAX_UNITS = 20_000

RECORD_FIELDS = ("problem", "score", "rollouts", "correct")
EMPTY_SCORE = 0.5  # the score of padding entries (masked; any value in (0, 1) would do)


class CalibrateError(ValueError):
    """A bad calibration input (one line)."""


@dataclasses.dataclass(frozen=True)
class Labels:
    """Labelled units in a [P, K] layout (P problems, K units each, padded and masked).

    `source` says where they came from (it is saved with the fit); `truth` is the probed world's
    κ, α and PRM mode (None for records from a file).
    """

    scores: np.ndarray  # Float[P, K], the PRM score w of each unit
    rollouts: np.ndarray  # Int[P, K], m: rollouts run from it to the end
    correct: np.ndarray  # Int[P, K], c: of which correct
    mask: np.ndarray  # Bool[P, K], a real unit (not padding)
    source: dict[str, Any]
    truth: dict[str, Any] | None = None

    @property
    def units(self) -> int:
        return int(np.asarray(self.mask).sum())


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A fitted κ: its posterior, the inference run, and the record that `write_result` saves."""

    posterior: KappaPosterior
    method: str  # "nuts" or "svi" (what "auto" chose)
    result: dict[str, Any]  # summary + samples, "kappa" (the point estimate), "units", "source"


def read_records(path: Path) -> Labels:
    """Labels from JSONL lines {"problem", "score", "rollouts", "correct"}, one unit each.

    Units are grouped by "problem" in file order; shorter problems are padded and masked.
    """
    if not path.is_file():
        raise CalibrateError(f"records file not found: {path}")
    by_problem: dict[str, list[tuple[float, int, int]]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise CalibrateError(f"{path} line {n} is not JSON") from None
        if not isinstance(row, dict):
            raise CalibrateError(f"{path} line {n} is not a JSON object")
        missing = [k for k in RECORD_FIELDS if k not in row]
        if missing:
            raise CalibrateError(f"{path} line {n} lacks {missing[0]!r}")
        try:
            unit = (float(row["score"]), int(row["rollouts"]), int(row["correct"]))
        except (TypeError, ValueError):
            raise CalibrateError(
                f"{path} line {n}: score must be a number, rollouts and correct integers"
            ) from None
        by_problem.setdefault(str(row["problem"]), []).append(unit)
    if not by_problem:
        raise CalibrateError(f"{path} has no records")
    width = max(len(v) for v in by_problem.values())
    shape = (len(by_problem), width)
    scores = np.full(shape, EMPTY_SCORE, np.float32)
    m, c, mask = np.zeros(shape, np.int32), np.zeros(shape, np.int32), np.zeros(shape, bool)
    for i, units in enumerate(by_problem.values()):
        for j, (w, r, k) in enumerate(units):
            scores[i, j], m[i, j], c[i, j], mask[i, j] = w, r, k, True
    return Labels(scores, m, c, mask, source={"records": str(path)})


def probe_world(
    key: PRNGKeyArray,
    preset: str,
    *,
    problems: int,
    candidates: int,
    depth: int,
    rollouts: int,
) -> Labels:
    """Labels from a synthetic world preset (`dora_jax.probe.probe` on P sampled problems).

    Args:
      key: splits into the problems' key and the probe's key.
      preset: a `dora_jax.world` preset name.
      problems: P ≥ 1 problems.
      candidates: K ≥ 1 candidates per problem.
      depth: steps before scoring (≥ 0).
      rollouts: m ≥ 1 rollouts per candidate.

    Returns:
      Labels with `truth` = the world's κ, α and PRM mode, and `source` = these arguments.
    """
    from dora_jax.probe import probe
    from dora_jax.search import SyntheticWorld

    try:
        config = world_lib.preset(preset)
    except ValueError as error:
        raise CalibrateError(str(error)) from None
    world = SyntheticWorld(config)
    k_problems, k_probe = jax.random.split(key)
    batch = jax.vmap(world.sample_problem)(jax.random.split(k_problems, problems))
    run = jax.jit(
        jax.vmap(
            lambda k, p: probe(k, p, world, candidates=candidates, depth=depth, rollouts=rollouts)
        )
    )
    r = run(jax.random.split(k_probe, problems), batch)
    scores, m, c, mask = (np.asarray(x) for x in (r.score, r.rollouts, r.correct, r.mask))
    source = {
        "preset": preset,
        "problems": problems,
        "candidates": candidates,
        "depth": depth,
        "rollouts": rollouts,
    }
    truth = {"kappa": config.kappa, "alpha": config.alpha, "prm_mode": config.prm_mode}
    return Labels(scores, m, c, mask, source=source, truth=truth)


def fit_methods() -> tuple[str, ...]:
    """What `fit` accepts as `method`: "auto" and the inference methods of `fit_kappa`."""
    from dora_jax import calibration as cal

    return ("auto", *cal.METHODS)


def choose_method(method: str, units: int) -> str:
    """The inference to run, "nuts" or "svi": `method`, or for "auto" by AUTO_NUTS_MAX_UNITS."""
    allowed = fit_methods()
    if method not in allowed:
        raise CalibrateError(f"unknown method {method!r}; choose one of {', '.join(allowed)}")
    if method != "auto":
        return method
    return "nuts" if units <= AUTO_NUTS_MAX_UNITS else "svi"


def fit(
    key: PRNGKeyArray,
    labels: Labels,
    *,
    method: str = "auto",
    calibration: str = "identity",
    pooling: str = "complete",
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 2,
    svi_steps: int = 2000,
) -> Calibration:
    """κ's posterior from `labels` (see `dora_jax.calibration.fit_kappa` for the arguments).

    `method` is "nuts", "svi" or "auto" (`choose_method`). The result record is the posterior
    summary with its samples, plus "kappa" (the point estimate `--kappa-from` reads), "units",
    "source" and, for a probed world, "world" (its true κ, α, PRM mode).
    """
    from dora_jax import calibration as cal

    chosen = choose_method(method, labels.units)
    arrays = (labels.scores, labels.rollouts, labels.correct, labels.mask)
    data = cal.Records(*(jax.numpy.asarray(x) for x in arrays))
    try:
        posterior = cal.fit_kappa(
            key,
            data,
            method=chosen,
            calibration=calibration,
            pooling=pooling,
            num_warmup=num_warmup,
            num_samples=num_samples,
            num_chains=num_chains,
            svi_steps=svi_steps,
        )
    except ValueError as error:
        raise CalibrateError(str(error).splitlines()[0]) from None
    result = cal.summary(posterior)
    result["kappa"] = cal.point_estimate(posterior)
    result["units"] = labels.units
    result["source"] = labels.source
    if labels.truth is not None:
        result["world"] = labels.truth
    return Calibration(posterior, chosen, result)


def report(result: dict[str, Any]) -> dict[str, Any]:
    """The result without the bulky parts (samples, the loss trace): what `--json` prints."""
    return {k: v for k, v in result.items() if k not in ("samples", "loss")}


def exact_model(truth: dict[str, Any]) -> bool:
    """Whether a probed world satisfies the fitted model exactly (so its κ should be recovered).

    Only with no redundancy (α = ∞: the m rollouts of a unit are independent given p) and a PRM
    that follows Eq. 6 (prm_mode "beta"); otherwise rollouts that share children over-disperse
    the counts and the fit measures an effective κ below the world's.
    """
    return truth["alpha"] == math.inf and truth["prm_mode"] == "beta"


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Writes the fit as JSON, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(result))


def load_kappa(path: Path) -> float:
    """The point estimate of κ saved by `write_result` (`dora calibrate --out`)."""
    if not path.is_file():
        raise CalibrateError(f"--kappa-from file not found: {path}")
    try:
        value = json.loads(path.read_text())["kappa"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise CalibrateError(f"{path} is not a `dora calibrate --out` file (no 'kappa')") from None
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise CalibrateError(f"{path}: kappa must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise CalibrateError(f"{path}: kappa must be finite, got {value!r}")
    return float(value)


def with_kappa(rules: Iterable[Rule], kappa: float) -> tuple[Rule, ...]:
    """Rules that take κ (optimal, bayes) get `kappa` unless they set it themselves.

    κ is rounded to 4 significant digits so that the rule's label stays short.
    """
    from dora_jax.api import RULES

    out: list[Rule] = []
    for rule in rules:
        hp = dict(rule.hyperparameters)
        if "kappa" in RULES[rule.method].defaults and "kappa" not in hp:
            rule = Rule.make(rule.method, **hp, kappa=float(f"{kappa:.4g}"))
        out.append(rule)
    return tuple(out)


def seed_keys(seed: int) -> tuple[PRNGKeyArray, PRNGKeyArray]:
    """The probe's and the fit's keys for a `dora calibrate --seed` (fixed: same seed, same κ)."""
    return jax.random.key(seed), jax.random.key(seed + 1)
