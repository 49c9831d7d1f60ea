"""`dora verify`: the paper's claims checked numerically (`theory.runner`), one verdict each."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from dora_cli._common import (
    CoordinatorOption,
    NumProcessesOption,
    ProcessIdOption,
    RunError,
    check_distributed,
    check_out,
    claim_names,
    fail,
    initialize_distributed,
    progress_bar,
    split_list,
    unique,
)


def verify(
    only: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated claim ids (default: all): {claim_names()}."),
    ] = None,
    thorough: Annotated[
        bool, typer.Option(help="Bigger regions and more samples (slower).")
    ] = False,
    fast: Annotated[
        bool, typer.Option(help="The test suite's small regions (seconds per claim).")
    ] = False,
    controls: Annotated[
        bool,
        typer.Option(
            help="Also run each claim's control (a deliberately wrong ingredient that must flip "
            "the verdict); exit 1 if a control does not flip."
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write report.md, verdicts.json and PNG figures here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict records.")] = False,
    coordinator: CoordinatorOption = None,
    num_processes: NumProcessesOption = None,
    process_id: ProcessIdOption = None,
) -> None:
    """Check the paper's claims numerically: each claim declares its quantity, region and
    tolerance before measuring, and is judged holds, holds-approximately, fails or
    inconclusive."""
    from theory import CLAIM_IDS

    distributed = check_distributed(coordinator, num_processes, process_id)
    if thorough and fast:
        fail("--thorough and --fast exclude each other")
    ids = None if only is None else unique(split_list(only, "--only"), "--only")
    if ids is not None:
        unknown = [i for i in ids if i not in CLAIM_IDS]
        if unknown:
            fail(f"unknown claim id(s) {', '.join(unknown)}; choose from {', '.join(CLAIM_IDS)}")
    if out is not None:
        check_out(out)
    if distributed is not None:
        initialize_distributed(*distributed)
    from theory import runner

    mode = "thorough" if thorough else "fast" if fast else "default"
    total = (len(ids) if ids is not None else len(CLAIM_IDS)) * (2 if controls else 1)
    start, cpu = time.perf_counter(), time.process_time()
    import jax

    if jax.process_index() != 0:
        # Multi-host: the simulated claims' batches span every process; process 0 alone writes
        # and prints.
        runner.run(ids, mode=mode, controls=controls)
        return
    with progress_bar() as bar:
        task = bar.add_task(f"verifying ({mode})", total=total)
        done = {"n": 0}

        def progress(label: str) -> None:
            if done["n"]:
                bar.update(task, advance=1)
            done["n"] += 1
            bar.update(task, description=label)

        results = runner.run(ids, mode=mode, progress=progress, controls=controls)
        bar.update(task, advance=1)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    written = runner.write_report(out, results, mode) if out is not None else []
    stuck = [r.verdict.claim_id for r in results if r.flips is False]
    if as_json:
        typer.echo(json.dumps([runner.record(r) for r in results], ensure_ascii=False))
    else:
        typer.echo(runner.verdict_table(results))
        typer.echo(
            f"\n{len(results)} claim(s){' with controls' if controls else ''}, mode {mode}, "
            f"{elapsed:.1f} s wall, {cpu:.1f} s CPU"
        )
        if written:
            typer.echo(f"wrote {', '.join(str(p) for p in written)}")
    if stuck:
        raise RunError(f"control(s) did not flip the verdict: {', '.join(stuck)}")
