"""`dora simulate`: methods × budgets × seeds on a synthetic reasoning-tree world."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated

import typer

from dora_cli._common import (
    BudgetsOption,
    CoordinatorOption,
    MethodsOption,
    MinVotesOption,
    NumProcessesOption,
    PoolCapOption,
    ProcessIdOption,
    StopKappaOption,
    StopPriceOption,
    StopThresholdOption,
    TotalFinishOption,
    TotalRolloutsOption,
    adaptive_from,
    check_budgets,
    check_count,
    check_distributed,
    check_out,
    fail,
    initialize_distributed,
    out_of_memory_is_one_line,
    parse_budgets,
    parse_methods,
    preset_names,
    progress_bar,
)


def simulate(
    preset: Annotated[
        str | None,
        typer.Option(help=f"World preset: {preset_names()} (default paper-like)."),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML experiment file (see README).")] = None,
    methods: MethodsOption = None,
    budgets: BudgetsOption = None,
    problems: Annotated[int | None, typer.Option(help="Problems P per seed (default 200).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds S (default 1).")] = None,
    max_rounds: Annotated[int | None, typer.Option(help="T_max (default 40).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder (JSONL + PNG plots).")] = Path(
        "runs/simulate"
    ),
    plots: Annotated[bool, typer.Option(help="Write the PNG plots.")] = True,
    kappa_from: Annotated[
        Path | None, typer.Option(help="κ for optimal/bayes from a `dora calibrate --out` file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
    stop_threshold: StopThresholdOption = None,
    stop_price: StopPriceOption = None,
    stop_kappa: StopKappaOption = None,
    pool_cap: PoolCapOption = None,
    min_votes: MinVotesOption = None,
    total_rollouts: TotalRolloutsOption = None,
    total_finish: TotalFinishOption = None,
    coordinator: CoordinatorOption = None,
    num_processes: NumProcessesOption = None,
    process_id: ProcessIdOption = None,
) -> None:
    """Monte Carlo search on a synthetic reasoning-tree world: methods × budgets × seeds."""
    from simulations import calibrate as calibrate_lib
    from simulations import spec as spec_lib

    # Before anything touches a device: jax.distributed must be initialized first.
    distributed = check_distributed(coordinator, num_processes, process_id)
    if preset is not None and config is not None:
        fail("give --preset or --config, not both")
    overrides: dict[str, object] = {}
    if methods is not None:
        overrides["methods"] = parse_methods(methods)
    if budgets is not None:
        overrides["budgets"] = parse_budgets(budgets)
    for name, value in (("problems", problems), ("seeds", seeds), ("max_rounds", max_rounds)):
        check_count(f"--{name.replace('_', '-')}", value)
        if value is not None:
            overrides[name] = value
    try:
        if config is not None:
            spec = spec_lib.load_spec(config)
        else:
            spec = spec_lib.build_spec(world=preset or "paper-like")
        if overrides:
            spec = _with_overrides(spec, overrides, named=config is None)
    except spec_lib.SpecError as error:
        fail(str(error))
    check_budgets(spec.budgets)  # a config file's budgets too
    adaptive = adaptive_from(
        spec.adaptive,
        stop_threshold,
        stop_price,
        stop_kappa,
        pool_cap,
        min_votes,
        total_rollouts,
        budgets=spec.budgets,
        finish=total_finish,
    )
    if adaptive is not spec.adaptive:
        spec = dataclasses.replace(spec, adaptive=adaptive)
    if kappa_from is not None:
        try:
            kappa = calibrate_lib.load_kappa(kappa_from)
        except calibrate_lib.CalibrateError as error:
            fail(str(error))
        spec = dataclasses.replace(spec, rules=calibrate_lib.with_kappa(spec.rules, kappa))
    check_out(out)
    if distributed is not None:
        initialize_distributed(*distributed)
    _run(spec, out, plots=plots, as_json=as_json)


def _with_overrides(spec, overrides: dict[str, object], *, named: bool):
    """`spec` with the command line's values in place of its own (the world is kept)."""
    from simulations import spec as spec_lib

    current = {
        "methods": [dict(r.hyperparameters, method=r.method) for r in spec.rules],
        "budgets": list(spec.budgets),
        "problems": spec.problems,
        "seeds": spec.seeds,
        "max_rounds": spec.max_rounds,
        "policy": spec.policy,
        "adaptive": spec.adaptive,
    }
    current.update(overrides)
    rebuilt = spec_lib.build_spec(world=spec.world_name if named else "paper-like", **current)
    return dataclasses.replace(rebuilt, world=spec.world, world_name=spec.world_name)


