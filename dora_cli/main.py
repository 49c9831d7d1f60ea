"""The `dora` command: the one place that imports every layer (dora_jax, backends, theory, ...).

Bad input prints one line (`dora: error: ...`) to stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

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


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the command, turning every usage error into one line and status 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        result = app(args=argv, prog_name="dora", standalone_mode=False)
    except UsageError as error:
        typer.echo(f"dora: error: {error}", err=True)
        return 2
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
