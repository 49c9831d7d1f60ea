"""`dora verify`: the paper's claims checked numerically (`theory.runner`), one verdict each."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from dora_cli._common import claim_names, fail, progress_bar, split_list, unique


def verify(
    only: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated claim ids (default: all): {claim_names()}."),
    ] = None,
    thorough: Annotated[bool, typer.Option(help="Bigger grids and more draws (slower).")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write report.md, verdicts.json and PNG figures here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict records.")] = False,
) -> None:
    """Check the paper's claims numerically and print a verdict per claim."""
    from theory import runner

    ids = None if only is None else unique(split_list(only, "--only"), "--only")
    if ids is not None:
        try:
            runner.check_ids(ids)
        except ValueError as error:
            fail(str(error))
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    mode = "thorough" if thorough else "default"
    total = len(ids) if ids is not None else len(runner.claim_ids())
    start = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task(f"verifying ({mode})", total=total)
        done = {"n": 0}

        def progress(label: str) -> None:
            if done["n"]:
                bar.update(task, advance=1)
            done["n"] += 1
            bar.update(task, description=label)

        results = runner.run(ids, mode=mode, progress=progress)
        bar.update(task, advance=1)
    elapsed = time.perf_counter() - start
    written = runner.write_report(out, results, mode) if out is not None else []
    if as_json:
        typer.echo(json.dumps([runner.record(r) for r in results]))
        return
    typer.echo(runner.verdict_table(results))
    typer.echo(f"\n{len(results)} claim(s), mode {mode}, {elapsed:.1f} s")
    if written:
        typer.echo(f"wrote {', '.join(str(p) for p in written)}")
