"""`dora paper`: the paper's Fig. 3, Fig. 4 and Table 1 beside our runs on the synthetic world."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from dora_cli._common import (
    check_budgets,
    check_choice,
    check_count,
    fail,
    joined,
    out_of_memory_is_one_line,
    parse_budgets,
    progress_bar,
)

WHAT = ("fig3", "fig4", "table1", "all")
BACKENDS = ("sim", "vllm", "replay")
# What a user of a backend that `dora paper` cannot run yet should use instead.
NOT_YET = {
    "vllm": "--backend vllm is not available in dora paper yet; run the model searches with "
    "`dora bench --backend vllm`, or use --backend sim",
    "replay": "--backend replay is not available in dora paper yet (no recorded trees are read); "
    "use --backend sim",
}
DEFAULT_OUT = Path("runs/paper")


def paper(
    what: Annotated[
        str,
        typer.Argument(
            help="fig3 (Fig. 3 accuracy and pass rate), fig4 (Fig. 4 by difficulty level), "
            "table1 (Table 1 FLOPs and latency) or all."
        ),
    ],
    backend: Annotated[
        str, typer.Option(help="sim (the synthetic world; vllm and replay are not available yet).")
    ] = "sim",
    problems: Annotated[
        int | None,
        typer.Option(help="Problems P per seed (default 100; table1 runs P × S problems)."),
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds S (default 1).")] = None,
    budgets: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated budgets N for fig3/fig4, each once (default "
            "16,32,64,128,256; table1 is always REBASE@256 vs DORA@64)."
        ),
    ] = None,
    max_rounds: Annotated[int | None, typer.Option(help="T_max (default 40).")] = None,
    out: Annotated[
        Path,
        typer.Option(
            help="Output folder (default runs/paper); finished runs in it are reused when "
            "their settings match, and refused when they do not."
        ),
    ] = DEFAULT_OUT,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON instead of tables.")
    ] = False,
) -> None:
    """The paper's figures and tables beside ours: runs what is needed on the synthetic world
    (or reuses --out), writes overlay figures (ours with 95% intervals, the paper's dashed), a
    difference table per cell and a verdict per stated finding, and prints them.

    The defaults (P = 100, S = 1, the five methods at N = 16…256, plus Table 1's two searches)
    take about two minutes on two CPU cores, most of it compiling.
    """
    from papers import reproduce

    check_choice("part", what, WHAT)
    check_choice("--backend", backend, BACKENDS)
    if backend in NOT_YET:
        fail(NOT_YET[backend])
    for name, value in (("--problems", problems), ("--seeds", seeds), ("--max-rounds", max_rounds)):
        check_count(name, value)
    parts = reproduce.PARTS if what == "all" else (what,)
    chosen = parse_budgets(budgets) if budgets is not None else None
    if chosen is not None and parts == ("table1",):
        fail("--budgets does not apply to table1 (Table 1 is REBASE@256 vs DORA@64)")
    settings = reproduce.Settings(
        problems=problems or reproduce.DEFAULT_PROBLEMS,
        seeds=seeds or reproduce.DEFAULT_SEEDS,
        budgets=tuple(sorted(chosen)) if chosen else reproduce.data.BUDGETS,
        max_rounds=max_rounds,
    )
    check_budgets(settings.budgets)
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    from simulations.spec import SpecError

    try:
        settings.search_spec()  # every budget fits every method (e.g. beam search's width)
        reusable = reproduce.plan(parts, settings, out)
    except (SpecError, reproduce.SettingsMismatch) as error:
        fail(str(error))
    results, texts = _run(parts, settings, out, reusable)
    if as_json:
        typer.echo(json.dumps(results[parts[0]] if len(parts) == 1 else results))
        return
    typer.echo("\n\n".join(texts))


def _run(parts, settings, out: Path, reusable: dict[str, bool]):
    from papers import reproduce

    results: dict[str, Any] = {}
    texts: list[str] = []
    records: list[dict[str, Any]] = []
    note = f"backend sim: {reproduce.WORLD_NOTE}"
    with out_of_memory_is_one_line("lower --problems, --budgets or --max-rounds"):
        if "search" in reusable:
            spec = settings.search_spec()
            total = len(spec.budgets) * spec.seeds * len(spec.rules)
            with progress_bar() as bar:
                task = bar.add_task("searching (fig3/fig4)", total=total)
                records, reused, seconds = reproduce.search_records(
                    settings,
                    out,
                    progress=lambda label: bar.update(task, advance=1, description=label),
                )
            ran = f"reused {out / 'search'}" if reused else f"ran in {seconds:.0f} s"
            run_line = (
                f"{spec.problems} problems × {spec.seeds} seed(s), methods "
                f"{joined([r.label for r in spec.rules])}, N = {joined(spec.budgets)}, "
                f"T_max = {spec.max_rounds}; {ran}"
            )
        if "table1" in reusable:
            with progress_bar() as bar:
                bar.add_task("searching (table1)", total=None)
                table, table_reused, table_s = reproduce.table1_result(settings, out)
    if "fig3" in parts:
        rows = reproduce.fig3_rows(records)
        from simulations import report

        header = [
            "== Fig. 3 (p.7): accuracy and pass rate vs N",
            note,
            run_line,
            report.table(report.summarize(records)),
        ]
        results["fig3"], text = reproduce.write_part(
            "fig3", rows, out, header=header, extra={"settings": settings.search_spec().describe()}
        )
        texts.append(text)
    if "fig4" in parts:
        rows = reproduce.fig4_rows(settings, records)
        header = [
            "== Fig. 4 (p.9): MATH500 accuracy by difficulty level",
            note,
            f"{reproduce.LEVELS_HOW}",
            run_line,
        ]
        results["fig4"], text = reproduce.write_part(
            "fig4",
            rows,
            out,
            header=header,
            extra={"levels": reproduce.LEVELS_HOW, "settings": settings.search_spec().describe()},
        )
        texts.append(text)
    if "table1" in parts:
        from papers import table1 as table1_lib

        ran = f"reused {out / 'table1'}" if table_reused else f"ran in {table_s:.0f} s"
        header = [
            f"== Table 1 (p.8): REBASE@{table['methods']['rebase']['budget']} vs "
            f"DORA@{table['methods']['dora']['budget']} from counted tokens",
            note,
            f"{table['problems']} problems, paired; {ran}",
            table1_lib.format_table1(table),
            "latency: the stated model of papers.table1 (A100 peak × utilisation, per-call and "
            "per-round overheads), a what-if, not a measurement",
        ]
        obj, text = reproduce.write_part(
            "table1",
            table["rows"],
            out,
            header=header,
            extra={k: v for k, v in table.items() if k != "rows"},
        )
        results["table1"] = obj
        texts.append(text)
    return results, texts
