"""The `dora` command: the one place that imports every layer (dora_jax, backends, theory, ...).

Bad input prints one line (`dora: error: ...`) to stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="dora",
    help="dora-jax: optimal rollout allocation for test-time scaling (DORA, NeurIPS 2025).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class UsageError(Exception):
    """A user mistake: reported as one line, exit status 2."""


def fail(message: str) -> None:
    raise UsageError(message)


class RunError(Exception):
    """A run that stopped part way (e.g. the model engine crashed): one line, status 1."""


def _parse_floats(text: str, what: str) -> list[float]:
    try:
        values = [float(x) for x in text.replace(" ", "").split(",") if x != ""]
    except ValueError:
        fail(f"{what} must be comma-separated numbers, got {text!r}")
    if not values:
        fail(f"{what} is empty")
    return values


def _parse_mask(text: str, k: int) -> list[bool]:
    table = {"1": True, "0": False, "true": True, "false": False}
    items = [x.strip().lower() for x in text.split(",")]
    if any(x not in table for x in items):
        fail(f"--mask must be comma-separated 1/0 values, got {text!r}")
    if len(items) != k:
        fail(f"--mask has {len(items)} entries but --scores has {k}")
    return [table[x] for x in items]


def load_embeddings(path: Path):
    """Float[K, E] from .npy, .json (list of lists) or text (.csv/.tsv/.txt, one row each)."""
    import numpy as np

    if not path.is_file():
        fail(f"embeddings file not found: {path}")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            array = np.asarray(json.loads(path.read_text()), dtype=np.float64)
        else:
            delimiter = "," if path.suffix == ".csv" else None
            array = np.loadtxt(path, delimiter=delimiter, ndmin=2)
    except (OSError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        fail(f"cannot read embeddings from {path}: {first}")
    if array.ndim != 2:
        fail(f"embeddings in {path} must be a [K, E] matrix, got shape {array.shape}")
    return array.astype(np.float32)


@app.command()
def allocate(
    scores: Annotated[str, typer.Option(help="Comma-separated PRM scores, e.g. 0.9,0.9,0.7.")],
    budget: Annotated[int, typer.Option(help="Rollout budget N.")],
    method: Annotated[
        str,
        typer.Option(
            help="temperature_sampling, beam_search, dvts, rebase, dora or optimal.",
        ),
    ] = "dora",
    embeddings: Annotated[
        Path | None,
        typer.Option(help="[K, E] embeddings (.npy, .json, .csv or whitespace text); dora."),
    ] = None,
    mask: Annotated[str | None, typer.Option(help="Comma-separated 1/0 validity flags.")] = None,
    temperature: Annotated[
        float | None, typer.Option(help="T_b (rebase, dora; default 0.1) or optimal's T.")
    ] = None,
    similarity_temperature: Annotated[
        float | None, typer.Option(help="T_s for dora (default 0.01).")
    ] = None,
    beam_width: Annotated[
        int | None, typer.Option(help="M for beam_search and dvts (default 4).")
    ] = None,
    kappa: Annotated[float | None, typer.Option(help="κ for optimal (default 1.0).")] = None,
    rounding: Annotated[
        str | None, typer.Option(help="hamilton (default) or round_half_even_then_cycle.")
    ] = None,
    prefilter: Annotated[
        str | None, typer.Option(help="dora: none (default) or rebase_round.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Break ties at random with this seed (default: by index).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Allocate a rollout budget over K candidates and print the counts (Σ = N exactly)."""
    import numpy as np

    values = _parse_floats(scores, "--scores")
    hp = {
        "temperature": temperature,
        "similarity_temperature": similarity_temperature,
        "beam_width": beam_width,
        "kappa": kappa,
        "rounding": rounding,
        "prefilter": prefilter,
    }
    hp = {name: value for name, value in hp.items() if value is not None}
    emb = None if embeddings is None else load_embeddings(embeddings)
    valid = None if mask is None else np.asarray(_parse_mask(mask, len(values)))

    import jax

    import dora_jax

    key = None if seed is None else jax.random.key(seed)
    note = None
    if method == "dora" and emb is None:
        note = "no --embeddings: every candidate is its own direction, so DORA equals REBASE"
    array = np.asarray(values, np.float32)
    try:
        counts = dora_jax.allocate(method, array, budget, key=key, embeddings=emb, mask=valid, **hp)
        weights = None
        if method in ("rebase", "dora", "temperature_sampling"):
            whp = {k: v for k, v in hp.items() if k != "rounding"}
            if method == "dora" and whp.get("prefilter", "none") != "none":
                whp["budget"] = budget
            weights = dora_jax.allocation_weights(method, array, embeddings=emb, mask=valid, **whp)
    except ValueError as error:
        fail(str(error))
    counts = [int(c) for c in np.asarray(counts)]
    shares = None if weights is None else [float(w) for w in np.asarray(weights)]
    if as_json:
        record = {"method": method, "budget": budget, "scores": values, "allocation": counts}
        record["weights"] = shares
        record["hyperparameters"] = hp
        record["note"] = note
        typer.echo(json.dumps(record))
        return
    if note:
        typer.echo(f"note: {note}")
    typer.echo(f"{method}: N = {budget} over K = {len(values)} candidates")
    header = f"{'i':>4} {'score':>10} " + (f"{'share':>10} " if shares else "") + f"{'rollouts':>9}"
    typer.echo(header)
    for i, (score, count) in enumerate(zip(values, counts, strict=True)):
        share = f"{shares[i]:>10.4f} " if shares else ""
        typer.echo(f"{i:>4} {score:>10.4g} {share}{count:>9}")
    typer.echo(f"{'sum':>4} {'':>10} " + (f"{'':>10} " if shares else "") + f"{sum(counts):>9}")


