"""Do PRM traps explain why the paper's guided searches flatten with N on MATH500?

The fitted MATH500 worlds (`papers.fit`) keep gaining accuracy up to N = 256 where the paper's
beam search, DVTS and REBASE flatten after N = 64 (fitted REBASE for Llama-1B: 65.7 → 82.5, the
paper's 61.2 → 67.6). A candidate mechanism is a PRM that is confidently wrong on some directions:
`dora_jax.world`'s traps (``trap_rate``, ``trap_score``): hopeless subtrees of one wrong answer
with high PRM scores, which a search finds more of the more it explores.

The check, on one cell: at the cell's fitted grid point (label_keep, κ, α of its preset), one
simulation per trap rate in `RATES` (0 is the control: the world as fitted), each with
`papers.fit`'s proposal, problems and keys (`fit.cached_simulate`, seed `fit.COARSE_SEED`, the
same problems for every rate), and the difficulty prior (a, b) refitted by `fit.best_prior` to the
baseline curves. Reported per rate: χ² over the baselines' values, the guided baselines' excess
over the paper (ours − paper, points, mean of beam search, DVTS and REBASE at each N), and the
held-out DORA's error at each N. Declared before measuring: traps "remove the excess" at a rate
whose guided-baseline excess at N = 256 is within ±2 points and whose χ² is below the control's.

Run: `python -m papers.traps --out papers/fits` (about 4 simulations of 192 problems).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dora_jax.paper_worlds import PAPER_WORLDS
from dora_jax.world import WorldConfig
from papers import fit

CELL = ("llama-3.2-1b", "math500")
RATES = (0.0, 0.001, 0.003, 0.01)
GUIDED = ("beam_search", "dvts", "rebase")
EXCESS_TOLERANCE = 2.0  # points, at N = 256 (declared above)


TRAP_SCORE = WorldConfig().trap_score


def knobs_of(
    cell: tuple[str, str], rate: float, trap_score: float = TRAP_SCORE
) -> dict[str, float]:
    """The cell's fitted grid point (its preset's label_keep, κ, α) with `rate` traps."""
    preset = PAPER_WORLDS[fit.preset_name(*cell)]
    knobs = {name: float(preset[name]) for name in fit.GRID}
    if rate == 0:
        return knobs
    return {
        **knobs,
        "trap_rate": rate,
        **({} if trap_score == TRAP_SCORE else {"trap_score": trap_score}),
    }


def check(
    cell: tuple[str, str] = CELL,
    rates: Sequence[float] = RATES,
    *,
    problems: int = fit.COARSE_PROBLEMS,
    trap_score: float = TRAP_SCORE,
    cache: Path | None = None,
    progress=None,
) -> dict[str, Any]:
    """One simulation per trap rate, (a, b) refitted on each; the numbers of the docstring."""
    tgt = fit.target(*cell)
    k = fit.METHODS.index
    rows = []
    for rate in rates:
        start = time.perf_counter()
        sim = fit.cached_simulate(
            cache, fit.COARSE_SEED, problems=problems, knobs=knobs_of(cell, rate, trap_score)
        )
        prior = fit.best_prior(sim, tgt)
        pred = fit.predict(sim, prior.a, prior.b)
        guided = [k(m) for m in GUIDED]
        excess = (pred.accuracy[guided] - tgt.accuracy[guided]).mean(axis=0)
        dora = pred.accuracy[k(fit.HELD_OUT)] - tgt.accuracy[k(fit.HELD_OUT)]
        rows.append(
            {
                "trap_rate": rate,
                "difficulty_a": prior.a,
                "difficulty_b": prior.b,
                "chi2": prior.chi2,
                "terms": prior.terms,
                "guided_excess": excess.tolist(),
                "dora_error": dora.tolist(),
                "rebase": pred.accuracy[k("rebase")].tolist(),
                "seconds": time.perf_counter() - start,
            }
        )
        if progress:
            progress(f"trap_rate {rate}: χ² {prior.chi2:.0f}, excess {np.round(excess, 1)}")
    control = rows[0]
    removes = [
        r["trap_rate"]
        for r in rows[1:]
        if abs(r["guided_excess"][-1]) <= EXCESS_TOLERANCE and r["chi2"] < control["chi2"]
    ]
    return {
        "cell": list(cell),
        "knobs": knobs_of(cell, 0.0),
        "trap_score": trap_score,
        "problems": problems,
        "budgets": list(fit.data.BUDGETS),
        "paper_rebase": tgt.accuracy[k("rebase")].tolist(),
        "rows": rows,
        "tolerance": EXCESS_TOLERANCE,
        "removes_excess_at": removes,
    }


def format_check(result: dict[str, Any]) -> str:
    budgets = ", ".join(str(b) for b in result["budgets"])
    lines = [
        f"{result['cell'][0]} × {result['cell'][1]}, knobs {result['knobs']}, trap_score "
        f"{result['trap_score']}, {result['problems']} problems; N = {budgets}",
        f"paper REBASE: {', '.join(f'{v:.1f}' for v in result['paper_rebase'])}",
        f"{'trap_rate':>10}{'a':>7}{'b':>7}{'χ²':>8}  guided excess (points)"
        f"{'':>14}DORA error (points){'':>12}our REBASE",
    ]
    for r in result["rows"]:
        lines.append(
            f"{r['trap_rate']:>10g}{r['difficulty_a']:>7.2f}{r['difficulty_b']:>7.2f}"
            f"{r['chi2']:>8.0f}  "
            + " ".join(f"{v:+5.1f}" for v in r["guided_excess"])
            + "   "
            + " ".join(f"{v:+5.1f}" for v in r["dora_error"])
            + "   "
            + " ".join(f"{v:4.1f}" for v in r["rebase"])
        )
    found = result["removes_excess_at"]
    lines.append(
        "traps remove the excess (|excess at N = 256| ≤ "
        f"{result['tolerance']:g} points and χ² below the control) at trap_rate "
        + (", ".join(f"{r:g}" for r in found) if found else "none of those tried")
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m papers.traps", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES))
    parser.add_argument("--problems", type=int, default=fit.COARSE_PROBLEMS)
    parser.add_argument("--trap-score", type=float, default=TRAP_SCORE)
    parser.add_argument("--cache", type=Path, default=Path(".cache/papers-fit"))
    parser.add_argument("--out", type=Path, default=None, help="write traps-<cell>.json here")
    args = parser.parse_args(argv)
    try:
        rates = [float(r) for r in args.rates.split(",")]
        if not rates or rates[0] != 0.0 or any(not 0 <= r < 1 for r in rates):
            raise ValueError("--rates must start with 0 (the control) and lie in [0, 1)")
        if args.problems < 2:
            raise ValueError("--problems must be >= 2")
        if not 0 < args.trap_score < 1:
            raise ValueError("--trap-score must lie in (0, 1)")
    except ValueError as error:
        print(f"papers.traps: error: {error}", file=sys.stderr)
        return 2
    result = check(
        CELL,
        rates,
        problems=args.problems,
        trap_score=args.trap_score,
        cache=args.cache,
        progress=lambda s: print(s, file=sys.stderr, flush=True),
    )
    result["command"] = "python -m papers.traps " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    print(format_check(result))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        name = fit.preset_name(*CELL).removeprefix("paper-")
        suffix = "" if args.trap_score == TRAP_SCORE else f"-score{args.trap_score:g}"
        (args.out / f"traps-{name}{suffix}.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
