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


# Worlds (dora_jax.world presets): where the one-step optimum's assumptions hold (Assumption 1:
# every candidate its own direction; Eq. 6 exact), the paper-like world (Eq. 6 exact, copies of a
# direction share p: Assumption 1 broken by redundancy), and a PRM outside Eq. 6 (logit noise:
# the optimum's Beta model is false).
MULTIROUND_WORLDS: dict[str, str] = {
    "independent": "assumptions hold: no redundancy (alpha=inf), Eq. 6 exact (kappa=15)",
    "paper-like": "Eq. 6 exact (kappa=15), redundant directions (alpha=3): Assumption 1 broken",
    "noisy-prm": "PRM with logit noise (sigma=1): Eq. 6 broken",
}


def _prepare_multiround(region: dict[str, Any]) -> None:
    for world in region["worlds"]:
        simulated.prefetch(world_lib.preset(world), region["N"], region["batch_problems"],
                           region["max_rounds"])  # fmt: skip


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
            "per (world, N): paired accuracy difference acc(optimal with the world's κ @N) − "
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
    # Bonferroni over worlds × N: the family-wise error rate holds across the worlds.
    region=lambda mode: {
        # The test suite's region: the paper-like world only, at the power its control needs.
        "worlds": (
            {"paper-like": MULTIROUND_WORLDS["paper-like"]}
            if mode == "fast"
            else dict(MULTIROUND_WORLDS)
        ),
        "N": [16, 64],
        "batch_problems": _pick(mode, 32, 64, 256),
        "seeds": _pick(mode, 8, 12, 32),
        "max_rounds": MAX_ROUNDS,
        "optimal": "dora_jax's 'optimal' rule, w = the PRM scores, κ = the world's (15)",
    },
    prepare=_prepare_multiround,
)
def optimal_multiround(region, control):
    mine = "optimal-miscalibrated" if control else "optimal"
    values, ses, labels, rows = [], [], [], {}
    samples = region["seeds"] * region["batch_problems"]
    k = k_for(FAMILY_ALPHA, len(region["worlds"]) * len(region["N"]))
    wanted = [(m, n) for n in region["N"] for m in ("rebase", mine)]
    seeds, batch, rounds = range(region["seeds"]), region["batch_problems"], region["max_rounds"]
    for world in region["worlds"]:  # every world's runs start now, in the background
        config = world_lib.preset(world)
        simulated.submit(config, wanted, seeds=seeds, problems=batch, max_rounds=rounds)
    for world in region["worlds"]:
        config = world_lib.preset(world)
        diffs: dict[int, list[np.ndarray]] = {n: [] for n in region["N"]}
        acc: dict[str, list[float]] = {}
        for seed in range(region["seeds"]):
            got = simulated.runs(
                config,
                wanted,
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
        for n in region["N"]:
            d = np.concatenate(diffs[n])
            v, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))
            label = f"{world}, N={n}"
            values.append(v)
            ses.append(se)
            labels.append(label)
            rows[label] = {
                "difference": v,
                "se": se,
                "discordant pairs": int(np.sum(d != 0)),
                f"accuracy {mine}": float(np.mean(acc[f"{mine}@{n}"])),
                "accuracy rebase": float(np.mean(acc[f"rebase@{n}"])),
                # Problems for the k·SE interval to clear 0 if the effect is as estimated (the
                # 'holds' side; the protocol reports the samples for an inconclusive verdict).
                "problems to show it better (if the effect is as estimated)": (
                    math.ceil(samples * (k * se / v) ** 2) if v > 0 else None
                ),
            }
    return Measurement(values, labels, samples, se=ses, details={"by world and N": rows})


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
            "Table 1's 3.95: the ratio of mean latencies per problem over every problem of every "
            "seed (paired), SE by the delta method over problems"
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
    # The problems of table1-flops (the same runs): sized there for k·SE ≤ half the tolerance.
    region=lambda mode: {
        "world": "paper-like preset",
        "N": _pick(mode, 16, 16, 32),
        "problems": _pick(mode, 32, 64, 256),
        "seeds": _pick(mode, 3, 20, 8),
        "max_rounds": MAX_ROUNDS,
        "latency model": {
            "throughput FLOP/s": THROUGHPUT,
            "per-round cost s": ROUND_COST_S,
            "models": "Llama-3.2-1B policy, Qwen2.5-Math-PRM-7B, BGE-M3",
        },
    },
    prepare=simulated.prepare_table1,
)
def table1_latency(region, control):
    n = region["N"]
    quarter = n // 4
    cost = 0.0 if control else ROUND_COST_S
    lat = {"rebase": [], "dora": []}
    flops = {"rebase": [], "dora": []}
    rounds = {"rebase": [], "dora": []}
    per_seed = []
    for seed in range(region["seeds"]):
        reb, dora = simulated.table1_pair(region, seed, quarter)
        for name, summary in (("rebase", reb), ("dora", dora)):
            f, r = summary["per_problem_flops"], summary["per_problem_rounds"]
            lat[name].append(f / THROUGHPUT + r * cost)
            flops[name].append(f)
            rounds[name].append(r)
        per_seed.append(latency_s(reb, round_cost_s=cost) / latency_s(dora, round_cost_s=cost))
    cat = {key: {m: np.concatenate(v) for m, v in d.items()}
           for key, d in (("lat", lat), ("flops", flops), ("rounds", rounds))}  # fmt: skip
    ratio, se = simulated.ratio_of_means(cat["lat"]["rebase"], cat["lat"]["dora"])
    details = {
        "latency ratio (ratio of means)": ratio,
        "latency ratio per seed (reported)": per_seed,
        "FLOPs ratio (the model without its per-round cost)": float(
            cat["flops"]["rebase"].mean() / cat["flops"]["dora"].mean()
        ),
        "rounds REBASE@N, DORA@N/4": [
            float(cat["rounds"]["rebase"].mean()), float(cat["rounds"]["dora"].mean())
        ],
        # A fixed per-round cost pulls the latency ratio from the FLOPs ratio toward the rounds
        # ratio, so no value of it reaches 3.95 while the FLOPs ratio is below 3.95: Table 1's
        # latency needs a cost growing faster than FLOPs with N (e.g. per-path scoring calls).
        "rounds ratio (the model's limit as the per-round cost grows)": float(
            cat["rounds"]["rebase"].mean() / cat["rounds"]["dora"].mean()
        ),
        "latency s per problem REBASE@N, DORA@N/4": [
            float(cat["lat"]["rebase"].mean()), float(cat["lat"]["dora"].mean())
        ],
    }  # fmt: skip
    samples = region["seeds"] * region["problems"]
    return Measurement(
        [ratio / TABLE1_LATENCY_RATIO - 1.0], [f"N={n}"], samples,
        se=[se / TABLE1_LATENCY_RATIO], details=details,
    )  # fmt: skip