def _run(spec, out: Path, *, plots: bool, as_json: bool) -> None:
    from simulations import report, runfile, runner

    # simulate is not resumable: it replaces whatever run the folder held, and says so.
    settings = runfile.normalized(runner.fingerprint(spec))
    try:
        previous = runfile.read(out)
    except runfile.RunFileError:
        previous = {}
    total = len(spec.budgets) * spec.seeds * len(spec.rules)
    start = time.perf_counter()
    import jax

    with out_of_memory_is_one_line("lower --problems, --budgets or --max-rounds"):
        if jax.process_index() != 0:
            # Multi-host: every process runs the grid and holds every record; process 0 alone
            # writes and prints.
            runner.run(spec)
            return
        with progress_bar() as bar:
            task = bar.add_task(f"simulating ({spec.world_name})", total=total)
            preload = plots

            def progress(label: str) -> None:
                nonlocal preload
                if preload:
                    # The first run is done: the searches run (without the GIL) while the
                    # plotting library loads, off the serial end of the command.
                    from simulations import plots as plots_lib

                    plots_lib.preload()
                    preload = False
                bar.update(task, advance=1, description=label)

            records = runner.run(spec, progress=progress)
    elapsed = time.perf_counter() - start
    rows = report.summarize(records)
    out.mkdir(parents=True, exist_ok=True)
    (out / runfile.RUN_FILE).unlink(missing_ok=True)  # a kill below leaves no stale fingerprint
    (out / "trees.jsonl").unlink(missing_ok=True)  # a bench run's, if the folder held one
    runner.write_jsonl(out / "results.jsonl", records)
    meta = {"spec": spec.describe(), "seconds": elapsed}
    title = f"world: {spec.world_name}"
    images = report.write(out, rows, records, title=title, plots=plots, meta=meta)
    runfile.write(out, settings)
    if previous is not None:
        line = runfile.describe_difference(out, previous, settings)
        if line is not None:
            typer.echo(f"replaced the run in {out} ({line.split(': ', 1)[1]})", err=True)
    if as_json:
        typer.echo(json.dumps([runner.public_record(r) for r in records]))
        return
    typer.echo(
        f"world {spec.world_name}: {spec.problems} problems × {spec.seeds} seed(s), "
        f"T_max = {spec.max_rounds}, {elapsed:.1f} s"
    )
    typer.echo(report.table(rows))
    if spec.adaptive is not None:
        typer.echo("\n" + _adaptive_lines(spec.adaptive, records))
    labels = [r.label for r in spec.rules]
    if "rebase" in labels and len(labels) > 1:
        differences = report.paired_differences(records, "rebase")
        typer.echo("\n" + report.differences_table(differences, "rebase"))
    typer.echo(f"\nwrote {out / 'results.jsonl'}" + "".join(f", {p}" for p in images))


def _adaptive_lines(adaptive, records) -> str:
    """What the adaptive decisions did, one line per (method, N), seeds pooled."""
    import numpy as np

    settings = ", ".join(f"{k}={v}" for k, v in adaptive.describe().items() if v is not None)
    lines = [f"adaptive ({settings}): stopped early = by the posterior or the price"]
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["budget"]), []).append(r["adaptive"])
    for (method, budget), rows in groups.items():
        early = np.mean([a["stopped"]["settled"] + a["stopped"]["price"] for a in rows])
        stop_round = np.mean([a["stop_round"] for a in rows])
        widest = np.mean([a["max_width"] for a in rows])
        starved = np.mean([a["stopped"]["budget"] for a in rows])
        lines.append(
            f"  {method:<22} N={budget:<4} stopped early {100 * early:5.1f}%, "
            f"mean stop round {stop_round:.1f}, mean widest {widest:.1f} slots"
            + (f", ended by the total {100 * starved:5.1f}%" if adaptive.total else "")
        )
    return "\n".join(lines)
