"""`dora bench`: the search on MATH500 / AIME: simulated (`sim`), on a scripted model-free text
backend (`toy`, for smoke runs), from a sample bank (`replay`, backends.bank) or on a model stack
(`vllm`); `--record BANK` fills a bank while a text backend runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from dora_cli._common import (
    BudgetsOption,
    MethodsOption,
    MinVotesOption,
    PoolCapOption,
    RunError,
    StopKappaOption,
    StopPriceOption,
    StopThresholdOption,
    TotalFinishOption,
    TotalRolloutsOption,
    adaptive_from,
    check_budgets,
    check_count,
    check_out,
    fail,
    parse_budgets,
    parse_methods,
    progress_bar,
    unique,
)
from simulations.spec import PAPER_BUDGETS, PAPER_METHODS

ON_MISS = ("error", "fallthrough", "resample")  # = backends.bank.ON_MISS (imported lazily)

BACKENDS = ("sim", "toy", "replay", "vllm")


def _dataset_names() -> str:
    from backends import datasets

    return ", ".join(datasets.BENCHMARKS)


def bench(
    backend: Annotated[
        str,
        typer.Option(
            help="sim (the synthetic world), toy (a scripted model-free text backend for smoke "
            "runs: its accuracies mean nothing), replay (answers from a --bank, no model) or vllm "
            "(a real model stack)."
        ),
    ] = "sim",
    recipe: Annotated[
        str | None, typer.Option(help="A recipe TOML file or a shipped recipe's name.")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help=f"{_dataset_names()} or a JSONL path (a recipe's [search] may name it).",
            show_default="math500",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the named datasets (default $DORA_DATA, else the copies shipped "
            "with the package)."
        ),
    ] = None,
    methods: MethodsOption = None,
    budgets: BudgetsOption = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds 0..S-1 (default 1).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first P problems.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Problems per engine batch.")] = None,
    max_rounds: Annotated[int | None, typer.Option(help="T_max (default 40).")] = None,
    out: Annotated[
        Path,
        typer.Option(
            help="Output folder: resumable; run.json holds the run's settings, and a rerun with "
            "other settings is refused."
        ),
    ] = Path("runs/bench"),
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start afresh: move the run files already in --out into --out/replaced-<k>/.",
        ),
    ] = False,
    record: Annotated[
        Path | None,
        typer.Option(
            help="Store every sample, score and embedding in this SQLite bank (toy, vllm)."
        ),
    ] = None,
    bank: Annotated[
        Path | None, typer.Option(help="The bank that --backend replay answers from.")
    ] = None,
    on_miss: Annotated[
        str,
        typer.Option(
            help="A replay's request the bank lacks: error (stop, one line naming the prefix), "
            "fallthrough (ask the live backend the bank came from and record the answer) or "
            "resample (reuse the samples recorded at that prefix: flagged as a bias risk)."
        ),
    ] = "error",
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
) -> None:
    """The search on MATH500 / AIME: simulated or with a real model stack; resumable."""
    from simulations import bench as bench_lib
    from simulations import recipe as recipe_lib

    if backend not in BACKENDS:
        fail(f"unknown backend {backend!r}; choose {', '.join(BACKENDS)}")
    flags: dict[str, object] = {}
    if methods is not None:
        flags["methods"] = parse_methods(methods)
    if budgets is not None:
        flags["budgets"] = parse_budgets(budgets)
    for name, value in (
        ("--seeds", seeds),
        ("--limit", limit),
        ("--batch-size", batch_size),
        ("--max-rounds", max_rounds),
    ):
        check_count(name, value)
    given = {
        "dataset": dataset,
        "seeds": seeds,
        "limit": limit,
        "batch_size": batch_size,
        "max_rounds": max_rounds,
    }
    flags.update({name: value for name, value in given.items() if value is not None})
    check_out(out)
    adaptive = adaptive_from(
        None,
        stop_threshold,
        stop_price,
        stop_kappa,
        pool_cap,
        min_votes,
        total_rollouts,
        finish=total_finish,
    )
    if backend == "replay" and bank is None:
        fail("--backend replay needs --bank BANK (a bank written with --record)")
    if bank is not None and backend != "replay":
        fail("--bank is read by --backend replay only (record with --record)")
    if bank is not None and not bank.is_file():
        fail(f"--bank {bank} not found")
    if on_miss not in ON_MISS:
        fail(f"--on-miss must be one of {', '.join(ON_MISS)}, got {on_miss!r}")
    if on_miss != "error" and backend != "replay":
        fail("--on-miss applies to --backend replay only")
    if record is not None and backend not in ("toy", "vllm"):
        fail("--record needs a text backend: toy or vllm")
    if record is not None:
        check_out(record, folder=False, name="--record")
    try:
        rec = recipe_lib.load(recipe)
    except recipe_lib.RecipeError as error:
        fail(str(error))
    spec = build_spec(
        backend,
        rec,
        flags,
        data_dir=data_dir,
        bank=bank,
        on_miss=on_miss,
        kappa_from=kappa_from,
        adaptive=adaptive,
    )
    if not fresh:
        try:
            bench_lib.check(spec, out)  # before a model loads
        except bench_lib.BenchError as error:
            fail(str(error))
    make_world, text_backend = _text_world(backend, rec, record, bank, on_miss)
    done, moved = bench_lib.prepare(spec, out, fresh=fresh)
    if moved is not None:
        typer.echo(f"moved the previous run's files to {moved}", err=True)
    if done:
        typer.echo(f"resumed: {done} of {len(spec.units()) * len(spec.problems)} done", err=True)
    _run(spec, out, make_world, rec, plots=plots, as_json=as_json, text_backend=text_backend)


def build_spec(
    backend: str,
    rec,
    flags: dict[str, object],
    *,
    data_dir: Path | None = None,
    bank: Path | None = None,
    on_miss: str = "error",
    kappa_from: Path | None = None,
    adaptive=None,
    model_sizes=None,
):
    """The `simulations.bench.BenchSpec` of a run: the command line's `flags` over the recipe's
    [search] over the paper's defaults; every mistake is one line (exit 2) before any work.
    `model_sizes` (default: the recipe's [models]) prices the tokens. `dora paper` builds its
    text-backend runs here too."""
    from backends import datasets
    from simulations import bench as bench_lib
    from simulations import calibrate as calibrate_lib
    from simulations import spec as spec_lib

    settings = {**rec.search, **flags}  # the command line over the recipe's [search]
    count = settings.get("seeds", 1)
    if not isinstance(count, int) or count < 1:
        fail(f"seeds must be an integer >= 1, got {count!r}")
    lim = settings.get("limit")
    if lim is not None and (not isinstance(lim, int) or lim < 1):
        fail(f"limit must be an integer >= 1, got {lim!r}")
    budget_list = settings.get("budgets", list(PAPER_BUDGETS))
    if not isinstance(budget_list, list) or not all(
        isinstance(b, int) and not isinstance(b, bool) for b in budget_list
    ):
        fail(f"budgets must be a list of integers, got {budget_list!r}")
    check_budgets(budget_list)
    try:
        rules = [spec_lib.parse_rule(m) for m in settings.get("methods", list(PAPER_METHODS))]
    except spec_lib.SpecError as error:
        fail(str(error))
    unique([r.label for r in rules], "methods")
    if kappa_from is not None:
        try:
            rules = list(calibrate_lib.with_kappa(rules, calibrate_lib.load_kappa(kappa_from)))
        except calibrate_lib.CalibrateError as error:
            fail(str(error))
    try:
        problems = datasets.load_dataset(
            settings.get("dataset", "math500"), data_dir=data_dir, limit=lim
        )
    except datasets.DatasetError as error:
        fail(str(error))
    try:
        spec = bench_lib.BenchSpec(
            problems=tuple(problems),
            rules=tuple(rules),
            budgets=tuple(sorted(budget_list)),
            seeds=tuple(range(count)),
            backend=backend,
            world=rec.world,
            max_rounds=settings.get("max_rounds", 40),
            batch_size=settings.get("batch_size"),
            model_sizes=rec.models if model_sizes is None else model_sizes,
            backend_settings=_backend_settings(backend, rec, bank, on_miss),
            adaptive=adaptive,
        )
    except bench_lib.BenchError as error:
        fail(str(error))
    return spec


def _backend_settings(backend: str, rec, bank: Path | None, on_miss: str) -> dict[str, object]:
    """`simulations.bench.backend_settings`, its mistakes as one line (exit 2)."""
    from simulations import bench as bench_lib

    try:
        return bench_lib.backend_settings(backend, rec, bank, on_miss)
    except bench_lib.BenchError as error:
        fail(str(error))


def _text_world(backend: str, rec, record: Path | None, bank: Path | None, on_miss: str):
    """`simulations.bench.text_world`, its mistakes as one line (exit 2) before any model
    loads."""
    from simulations import bench as bench_lib

    try:
        return bench_lib.text_world(backend, rec, record, bank, on_miss)
    except bench_lib.BenchError as error:
        fail(str(error))


def _counters(held: list[object]) -> dict[str, int]:
    """backend_calls (model calls made), and bank_hits / bank_misses on a replay."""
    if not held:
        return {}
    model = held[0]
    calls = getattr(model, "calls", None)
    out = {"backend_calls": sum(calls.values()) if isinstance(calls, dict) else int(calls or 0)}
    if hasattr(model, "hits"):
        out.update(bank_hits=model.hits, bank_misses=model.misses)
        if model.on_miss == "resample":
            out["resampled_samples"] = model.resampled
    return out


def execute(spec, out: Path, make_world, *, label: str) -> list[dict]:
    """`simulations.bench.run` with a progress bar; a bank miss or a failed model stack is one
    line (the finished problems stay in `out`, and the same command resumes). `dora paper`'s
    text-backend runs go through here too."""
    from backends.bank import BankMiss
    from simulations import bench as bench_lib

    total = len(spec.units()) * len(spec.problems)
    try:
        with progress_bar() as bar:
            task = bar.add_task(label, total=total)
            return bench_lib.run(
                spec,
                out,
                make_world=make_world,
                progress=lambda text, n: bar.update(task, advance=n, description=text),
            )
    except (bench_lib.BenchError, BankMiss) as error:
        # A replay's miss: the finished problems are on disk; --on-miss picks another answer.
        fail(
            str(error)
            + (" (--on-miss fallthrough|resample)" if isinstance(error, BankMiss) else "")
        )
    except Exception as error:  # the model stack failed mid-run: finished units are on disk
        lines = [x for x in str(error).splitlines() if x.strip()]
        raise RunError(
            f"the run stopped ({type(error).__name__}: {lines[-1] if lines else ''}); finished "
            f"problems are in {out / 'results.jsonl'}: rerun the same command to resume"
        ) from None


def _run(
    spec, out: Path, make_world, rec, *, plots: bool, as_json: bool, text_backend=None
) -> None:
    from simulations import bench as bench_lib
    from simulations import report

    start = time.perf_counter()
    records = execute(spec, out, make_world, label=f"bench ({spec.backend})")
    elapsed = time.perf_counter() - start
    rows = report.summarize(records)
    dataset = spec.problems[0].dataset
    title = f"{dataset}, {spec.backend}"
    counters = _counters(text_backend or [])
    if counters.get("resampled_samples"):
        counters["bias_risk"] = (
            f"{counters['resampled_samples']} samples reused recorded ones instead of new draws "
            "(--on-miss resample): not independent samples; records flag them in 'resampled'"
        )
    meta = {"seconds": elapsed, **counters}
    images = report.write(out, rows, records, title=title, plots=plots, meta=meta)
    if as_json:
        typer.echo(json.dumps(bench_lib.seed_records(records)))
        return
    typer.echo(
        f"{dataset}: {len(spec.problems)} problems × {len(spec.seeds)} seed(s), backend "
        f"{spec.backend}"
        + (f" (world {rec.world_name})" if spec.backend == "sim" else "")
        + f", {elapsed:.1f} s"
    )
    typer.echo(report.table(rows))
    if spec.adaptive is not None:
        typer.echo("\n" + _adaptive_lines(records))
    if counters:
        typer.echo("\n" + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counters.items()))
    typer.echo(f"\nwrote {out / 'results.jsonl'}" + "".join(f", {p}" for p in images))


def _adaptive_lines(records) -> str:
    """Why the problems stopped, per (method, N), seeds pooled (records say it per problem)."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["budget"]), []).append(r)
    lines = ["adaptive: why problems stopped (records: 'adaptive' per problem)"]
    for (method, budget), rows in groups.items():
        reasons: dict[str, int] = {}
        for r in rows:
            reasons[r["adaptive"]["reason"]] = reasons.get(r["adaptive"]["reason"], 0) + 1
        counted = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
        rollouts = sum(r["rollouts"] for r in rows) / len(rows)
        lines.append(f"  {method:<22} N={budget:<4} {counted}; mean rollouts {rollouts:.1f}")
    return "\n".join(lines)
