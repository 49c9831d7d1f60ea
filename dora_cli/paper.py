"""`dora paper`: the paper's Fig. 3, Fig. 4 and Table 1 beside our runs: on the synthetic world
(each cell in its own fitted world), on a real model stack (vllm) or from a sample bank (replay)."""

from __future__ import annotations

import json
import time
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
ON_MISS = ("error", "fallthrough", "resample")  # = backends.bank.ON_MISS (imported lazily)
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
        str,
        typer.Option(
            help="sim (every cell in its own fitted synthetic world), vllm (the real search "
            "with --recipe's models) or replay (re-analyse the trees recorded in --bank)."
        ),
    ] = "sim",
    cells: Annotated[
        str | None,
        typer.Option(
            help="sim: comma-separated cells to run, e.g. llama-1b-math500,qwen-1.5b-aime2024 "
            "(default all nine; fig4 runs their math500 ones)."
        ),
    ] = None,
    recipe: Annotated[
        str | None,
        typer.Option(
            help="vllm (and replay): a recipe TOML file or a shipped recipe's name; its policy "
            "is the paper's model of the cell, its [search] the run's defaults."
        ),
    ] = None,
    bank: Annotated[
        Path | None, typer.Option(help="replay: the sample bank (written by dora bench --record).")
    ] = None,
    on_miss: Annotated[
        str,
        typer.Option(help="replay: a request the bank lacks: error, fallthrough or resample."),
    ] = "error",
    dataset: Annotated[
        str | None,
        typer.Option(
            help="vllm/replay: the cell's dataset, math500, aime2024 or aime2025 (default the "
            "recipe's, else math500)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="vllm/replay: the paper's model the policy stands for (llama-3.2-1b, "
            "llama-3.2-3b, qwen2.5-1.5b); default read from the policy's name."
        ),
    ] = None,
    problems: Annotated[
        int | None,
        typer.Option(
            help="Problems P per seed (sim default 100, table1 runs P × S; vllm/replay: the "
            "first P of the dataset, default the recipe's limit, else all)."
        ),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help="Seeds S (default 1; vllm/replay: the recipe's).")
    ] = None,
    budgets: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated budgets N for fig3/fig4, each once (default "
            "16,32,64,128,256; sim's table1 is always REBASE@256 vs DORA@64)."
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
    """The paper's figures and tables beside ours: runs what is needed (or reuses --out), writes
    overlay figures (ours with 95% intervals, the paper's dashed), a difference table per cell
    and a verdict per stated finding, and prints them.

    sim runs each of Fig. 3's nine cells (policy model × dataset) in the world fitted to its
    baseline curves; the defaults (P = 100, S = 1, the five methods at N = 16…256, plus Table 1's
    two searches) take several minutes on two CPU cores. vllm and replay run the one cell their
    policy and dataset stand for, through the same machinery as `dora bench`.
    """
    from papers import reproduce

    check_choice("part", what, WHAT)
    check_choice("--backend", backend, BACKENDS)
    for name, value in (("--problems", problems), ("--seeds", seeds), ("--max-rounds", max_rounds)):
        check_count(name, value)
    parts = reproduce.PARTS if what == "all" else (what,)
    chosen = parse_budgets(budgets) if budgets is not None else None
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    if backend == "sim":
        for flag, value in (
            ("--recipe", recipe),
            ("--bank", bank),
            ("--dataset", dataset),
            ("--model", model),
        ):
            if value is not None:
                fail(f"{flag} applies to --backend vllm or replay; sim runs the fitted worlds")
        if on_miss != "error":
            fail("--on-miss applies to --backend replay only")
        _sim(parts, out, as_json, cells, problems, seeds, chosen, max_rounds)
        return
    if cells is not None:
        fail(
            f"--cells applies to --backend sim only; --backend {backend} runs the cell of its "
            "policy and dataset (--recipe, --dataset, --model)"
        )
    host = _host_plan(
        parts, backend, recipe, bank, on_miss, dataset, model, problems, seeds, chosen, max_rounds
    )
    _host(parts, out, as_json, host)


# --- the synthetic backend -----------------------------------------------------------------


def _sim(parts, out: Path, as_json: bool, cells, problems, seeds, chosen, max_rounds) -> None:
    from papers import reproduce
    from simulations.spec import SpecError

    if chosen is not None and parts == ("table1",):
        fail("--budgets does not apply to table1 (Table 1 is REBASE@256 vs DORA@64)")
    if cells is not None and parts == ("table1",):
        fail("--cells does not apply to table1 (Table 1 is Llama-3.2-1B on MATH500)")
    try:
        chosen_cells = reproduce.parse_cells(cells) if cells is not None else reproduce.CELLS
    except reproduce.SettingsMismatch as error:
        fail(str(error))
    settings = reproduce.Settings(
        problems=problems or reproduce.DEFAULT_PROBLEMS,
        seeds=seeds or reproduce.DEFAULT_SEEDS,
        budgets=tuple(sorted(chosen)) if chosen else reproduce.data.BUDGETS,
        max_rounds=max_rounds,
        cells=chosen_cells,
    )
    check_budgets(settings.budgets)
    try:
        settings.search_spec()  # every budget fits every method (e.g. beam search's width)
        reusable = reproduce.plan(parts, settings, out)
    except (SpecError, reproduce.SettingsMismatch) as error:
        fail(str(error))
    results, texts = _run_sim(parts, settings, out, reusable)
    _print(parts, results, texts, as_json)


def _print(parts, results: dict[str, Any], texts: list[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(results[parts[0]] if len(parts) == 1 else results))
        return
    typer.echo("\n\n".join(texts))


def _run_sim(parts, settings, out: Path, reusable: dict[str, bool]):
    from papers import reproduce

    records: dict[tuple[str, str], list[dict[str, Any]]] = {}
    lines: list[str] = []
    search_cells = settings.search_cells(parts)
    with out_of_memory_is_one_line("lower --problems, --budgets or --max-rounds"):
        if search_cells:
            spec = settings.search_spec()
            per_cell = len(spec.budgets) * spec.seeds * len(spec.rules)
            with progress_bar() as bar:
                task = bar.add_task("searching (fig3/fig4)", total=per_cell * len(search_cells))
                for cell in search_cells:
                    name = reproduce.cell_name(cell)
                    records[cell], reused, seconds = reproduce.search_records(
                        settings,
                        out,
                        cell,
                        progress=lambda label, name=name: bar.update(
                            task, advance=1, description=f"{name}: {label}"
                        ),
                    )
                    where = reproduce.search_folder(out, cell)
                    ran = f"reused {where}" if reused else f"ran in {seconds:.0f} s"
                    lines.append(f"  {name}: world {reproduce.world_of(cell)}, {ran}")
            run_line = (
                f"{spec.problems} problems × {spec.seeds} seed(s) per cell, methods "
                f"{joined([r.label for r in spec.rules])}, N = {joined(spec.budgets)}, "
                f"T_max = {spec.max_rounds}; each cell in its own fitted world:\n"
                + "\n".join(lines)
            )
        if "table1" in reusable:
            with progress_bar() as bar:
                bar.add_task("searching (table1)", total=None)
                table, table_reused, table_s = reproduce.table1_result(settings, out)
    note = (
        "backend sim: each cell's synthetic world is fitted to the paper's baseline curves of "
        "that cell (python -m papers.fit), DORA held out"
    )
    results: dict[str, Any] = {}
    texts: list[str] = []
    describe = {reproduce.cell_name(c): settings.search_spec(c).describe() for c in search_cells}
    if "fig3" in parts:
        rows = [row for c in settings.cells for row in reproduce.fig3_rows(records[c], c)]
        header = ["== Fig. 3 (p.7): accuracy and pass rate vs N", note, run_line]
        results["fig3"], text = reproduce.write_part(
            "fig3", rows, out, header=header, extra={"settings": describe}
        )
        texts.append(text)
    if "fig4" in parts:
        math = [c for c in search_cells if c[1] == "math500"]
        rows = [row for c in math for row in reproduce.fig4_rows(settings, records[c], c)]
        header = [
            "== Fig. 4 (p.9): MATH500 accuracy by difficulty level",
            note,
            reproduce.LEVELS_HOW,
            run_line,
        ]
        results["fig4"], text = reproduce.write_part(
            "fig4",
            rows,
            out,
            header=header,
            extra={
                "levels": reproduce.LEVELS_HOW,
                "settings": {
                    reproduce.cell_name(c): describe[reproduce.cell_name(c)] for c in math
                },
            },
        )
        texts.append(text)
    if "table1" in parts:
        ran = f"reused {out / 'table1'}" if table_reused else f"ran in {table_s:.0f} s"
        results["table1"], text = _write_table1(
            table,
            out,
            [
                f"backend sim: {reproduce.WORLD_NOTE}",
                f"{table['problems']} problems, paired; {ran}",
            ],
            "latency: the stated model of papers.table1 (A100 peak × utilisation, per-call and "
            "per-round overheads), a what-if, not a measurement",
        )
        texts.append(text)
    return results, texts


def _write_table1(table: dict[str, Any], out: Path, notes: list[str], latency: str):
    from papers import reproduce
    from papers import table1 as table1_lib

    header = [
        f"== Table 1 (p.8): REBASE@{table['methods']['rebase']['budget']} vs "
        f"DORA@{table['methods']['dora']['budget']} from counted tokens",
        *notes,
        table1_lib.format_table1(table),
        latency,
    ]
    return reproduce.write_part(
        "table1",
        table["rows"],
        out,
        header=header,
        extra={k: v for k, v in table.items() if k != "rows"},
    )


# --- the text backends (vllm, replay) --------------------------------------------------------


class _Host:
    """A text-backend run: its cell, where its policy came from, and the bench run behind it."""

    def __init__(self, backend, cell, source, spec, rec, bank, on_miss):
        self.backend, self.cell, self.source = backend, cell, source
        self.spec, self.rec, self.bank, self.on_miss = spec, rec, bank, on_miss


def _host_plan(
    parts, backend, recipe, bank, on_miss, dataset, model, problems, seeds, chosen, max_rounds
) -> _Host:
    """Every check of a vllm/replay run, before any model loads or any search runs."""
    from backends import bank as bank_lib
    from dora_cli import bench as bench_cli
    from dora_jax.ledger import ModelSizes
    from papers import data, reproduce
    from simulations import recipe as recipe_lib

    if backend == "vllm":
        if recipe is None:
            fail("--backend vllm needs --recipe FILE (its [vllm] table names the models)")
        for flag, value in (("--bank", bank), ("--on-miss", None if on_miss == "error" else 1)):
            if value is not None:
                fail(f"{flag} applies to --backend replay only")
    else:
        if bank is None:
            fail("--backend replay needs --bank BANK (a bank written with dora bench --record)")
        if not bank.is_file():
            fail(f"--bank {bank} not found")
        if on_miss not in ON_MISS:
            fail(f"--on-miss must be one of {', '.join(ON_MISS)}, got {on_miss!r}")
    try:
        rec = recipe_lib.load(recipe)
    except recipe_lib.RecipeError as error:
        fail(str(error))
    if backend == "vllm":
        policy = rec.vllm.get("policy")
        if not isinstance(policy, str) or not policy:
            fail("--backend vllm needs a recipe with a [vllm] table naming at least the policy")
        source = f"the policy {policy} of the recipe {rec.path}"
    else:
        try:
            recorded = bank_lib.SampleBank(bank).only_settings()[1]
        except bank_lib.BankError as error:
            fail(str(error))
        policy = str(recorded.get("policy") or recorded.get("backend"))
        source = f"the policy {policy} recorded in the bank {bank}"
    if model is not None and model not in data.MODELS:
        fail(f"--model must be one of {', '.join(data.MODELS)}, got {model!r}")
    model = model or reproduce.model_of_policy(policy)
    if model is None:
        fail(
            f"the policy {policy!r} is none of the paper's models; name the cell it stands for "
            f"with --model ({', '.join(data.MODELS)})"
        )
    name = dataset or rec.search.get("dataset", "math500")
    if name not in data.DATASETS:
        fail(f"the dataset {name!r} is none of the paper's ({', '.join(data.DATASETS)})")
    if "fig4" in parts and name != "math500":
        fail(f"fig4 is MATH500 only; this run's dataset is {name} (from --dataset or the recipe)")
    flags: dict[str, object] = {"dataset": name}
    if "methods" not in rec.search:
        flags["methods"] = list(data.METHODS)
    for key, value in (
        ("budgets", chosen),
        ("limit", problems),
        ("seeds", seeds),
        ("max_rounds", max_rounds),
    ):
        if value is not None:
            flags[key] = list(value) if key == "budgets" else value
    # The recipe's [models] price the tokens (as in dora bench); without a recipe, the model's.
    sizes = rec.models if rec.path is not None else ModelSizes.for_policy(model)
    spec = bench_cli.build_spec(
        backend,
        rec,
        flags,
        bank=bank,
        on_miss=on_miss,
        model_sizes=sizes,
    )
    if "table1" in parts:
        rebase, dora = reproduce.TABLE1_BUDGETS
        labels = [r.label for r in spec.rules]
        need = [
            f"{m}@{n}"
            for m, n in (("rebase", rebase), ("dora", dora))
            if m not in labels or n not in spec.budgets
        ]
        if need:
            fail(
                f"table1 on --backend {backend} reads REBASE@{rebase} and DORA@{dora} from the "
                f"run; it lacks {', '.join(need)} (--budgets, or the recipe's methods)"
            )
    return _Host(backend, (model, name), source, spec, rec, bank, on_miss)


def _host(parts, out: Path, as_json: bool, host: _Host) -> None:
    from dora_cli import bench as bench_cli
    from papers import reproduce
    from papers import table1 as table1_lib
    from simulations import bench as bench_lib
    from simulations import runfile

    cell = reproduce.cell_name(host.cell)
    root = out / f"{host.backend}-{cell}"
    folder = root / "search"
    # Before a model loads: a folder of other settings is refused, so two runs never mix.
    try:
        stored = runfile.read(folder)
    except runfile.RunFileError as error:
        fail(str(error).replace("; use --fresh", f"; remove {folder} or give another --out"))
    if stored is None and (folder / "results.jsonl").exists():
        fail(f"{folder} holds results without settings; remove it or give another --out")
    if stored is not None:
        key = runfile.first_difference(stored, runfile.normalized(bench_lib.fingerprint(host.spec)))
        if key is not None:
            fail(
                f"{folder} holds a {host.backend} run with other settings ({key}: "
                f"{json.dumps(stored.get(key))} there); give another --out or the same settings"
            )
    make_world, held = bench_cli._text_world(host.backend, host.rec, None, host.bank, host.on_miss)
    start = time.perf_counter()
    records = bench_cli.execute(host.spec, folder, make_world, label=f"paper ({host.backend})")
    seconds = time.perf_counter() - start
    spec = host.spec
    counters = bench_cli._counters(held)
    cells_line = (
        f"cells: {host.cell[0]} × {host.cell[1]} (one cell: {host.source}; the other cells "
        "need their own recipe or bank)"
    )
    run_line = (
        f"{len(spec.problems)} problems × {len(spec.seeds)} seed(s), methods "
        f"{joined([r.label for r in spec.rules])}, N = {joined(spec.budgets)}, "
        f"T_max = {spec.max_rounds}; {seconds:.0f} s, records in {folder}"
        + ("".join(f", {k.replace('_', ' ')} {v}" for k, v in counters.items()))
    )
    note = f"backend {host.backend}"
    results: dict[str, Any] = {}
    texts: list[str] = []
    if "fig3" in parts:
        rows = reproduce.fig3_rows(records, host.cell)
        header = ["== Fig. 3 (p.7): accuracy and pass rate vs N", note, cells_line, run_line]
        results["fig3"], text = reproduce.write_part(
            "fig3", rows, root, header=header, extra={"cells": [cell], **counters}
        )
        texts.append(text)
    if "fig4" in parts:
        rows = reproduce.level_rows(records, host.cell[0])
        header = [
            "== Fig. 4 (p.9): MATH500 accuracy by difficulty level",
            note,
            reproduce.LEVELS_HOW_HOST,
            cells_line,
            run_line,
        ]
        results["fig4"], text = reproduce.write_part(
            "fig4", rows, root, header=header, extra={"cells": [cell]}
        )
        texts.append(text)
    if "table1" in parts:
        rebase, dora = reproduce.TABLE1_BUDGETS
        table = table1_lib.from_records(
            records,
            rebase_budget=rebase,
            dora_budget=dora,
            model=host.cell[0],
            dataset=host.cell[1],
        )
        results["table1"], text = _write_table1(
            table,
            root,
            [note, cells_line, f"{table['problems']} problems, paired; {run_line}"],
            f"latency: {table1_lib.MEASURED_LATENCY}",
        )
        texts.append(text)
    _print(parts, results, texts, as_json)
