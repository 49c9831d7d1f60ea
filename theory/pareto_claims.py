"""The empirical Pareto claim (§4.3, Table 1), decided by a sequential design in the synthetic
world: DORA at a quarter of the budget against each baseline at the full budget.

Table 1's comparison is DORA@64 against the baselines@256: DORA is at least as accurate at a
quarter of the rollouts and fewer FLOPs. Here that is a hypothesis tested per (world, baseline):
the paired per-problem accuracy difference d = acc(DORA@N/4) − acc(baseline@N) on the same
problems and search keys (`dora_jax.montecarlo`'s pairing), judged non-inferior when d ≥ −MARGIN.

Design (anytime-valid by a union bound): problems arrive in batches of a fresh seed each, at
looks after a doubling number of batches (the region's `schedule`, cumulative: 1, 2, 4, 8, …);
at each look every undecided comparison's interval mean ± k·SE is checked, with k Bonferroni
over all comparisons and LOOKS looks (k = z(1 − α/(2·m·LOOKS))), so stopping early, or a mode
that takes fewer looks than LOOKS, never inflates the family-wise error rate α. A comparison is
decided when its interval lies entirely above −MARGIN (non-inferior) or entirely below it
(inferior), and then stops sampling: later batches run DORA@N/4 and the undecided baselines
only. Sampling stops when every comparison is decided or the schedule ends. The protocol then
judges the final intervals with the same k: "holds" (all non-inferior), "fails" (some
inferior), else "inconclusive"; each undecided comparison reports the problems that would
decide it if its effect and spread are as estimated.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from dora_jax import world as world_lib
from dora_jax.montecarlo import PAPER_METHODS
from theory import simulated
from theory.core import Measurement, Protocol, claim, k_for

MARGIN = 0.02  # non-inferiority margin: 2 accuracy points
FAMILY_ALPHA = 0.05  # family-wise error rate over all comparisons and looks
LOOKS = 8  # the most looks any mode takes (k is Bonferroni over them)
REFERENCE = "dora"
BASELINES = tuple(m for m in PAPER_METHODS if m != REFERENCE)

# Worlds: where the paper's assumptions hold (redundant directions, hard-ish clusters) and
# where they break (no redundancy: DORA = REBASE; paraphrase-level embeddings).
WORLDS: dict[str, dict[str, float]] = {
    "paper-like (alpha=3, kappa=15, within_cosine=0.998)": {},
    "redundant (alpha=1)": {"alpha": 1.0},
    "no-redundancy (alpha=inf)": {"alpha": math.inf},
    "reliable-prm (kappa=200)": {"kappa": 200.0},
    "paraphrase (within_cosine=0.9)": {"within_cosine": 0.9},
}


def _region(mode: str) -> dict[str, Any]:
    names = {
        "fast": ("paper-like (alpha=3, kappa=15, within_cosine=0.998)",),
        "default": ("paper-like (alpha=3, kappa=15, within_cosine=0.998)", "redundant (alpha=1)"),
        "thorough": tuple(WORLDS),
    }[mode]
    batch = {"fast": 32, "default": 64, "thorough": 256}[mode]
    schedule = {"fast": [1, 2, 4], "default": [1, 2, 4], "thorough": [1, 2, 4, 8, 16, 32, 64, 128]}[
        mode
    ]
    return {
        "worlds": {n: {k: str(v) for k, v in WORLDS[n].items()} for n in names},
        "N": {"fast": 16, "default": 16, "thorough": 32}[mode],
        "DORA budgets": "N/4 (judged), N (reported, first batch)",
        "baselines": list(BASELINES),
        "batch_problems": batch,
        "schedule (cumulative batches at each look)": schedule,
        "max_rounds": 12,
    }


def _prepare(region: dict[str, Any]) -> None:
    n = region["N"]
    for name in region["worlds"]:
        config = dataclasses.replace(world_lib.preset("paper-like"), **WORLDS[name])
        simulated.prefetch(config, [n, n // 4], region["batch_problems"], region["max_rounds"])


def _decided(d: np.ndarray, k: float) -> bool:
    se = d.std(ddof=1) / math.sqrt(d.size)
    return bool(d.mean() - k * se >= -MARGIN or d.mean() + k * se < -MARGIN)


def _sequential(region: dict[str, Any], control: bool) -> dict[str, Any]:
    n = region["N"]
    quarter = n // 4
    schedule = region["schedule (cumulative batches at each look)"]
    if len(schedule) > LOOKS:
        raise ValueError(f"a schedule of {len(schedule)} looks exceeds LOOKS = {LOOKS}")
    m_total = len(region["worlds"]) * len(BASELINES)
    k = k_for(FAMILY_ALPHA / LOOKS, m_total)
    batch = region["batch_problems"]
    worlds: dict[str, Any] = {}
    for name in region["worlds"]:
        config = dataclasses.replace(world_lib.preset("paper-like"), **WORLDS[name])
        start = time.perf_counter()
        diffs: dict[str, list[np.ndarray]] = {b: [] for b in BASELINES}
        flops: dict[str, list[float]] = {key: [] for key in (*BASELINES, "dora@N/4", "dora@N")}
        same_budget: dict[str, np.ndarray] = {}
        acc_full = np.zeros(0)
        undecided, decided_at = set(BASELINES), {}
        seeds_run, looks = 0, 0
        for look, upto in enumerate(schedule):
            active = sorted(undecided)
            wanted = [(REFERENCE, quarter), *((b, n) for b in active)]
            # the look's batches start now, in the background
            simulated.submit(config, wanted, seeds=range(seeds_run, upto), problems=batch,
                             max_rounds=region["max_rounds"])  # fmt: skip
            if seeds_run == 0:
                simulated.submit(config, [(REFERENCE, n)], seeds=[0], problems=batch,
                                 max_rounds=region["max_rounds"])  # fmt: skip
            for seed in range(seeds_run, upto):
                wanted = [(REFERENCE, quarter), *((b, n) for b in active)]
                if seed == 0:
                    wanted.append((REFERENCE, n))
                got = simulated.runs(
                    config, wanted, seed=seed, problems=batch, max_rounds=region["max_rounds"]
                )
                dora_q = got[REFERENCE, quarter]
                flops["dora@N/4"].append(dora_q["flops"]["total"])
                if seed == 0:
                    dora_n = got[REFERENCE, n]
                    flops["dora@N"].append(dora_n["flops"]["total"])
                    acc_full = dora_n["per_problem_accuracy"].astype(np.float64)
                for b in active:
                    base = got[b, n]
                    base_acc = base["per_problem_accuracy"].astype(np.float64)
                    if seed == 0:
                        same_budget[b] = acc_full - base_acc
                    flops[b].append(base["flops"]["total"])
                    mine = (base if control else dora_q)["per_problem_accuracy"].astype(np.float64)
                    diffs[b].append(mine - base_acc)
            seeds_run, looks = upto, look + 1
            for b in sorted(undecided):
                if _decided(np.concatenate(diffs[b]), k):
                    undecided.discard(b)
                    decided_at[b] = look + 1
            if not undecided:
                break
        rows = {}
        for b in BASELINES:
            d = np.concatenate(diffs[b])
            se = float(d.std(ddof=1) / math.sqrt(d.size))
            mean = float(d.mean())
            gap = abs(mean + MARGIN)
            rows[b] = {
                "difference": mean,
                "se": se,
                "interval": [mean - k * se, mean + k * se],
                "problems": int(d.size),
                "decided": (
                    "undecided"
                    if b in undecided
                    else ("non-inferior" if mean - k * se >= -MARGIN else "inferior")
                ),
                "look decided": decided_at.get(b),
                # n·(k·SE/|d + margin|)²: the problems at which the interval would clear the
                # margin if the effect and spread are as estimated (None: decided).
                "problems to decide": (
                    None
                    if b not in undecided
                    else (math.ceil(d.size * (k * se / gap) ** 2) if gap > 0 else None)
                ),
                "reported: acc(DORA@N) − acc(baseline@N), first batch": float(
                    same_budget[b].mean()
                ),
                "FLOPs(DORA@N/4) / FLOPs(baseline@N)": float(
                    np.mean(flops["dora@N/4"]) / np.mean(flops[b])
                ),
            }
        worlds[name] = {
            "looks": looks,
            "batches": seeds_run,
            "problems": seeds_run * batch,
            "comparisons": rows,
            "accuracy DORA@N (first batch)": float(acc_full.mean()),
            "wall_s": time.perf_counter() - start,
        }
    return {"k": k, "worlds": worlds}


@claim(
    "pareto",
    statement=(
        "Table 1 (§4.3): DORA at a quarter of the rollouts (64) is at least as accurate as "
        "temperature sampling, beam search, DVTS and REBASE at the full budget (256), at "
        "fewer FLOPs (an empirical claim, tested as a hypothesis in the synthetic world)."
    ),
    source="§4.3 Table 1, §4.2 Fig. 3",
    protocol=Protocol(
        quantity=(
            "per (world, baseline): paired accuracy difference acc(DORA@N/4) − "
            "acc(baseline@N) over the problems sampled (batches until decided or the schedule "
            "ends)"
        ),
        tolerance=-MARGIN,
        sense="at-least",
        fwer=FAMILY_ALPHA,
        looks=LOOKS,
        unit="accuracy",
        control="each baseline at N in place of DORA@N/4 (a tie by construction: d ≡ 0)",
    ),
    region=_region,
    prepare=_prepare,
)
def pareto(region, control):
    found = _sequential(region, control)
    values, ses, labels = [], [], []
    for name, world in found["worlds"].items():
        for b, row in world["comparisons"].items():
            values.append(row["difference"])
            ses.append(row["se"])
            labels.append(f"{name}: DORA@N/4 vs {b}@N")
    # The undecided comparisons ran the whole schedule: the most problems of any comparison.
    samples = max(row["problems"] for w in found["worlds"].values()
                  for row in w["comparisons"].values())  # fmt: skip
    return Measurement(values, labels, samples, se=ses, details=found)