@app.command()
def simulate(
    preset: Annotated[
        str | None,
        typer.Option(
            help="World preset: independent, redundant, paper-like, reliable-prm, paraphrase, "
            "noisy-prm (default paper-like)."
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML experiment file (see README).")] = None,
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated methods (default: the paper's five).")
    ] = None,
    budgets: Annotated[
        str | None, typer.Option(help="Comma-separated budgets N (default 16,32,64,128,256).")
    ] = None,
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
) -> None:
    """Monte Carlo search on a synthetic reasoning-tree world: methods × budgets × seeds."""
    from simulations import spec as spec_lib

    if preset is not None and config is not None:
        fail("give --preset or --config, not both")
    try:
        if config is not None:
            spec = spec_lib.load_spec(config)
        else:
            spec = spec_lib.build_spec(world=preset or "paper-like")
        overrides = {}
        if methods is not None:
            overrides["methods"] = [m for m in methods.split(",") if m]
        if budgets is not None:
            try:
                overrides["budgets"] = [int(b) for b in budgets.split(",") if b]
            except ValueError:
                fail(f"--budgets must be comma-separated integers, got {budgets!r}")
        for name, value in (("problems", problems), ("seeds", seeds), ("max_rounds", max_rounds)):
            if value is not None:
                overrides[name] = value
        if overrides:
            current = {
                "world": spec.world_name if config is None else None,
                "methods": [dict(r.hyperparameters, method=r.method) for r in spec.rules],
                "budgets": list(spec.budgets),
                "problems": spec.problems,
                "seeds": spec.seeds,
                "max_rounds": spec.max_rounds,
                "policy": spec.policy,
            }
            current.update(overrides)
            world = current.pop("world")
            rebuilt = spec_lib.build_spec(world=world or "paper-like", **current)
            spec = dataclasses.replace(rebuilt, world=spec.world, world_name=spec.world_name)
    except spec_lib.SpecError as error:
        fail(str(error))
    if kappa_from is not None:
        spec = dataclasses.replace(spec, rules=with_kappa(spec.rules, load_kappa(kappa_from)))
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    _run_simulation(spec, out, plots=plots, as_json=as_json)


def _run_simulation(spec, out: Path, *, plots: bool, as_json: bool) -> None:
    import time

    from simulations import runner

    total = len(spec.budgets) * spec.seeds * len(spec.rules)
    start = time.perf_counter()
    with _progress_bar() as bar:
        task = bar.add_task(f"simulating ({spec.world_name})", total=total)
        records = runner.run(
            spec, progress=lambda label: bar.update(task, advance=1, description=label)
        )
    elapsed = time.perf_counter() - start
    rows = runner.aggregate(records)
    out.mkdir(parents=True, exist_ok=True)
    runner.write_jsonl(out / "results.jsonl", records)
    runner.write_atomic(
        out / "summary.json",
        json.dumps({"spec": spec.describe(), "rows": rows, "seconds": elapsed}, indent=1),
    )
    images = runner.plot(rows, out, f"world: {spec.world_name}") if plots else []
    if as_json:
        typer.echo(json.dumps([runner.public_record(r) for r in records]))
        return
    typer.echo(
        f"world {spec.world_name}: {spec.problems} problems × {spec.seeds} seed(s), "
        f"T_max = {spec.max_rounds}, {elapsed:.1f} s"
    )
    typer.echo(runner.summary_table(rows))
    labels = [r.label for r in spec.rules]
    if "rebase" in labels and len(labels) > 1:
        typer.echo("\npaired difference vs rebase (accuracy points, 95% CI over problems × seeds)")
        for d in runner.paired_differences(records, "rebase"):
            typer.echo(
                f"  {d['method']:<22} N={d['budget']:<4} "
                f"{100 * d['difference']:+6.2f} ± {100 * d['ci95']:.2f}"
            )
    typer.echo(f"\nwrote {out / 'results.jsonl'}" + "".join(f", {p}" for p in images))


@app.command()
def bench(
    backend: Annotated[str, typer.Option(help="sim (the synthetic world) or vllm.")] = "sim",
    recipe: Annotated[
        str | None, typer.Option(help="A recipe TOML file or a shipped recipe's name.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="math500, aime2024, aime2025 or a JSONL path.")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder of the named datasets (default ../shared/data).")
    ] = None,
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated methods (default: the paper's five).")
    ] = None,
    budgets: Annotated[
        str | None, typer.Option(help="Comma-separated budgets N (default 16,32,64,128,256).")
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds 0..S-1 (default 1).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first P problems.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Problems per engine batch.")] = None,
    max_rounds: Annotated[int | None, typer.Option(help="T_max (default 40).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder (resumable).")] = Path("runs/bench"),
    plots: Annotated[bool, typer.Option(help="Write the PNG plots.")] = True,
    kappa_from: Annotated[
        Path | None, typer.Option(help="κ for optimal/bayes from a `dora calibrate --out` file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
) -> None:
    """The search on MATH500 / AIME: simulated or with a real model stack; resumable."""
    from backends import bench as bench_lib
    from backends import datasets
    from backends import recipe as recipe_lib
    from simulations import spec as spec_lib
    from simulations.spec import PAPER_BUDGETS, PAPER_METHODS

    if backend not in ("sim", "vllm"):
        fail(f"unknown backend {backend!r}; choose sim or vllm")
    try:
        rec = recipe_lib.load(recipe)
    except recipe_lib.RecipeError as error:
        fail(str(error))
    settings = dict(rec.search)
    if methods is not None:
        settings["methods"] = [m for m in methods.split(",") if m]
    if budgets is not None:
        try:
            settings["budgets"] = [int(b) for b in budgets.split(",") if b]
        except ValueError:
            fail(f"--budgets must be comma-separated integers, got {budgets!r}")
    for name, value in (
        ("dataset", dataset),
        ("seeds", seeds),
        ("limit", limit),
        ("batch_size", batch_size),
        ("max_rounds", max_rounds),
    ):
        if value is not None:
            settings[name] = value
    count = settings.get("seeds", 1)
    if not isinstance(count, int) or count < 1:
        fail(f"seeds must be an integer >= 1, got {count!r}")
    lim = settings.get("limit")
    if lim is not None and (not isinstance(lim, int) or lim < 1):
        fail(f"limit must be an integer >= 1, got {lim!r}")
    try:
        problems = datasets.load_dataset(
            settings.get("dataset", "math500"), data_dir=data_dir, limit=lim
        )
    except datasets.DatasetError as error:
        fail(str(error))
    try:
        rules = [spec_lib.parse_rule(m) for m in settings.get("methods", list(PAPER_METHODS))]
    except spec_lib.SpecError as error:
        fail(str(error))
    if kappa_from is not None:
        rules = list(with_kappa(rules, load_kappa(kappa_from)))
    try:
        spec = bench_lib.BenchSpec(
            problems=tuple(problems),
            rules=tuple(rules),
            budgets=tuple(sorted(set(settings.get("budgets", list(PAPER_BUDGETS))))),
            seeds=tuple(range(count)),
            backend=backend,
            world=rec.world,
            max_rounds=settings.get("max_rounds", 40),
            batch_size=settings.get("batch_size"),
            model_sizes=rec.models,
        )
    except bench_lib.BenchError as error:
        fail(str(error))
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    make_world = None
    if backend == "vllm":
        make_world = _vllm_world(rec)
    _run_bench(spec, out, make_world, rec, plots=plots, as_json=as_json)


def _vllm_world(rec):
    """A HostWorld factory over a VLLMBackend built from the recipe's [vllm] table."""
    from backends import recipe as recipe_lib

    if not rec.vllm.get("policy"):
        fail("--backend vllm needs a recipe with a [vllm] table naming at least the policy")
    try:
        recipe_lib.check_model_paths(rec.vllm)
    except recipe_lib.RecipeError as error:
        fail(str(error))
    try:
        from backends.host_world import HostWorld
        from backends.vllm_backend import VLLMBackend, VLLMSettings
    except ImportError as error:
        fail(f"the vllm backend cannot be imported ({error}); see the README's vLLM section")
    try:
        settings = VLLMSettings(**rec.vllm)
    except (TypeError, ValueError) as error:
        fail(f"[vllm] in {rec.path}: {str(error).splitlines()[0]}")
    try:
        backend = VLLMBackend(settings)
    except ImportError as error:
        fail(f"vLLM is not installed here ({error}); see the README's vLLM section")
    except Exception as error:  # model loading: report one line, whatever vLLM raised
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        fail(f"cannot start the vLLM backend: {first}")
    return lambda problems: HostWorld(backend, problems)


def _run_bench(spec, out: Path, make_world, rec, *, plots: bool, as_json: bool) -> None:
    import time

    from backends import bench as bench_lib

    total = len(spec.units()) * len(spec.problems)
    start = time.perf_counter()
    try:
        with _progress_bar() as bar:
            task = bar.add_task(f"bench ({spec.backend})", total=total)
            records = bench_lib.run(
                spec,
                out,
                make_world=make_world,
                progress=lambda label, n: bar.update(task, advance=n, description=label),
            )
    except bench_lib.BenchError as error:
        fail(str(error))
    except Exception as error:  # the model stack failed mid-run: finished units are on disk
        lines = [x for x in str(error).splitlines() if x.strip()]
        raise RunError(
            f"the run stopped ({type(error).__name__}: {lines[-1] if lines else ''}); finished "
            f"problems are in {out / 'results.jsonl'}: rerun the same command to resume"
        ) from None
    elapsed = time.perf_counter() - start
    rows = bench_lib.summarize(records)
    runner_write = out / "summary.json"
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps({"rows": rows, "seconds": elapsed}, indent=1))
    os.replace(tmp, runner_write)
    dataset = spec.problems[0].dataset
    images = bench_lib.plot(rows, records, out, f"{dataset}, {spec.backend}") if plots else []
    if as_json:
        typer.echo(json.dumps(bench_lib.seed_records(records)))
        return
    typer.echo(
        f"{dataset}: {len(spec.problems)} problems × {len(spec.seeds)} seed(s), backend "
        f"{spec.backend}"
        + (f" (world {rec.world_name})" if spec.backend == "sim" else "")
        + f", {elapsed:.1f} s"
    )
    typer.echo(bench_lib.summary_table(rows))
    typer.echo(f"\nwrote {out / 'results.jsonl'}" + "".join(f", {p}" for p in images))


def read_records(path: Path):
    """Calibration records from JSONL lines {"problem", "score", "rollouts", "correct"} → [P, K]."""
    import numpy as np

    if not path.is_file():
        fail(f"records file not found: {path}")
    by_problem: dict[str, list[tuple[float, int, int]]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            fail(f"{path} line {n} is not JSON")
        missing = [k for k in ("problem", "score", "rollouts", "correct") if k not in row]
        if missing:
            fail(f"{path} line {n} lacks {missing[0]!r}")
        try:
            unit = (float(row["score"]), int(row["rollouts"]), int(row["correct"]))
        except (TypeError, ValueError):
            fail(f"{path} line {n}: score must be a number, rollouts and correct integers")
        by_problem.setdefault(str(row["problem"]), []).append(unit)
    if not by_problem:
        fail(f"{path} has no records")
    width = max(len(v) for v in by_problem.values())
    shape = (len(by_problem), width)
    score = np.full(shape, 0.5, np.float32)
    m, c, mask = np.zeros(shape, np.int32), np.zeros(shape, np.int32), np.zeros(shape, bool)
    for i, units in enumerate(by_problem.values()):
        for j, (w, r, k) in enumerate(units):
            score[i, j], m[i, j], c[i, j], mask[i, j] = w, r, k, True
    return score, m, c, mask


@app.command()
def calibrate(
    preset: Annotated[
        str | None, typer.Option(help="Probe a simulated world (default paper-like).")
    ] = None,
    records: Annotated[
        Path | None,
        typer.Option(help='JSONL of {"problem", "score", "rollouts", "correct"} per unit.'),
    ] = None,
    problems: Annotated[int, typer.Option(help="Simulated problems P.")] = 200,
    candidates: Annotated[int, typer.Option(help="Simulated candidates per problem K.")] = 16,
    depth: Annotated[int, typer.Option(help="Steps before scoring (simulated).")] = 2,
    rollouts: Annotated[int, typer.Option(help="Rollouts per candidate m (simulated).")] = 8,
    method: Annotated[str, typer.Option(help="nuts, svi or auto (nuts up to 20k units).")] = "auto",
    calibration: Annotated[str, typer.Option(help="identity or logistic.")] = "identity",
    pooling: Annotated[str, typer.Option(help="complete or partial.")] = "complete",
    samples: Annotated[int, typer.Option(help="Posterior draws (per NUTS chain).")] = 1000,
    warmup: Annotated[int, typer.Option(help="NUTS warmup steps.")] = 500,
    chains: Annotated[int, typer.Option(help="NUTS chains.")] = 2,
    svi_steps: Annotated[int, typer.Option(help="SVI steps.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the probe and the sampler.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Write the posterior JSON here (for --kappa-from).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the posterior summary.")] = False,
) -> None:
    """Fits the PRM reliability κ (and a calibration map) from Monte Carlo rollout labels."""
    import jax
    import numpy as np

    from dora_jax import calibration as cal

    if preset is not None and records is not None:
        fail("give --preset or --records, not both")
    for name, value in (("method", method), ("calibration", calibration), ("pooling", pooling)):
        allowed = {
            "method": ("auto", *cal.METHODS),
            "calibration": cal.CALIBRATIONS,
            "pooling": cal.POOLINGS,
        }[name]
        if value not in allowed:
            fail(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
    for name, value in (
        ("problems", problems),
        ("candidates", candidates),
        ("rollouts", rollouts),
        ("samples", samples),
        ("chains", chains),
        ("svi-steps", svi_steps),
    ):
        if value < 1:
            fail(f"--{name} must be >= 1, got {value}")
    if depth < 0 or warmup < 0:
        fail("--depth and --warmup must be >= 0")
    if out is not None and out.exists() and out.is_dir():
        fail(f"--out {out} is a folder; give a file name")
    truth = None
    if records is not None:
        data = read_records(records)
        source = {"records": str(records)}
    else:
        from dora_jax import world as world_lib
        from dora_jax.probe import probe
        from dora_jax.search import SyntheticWorld

        try:
            config = world_lib.preset(preset or "paper-like")
        except ValueError as error:
            fail(str(error))
        world = SyntheticWorld(config)
        k_problems, k_probe = jax.random.split(jax.random.key(seed))
        batch = jax.vmap(world.sample_problem)(jax.random.split(k_problems, problems))
        run = jax.jit(
            jax.vmap(
                lambda k, p: probe(
                    k, p, world, candidates=candidates, depth=depth, rollouts=rollouts
                )
            )
        )
        r = run(jax.random.split(k_probe, problems), batch)
        data = tuple(np.asarray(x) for x in (r.score, r.rollouts, r.correct, r.mask))
        truth = {"kappa": config.kappa, "alpha": config.alpha, "prm_mode": config.prm_mode}
        source = {
            "preset": preset or "paper-like",
            "problems": problems,
            "candidates": candidates,
            "depth": depth,
            "rollouts": rollouts,
            "seed": seed,
        }
    units = int(np.asarray(data[3]).sum())
    chosen = method if method != "auto" else ("nuts" if units <= 20_000 else "svi")
    try:
        posterior = cal.fit_kappa(
            jax.random.key(seed + 1),
            cal.Records(*(jax.numpy.asarray(x) for x in data)),
            method=chosen,
            calibration=calibration,
            pooling=pooling,
            num_warmup=warmup,
            num_samples=samples,
            num_chains=chains,
            svi_steps=svi_steps,
        )
    except ValueError as error:
        fail(str(error).splitlines()[0])
    result = cal.summary(posterior)
    result["kappa"] = cal.point_estimate(posterior)
    result["units"] = units
    result["source"] = source
    if truth is not None:
        result["world"] = truth
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, out)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in result.items() if k not in ("samples", "loss")}))
        return
    lo, hi = posterior.kappa_interval
    typer.echo(f"κ from {units} units ({chosen}, calibration {calibration}, pooling {pooling})")
    typer.echo(
        f"  κ median {posterior.kappa_median:.4g}, mean {posterior.kappa_mean:.4g}, "
        f"90% interval [{lo:.4g}, {hi:.4g}]"
    )
    if chosen == "nuts":
        typer.echo(
            f"  R-hat {posterior.r_hat:.3f}, ESS {posterior.ess:.0f}, "
            f"divergences {posterior.divergences}"
        )
    else:
        typer.echo(f"  −ELBO {result['loss_first']:.4g} → {result['loss_final']:.4g}")
    for name, d in result["calibration_params"].items():
        typer.echo(f"  {name}: {json.dumps(d)}")
    if truth is not None:
        note = (
            "exact model: the interval should cover it"
            if truth["alpha"] == float("inf") and truth["prm_mode"] == "beta"
            else "rollouts share children (α < ∞) or the PRM breaks Eq. 6: expect κ_eff < κ"
        )
        typer.echo(f"  the world's κ = {truth['kappa']:g} ({note})")
    if out is not None:
        typer.echo(f"wrote {out} (use it with --kappa-from)")


def load_kappa(path: Path) -> float:
    """The point estimate of κ saved by `dora calibrate --out`."""
    if not path.is_file():
        fail(f"--kappa-from file not found: {path}")
    try:
        value = json.loads(path.read_text())["kappa"]
    except (json.JSONDecodeError, KeyError, TypeError):
        fail(f"{path} is not a `dora calibrate --out` file (no 'kappa')")
    if not isinstance(value, int | float) or not value > 0:
        fail(f"{path}: kappa must be a positive number, got {value!r}")
    return float(value)


def with_kappa(rules, kappa: float):
    """Rules that take κ (optimal, bayes) get `kappa` unless they set it themselves."""
    from dora_jax.api import RULES
    from dora_jax.search import Rule

    out = []
    for rule in rules:
        hp = dict(rule.hyperparameters)
        if "kappa" in RULES[rule.method].defaults and "kappa" not in hp:
            rule = Rule.make(rule.method, **hp, kappa=float(f"{kappa:.4g}"))  # a short label
        out.append(rule)
    return tuple(out)


def _progress_bar():
    """The progress bar of the long commands: on stderr, cleared when done."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _claim_ids_help() -> str:
    from theory import CLAIM_IDS  # no JAX import: the ids are a plain tuple

    return "Comma-separated claim ids (default: all): " + ", ".join(CLAIM_IDS) + "."


@app.command()
def verify(
    only: Annotated[str | None, typer.Option(help=_claim_ids_help())] = None,
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
) -> None:
    """Check the paper's claims numerically: each claim declares its quantity, region and
    tolerance before measuring, and is judged holds, holds-approximately, fails or
    inconclusive."""
    import time

    ids = None if only is None else [i.strip() for i in only.split(",") if i.strip()]
    if thorough and fast:
        fail("--thorough and --fast exclude each other")
    if ids is not None and not ids:
        fail("--only is empty")
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    from theory import CLAIM_IDS

    if ids is not None:
        unknown = [i for i in ids if i not in CLAIM_IDS]
        if unknown:
            fail(f"unknown claim id(s) {', '.join(unknown)}; choose from {', '.join(CLAIM_IDS)}")
    from theory import runner

    mode = "thorough" if thorough else "fast" if fast else "default"
    total = (len(ids) if ids is not None else len(runner.claim_ids())) * (2 if controls else 1)
    start = time.perf_counter()
    cpu = time.process_time()
    with _progress_bar() as bar:
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


def _enable_compilation_cache() -> None:
    """Reuse compiled searches across runs (XLA compilation of a search takes seconds).

    The cache lives in $DORA_JAX_CACHE (default ~/.cache/dora-jax/xla); DORA_JAX_CACHE=off
    disables it.
    """
    folder = os.environ.get("DORA_JAX_CACHE", str(Path.home() / ".cache" / "dora-jax" / "xla"))
    if folder.lower() in ("off", "0", "none", ""):
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the command, turning every usage error into one line and status 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _enable_compilation_cache()
    try:
        result = app(args=argv, prog_name="dora", standalone_mode=False)
    except UsageError as error:
        typer.echo(f"dora: error: {error}", err=True)
        return 2
    except RunError as error:
        typer.echo(f"dora: error: {error}", err=True)
        return 1
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        typer.echo("dora: aborted", err=True)
        return 130
    except Exception as error:
        # Parsing errors of the CLI library (missing or malformed options, unknown commands)
        # carry `format_message`; anything else is a bug and keeps its traceback.
        if not hasattr(error, "format_message"):
            raise
        if type(error).__name__ == "NoArgsIsHelpError":
            return 2
        typer.echo(f"dora: error: {error.format_message()} (see dora --help)", err=True)
        return 2
    return result if isinstance(result, int) else 0


@app.callback()
def _root() -> None:
    """dora-jax: optimal rollout allocation for test-time scaling (DORA, NeurIPS 2025)."""


def run() -> None:
    """Console-script wrapper: exit with `main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    run()
