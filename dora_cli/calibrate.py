"""`dora calibrate`: the PRM reliability κ (Eq. 6) from Monte Carlo rollout labels.

The work (probing a world, reading records, the NumPyro fit, the κ file) is
`simulations.calibrate`; this module parses, checks and prints.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from dora_cli._common import (
    check_choice,
    check_count,
    check_out,
    check_seed,
    fail,
    out_of_memory_is_one_line,
    preset_names,
)
from simulations import calibrate as lib


def calibrate(
    preset: Annotated[
        str | None,
        typer.Option(help=f"Probe a simulated world: {preset_names()} (default paper-like)."),
    ] = None,
    records: Annotated[
        Path | None,
        typer.Option(help='JSONL of {"problem", "score", "rollouts", "correct"} per unit.'),
    ] = None,
    problems: Annotated[int, typer.Option(help="Simulated problems P.")] = 200,
    candidates: Annotated[int, typer.Option(help="Simulated candidates per problem K.")] = 16,
    depth: Annotated[int, typer.Option(help="Steps before scoring (simulated).")] = 2,
    rollouts: Annotated[int, typer.Option(help="Rollouts per candidate m (simulated).")] = 8,
    method: Annotated[
        str,
        typer.Option(
            help=f"nuts, svi or auto (nuts up to {lib.AUTO_NUTS_MAX_UNITS:,} units, else svi)."
        ),
    ] = "auto",
    calibration: Annotated[str, typer.Option(help="identity or logistic.")] = "identity",
    pooling: Annotated[str, typer.Option(help="complete or partial.")] = "complete",
    samples: Annotated[int, typer.Option(help="Posterior draws (per NUTS chain).")] = 1000,
    warmup: Annotated[int, typer.Option(help="NUTS warmup steps.")] = 500,
    chains: Annotated[int, typer.Option(help="NUTS chains.")] = 2,
    svi_steps: Annotated[int, typer.Option(help="SVI steps.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the probe and the sampler, 0 to 2**32-1.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Write the posterior JSON here (for --kappa-from).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the posterior summary.")] = False,
) -> None:
    """Fits the PRM reliability κ (and a calibration map) from Monte Carlo rollout labels."""
    from dora_jax import calibration as cal
    from dora_jax import world as world_lib

    if preset is not None and records is not None:
        fail("give --preset or --records, not both")
    check_choice("method", method, lib.fit_methods())
    check_choice("calibration", calibration, cal.CALIBRATIONS)
    check_choice("pooling", pooling, cal.POOLINGS)
    for name, value in (
        ("--problems", problems),
        ("--candidates", candidates),
        ("--rollouts", rollouts),
        ("--samples", samples),
        ("--chains", chains),
        ("--svi-steps", svi_steps),
    ):
        check_count(name, value)
    check_seed(seed)
    check_count("--problems × --candidates", problems * candidates)  # units index as int32
    if depth < 0 or warmup < 0:
        fail("--depth and --warmup must be >= 0")
    if records is None:
        check_choice("world preset", preset or "paper-like", tuple(world_lib.PRESETS))
    if out is not None:
        check_out(out, folder=False)

    probe_key, fit_key = lib.seed_keys(seed)
    with out_of_memory_is_one_line("use fewer units (--problems, --candidates) or --method svi"):
        try:
            if records is not None:
                labels = lib.read_records(records)
            else:
                labels = lib.probe_world(
                    probe_key,
                    preset or "paper-like",
                    problems=problems,
                    candidates=candidates,
                    depth=depth,
                    rollouts=rollouts,
                )
                labels = dataclasses.replace(labels, source={**labels.source, "seed": seed})
            done = lib.fit(
                fit_key,
                labels,
                method=method,
                calibration=calibration,
                pooling=pooling,
                num_warmup=warmup,
                num_samples=samples,
                num_chains=chains,
                svi_steps=svi_steps,
            )
        except lib.CalibrateError as error:
            fail(str(error))
    result, posterior = done.result, done.posterior
    if out is not None:
        lib.write_result(out, result)
    if as_json:
        typer.echo(json.dumps(lib.report(result)))
        return
    lo, hi = posterior.kappa_interval
    typer.echo(
        f"κ from {labels.units} units ({done.method}, calibration {calibration}, pooling {pooling})"
    )
    typer.echo(
        f"  κ median {posterior.kappa_median:.4g}, mean {posterior.kappa_mean:.4g}, "
        f"90% interval [{lo:.4g}, {hi:.4g}]"
    )
    if done.method == "nuts":
        typer.echo(
            f"  R-hat {posterior.r_hat:.3f}, ESS {posterior.ess:.0f}, "
            f"divergences {posterior.divergences}"
        )
    else:
        typer.echo(f"  −ELBO {result['loss_first']:.4g} → {result['loss_final']:.4g}")
    for name, d in result["calibration_params"].items():
        typer.echo(f"  {name}: {json.dumps(d)}")
    if labels.truth is not None:
        note = (
            "exact model: the interval should cover it"
            if lib.exact_model(labels.truth)
            else "rollouts share children (α < ∞) or the PRM breaks Eq. 6: expect κ_eff < κ"
        )
        typer.echo(f"  the world's κ = {labels.truth['kappa']:g} ({note})")
    if out is not None:
        typer.echo(f"wrote {out} (use it with --kappa-from)")
