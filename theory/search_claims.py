"""Claims about the whole multi-round search in the synthetic world (the engine, paired seeds):
whether Eq. 7's exact one-step optimum still beats REBASE over many rounds (§6's stated
limitation), and Table 1's latency ratio under a stated latency model (§4.3).

Both run through `theory.simulated`'s shared compiled search (the paper's methods plus the
optimum with the world's κ and a miscalibrated κ); for a seed, every method searches the same
problems with the same keys, so the differences are paired.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dora_jax import world as world_lib
from theory import simulated
from theory.core import Measurement, Protocol, claim, k_for

MARGIN = 0.02  # non-inferiority margin: 2 accuracy points (as the Pareto claim's)
FAMILY_ALPHA = 0.05  # family-wise error rate of the Monte Carlo verdicts in this module
MAX_ROUNDS = 12  # the rounds of the shared compiled search (as table1-flops and pareto)


def _pick(mode: str, fast, default, thorough):
    return {"fast": fast, "default": default, "thorough": thorough}[mode]


# --- the one-step optimum over the multi-round search ----------------------------------------


@claim(
    "optimal-multiround",
    statement=(
        "§6 (limitation): the analysis optimizes one allocation step (Eq. 7) in a low-confidence "
        "setting; the question is whether the exact one-step optimum, with the world's true κ, "
        "still beats REBASE over the multi-round search."
    ),
    source="§6, §3.1 Eq. 7, Prop. 1, Eq. 4",
    protocol=Protocol(
        quantity=(
            "per N: paired accuracy difference acc(optimal with the world's κ @N) − "
            "acc(REBASE@N) over the problems (weighted majority vote, same problems and keys)"
        ),
        tolerance=0.0,
        approximately=-MARGIN,
        sense="at-least",
        fwer=FAMILY_ALPHA,
        unit="accuracy",
        control=(
            f"a miscalibrated κ (the world's κ × {simulated.MISCALIBRATION:g}: the optimum "
            "then puts nearly every rollout on the top candidate)"
        ),
    ),
    region=lambda mode: {
        "world": "paper-like (alpha=3, kappa=15, within_cosine=0.998)",
        "N": [16, 64],
        "batch_problems": _pick(mode, 32, 64, 256),
        "seeds": _pick(mode, 8, 16, 32),
        "max_rounds": MAX_ROUNDS,
        "optimal": "dora_jax's 'optimal' rule, w = the PRM scores, κ = the world's (15)",
    },
)
def optimal_multiround(region, control):
    config = world_lib.preset("paper-like")
    mine = "optimal-miscalibrated" if control else "optimal"
    diffs: dict[int, list[np.ndarray]] = {n: [] for n in region["N"]}
    acc: dict[str, list[float]] = {}
    for seed in range(region["seeds"]):
        got = simulated.runs(
            config,
            [(m, n) for n in region["N"] for m in ("rebase", mine)],
            seed=seed,
            problems=region["batch_problems"],
            max_rounds=region["max_rounds"],
        )
        for n in region["N"]:
            a = got[mine, n]["per_problem_accuracy"].astype(np.float64)
            b = got["rebase", n]["per_problem_accuracy"].astype(np.float64)
            diffs[n].append(a - b)
            acc.setdefault(f"{mine}@{n}", []).append(float(a.mean()))
            acc.setdefault(f"rebase@{n}", []).append(float(b.mean()))
    values, ses, labels, rows = [], [], [], {}
    for n in region["N"]:
        d = np.concatenate(diffs[n])
        se = float(d.std(ddof=1) / math.sqrt(d.size))
        values.append(float(d.mean()))
        ses.append(se)
        labels.append(f"N={n}")
        rows[f"N={n}"] = {
            "difference": float(d.mean()),
            "se": se,
            "discordant pairs": int(np.sum(d != 0)),
            f"accuracy {mine}": float(np.mean(acc[f"{mine}@{n}"])),
            "accuracy rebase": float(np.mean(acc[f"rebase@{n}"])),
        }
    samples = region["seeds"] * region["batch_problems"]
    k = k_for(FAMILY_ALPHA, len(values))
    for n, v, se in zip(region["N"], values, ses, strict=True):
        # Problems for the k·SE interval to clear 0 if the effect is as estimated (the
        # 'holds' side; the protocol reports the samples for an inconclusive verdict itself).
        rows[f"N={n}"]["problems to show it better (if the effect is as estimated)"] = (
            math.ceil(samples * (k * se / v) ** 2) if v > 0 else None
        )
    return Measurement(values, labels, samples, se=ses, details={"by N": rows})


# --- Table 1's latency ratio under a stated latency model ------------------------------------

# Table 1 (§4.3, MATH500, Llama-3.2-1B): REBASE@256 490 s against DORA@64 124 s per problem.
TABLE1_LATENCY_RATIO = 490.0 / 124.0  # 3.95
# The latency model, stated (not fitted to Table 1): a model processes a token in 2·parameters
# FLOPs at THROUGHPUT FLOP/s (A100 bf16 dense peak 312 TFLOP/s at 30% utilisation), so the
# compute time is FLOPs / THROUGHPUT summed over policy, PRM and embedder; every search round
# adds a fixed ROUND_COST_S (generation launch, scoring call, host synchronisation).
THROUGHPUT = 312e12 * 0.3
ROUND_COST_S = 0.05


def latency_s(summary: dict[str, Any], *, round_cost_s: float = ROUND_COST_S) -> float:
    """Mean seconds per problem of a search under the stated model (the runner's summary)."""
    return summary["flops"]["total"] / THROUGHPUT + summary["rounds"] * round_cost_s


@claim(
    "table1-latency",
    statement=(
        "Table 1 (§4.3): DORA at a quarter of the budget (64 rollouts) is 3.95× faster than "
        "REBASE at the full budget (256): 490 s / 124 s per problem."
    ),
    source="§4.3 Table 1",
    protocol=Protocol(
        quantity=(
            "latency(REBASE@N) / latency(DORA@N/4) in a simulated search under the stated model "
            f"(FLOPs / {THROUGHPUT:.3g} FLOP/s + {ROUND_COST_S:g} s per round), relative to "
            "Table 1's 3.95; one ratio per seed, SE over seeds"
        ),
        tolerance=0.10,
        approximately=0.25,
        sense="magnitude",
        fwer=FAMILY_ALPHA,
        unit="relative",
        control=(
            "the same model without its per-round cost (latency ∝ FLOPs: the ratio is then the "
            "FLOPs ratio)"
        ),
    ),
    region=lambda mode: {
        "world": "paper-like preset",
        "N": _pick(mode, 16, 16, 32),
        "problems": _pick(mode, 32, 64, 256),
        "seeds": _pick(mode, 3, 4, 4),
        "max_rounds": MAX_ROUNDS,
        "latency model": {
            "throughput FLOP/s": THROUGHPUT,
            "per-round cost s": ROUND_COST_S,
            "models": "Llama-3.2-1B policy, Qwen2.5-Math-PRM-7B, BGE-M3",
        },
    },
)
def table1_latency(region, control):
    n = region["N"]
    quarter = n // 4
    cost = 0.0 if control else ROUND_COST_S
    ratios, parts = [], []
    for seed in range(region["seeds"]):
        reb, dora = simulated.table1_pair(region, seed, quarter)
        lat_reb, lat_dora = latency_s(reb, round_cost_s=cost), latency_s(dora, round_cost_s=cost)
        ratios.append(lat_reb / lat_dora)
        parts.append(
            (reb["flops"]["total"] / dora["flops"]["total"], reb["rounds"], dora["rounds"],
             lat_reb, lat_dora)
        )  # fmt: skip
    rel = np.asarray(ratios) / TABLE1_LATENCY_RATIO - 1.0
    p = np.asarray(parts).mean(axis=0)
    details = {
        "latency ratio per seed": ratios,
        "FLOPs ratio (the model without its per-round cost)": float(p[0]),
        "rounds REBASE@N, DORA@N/4": [float(p[1]), float(p[2])],
        # A fixed per-round cost pulls the latency ratio from the FLOPs ratio toward the rounds
        # ratio, so no value of it reaches 3.95 while the FLOPs ratio is below 3.95: Table 1's
        # latency needs a cost growing faster than FLOPs with N (e.g. per-path scoring calls).
        "rounds ratio (the model's limit as the per-round cost grows)": float(p[1] / p[2]),
        "latency s per problem REBASE@N, DORA@N/4": [float(p[3]), float(p[4])],
    }
    se = float(rel.std(ddof=1) / np.sqrt(rel.size))
    return Measurement([float(rel.mean())], [f"N={n}"], region["seeds"], se=[se], details=details)
