"""`dora allocate`: one problem's rollout budget over K scored candidates (`dora_jax.allocate`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dora_cli._common import (
    MAX_BUDGET,
    check_budget,
    check_choice,
    check_count,
    check_seed,
    fail,
    first_line,
    methods_help,
    parse_floats,
    parse_mask,
)


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
        fail(f"cannot read embeddings from {path}: {first_line(error)}")
    if array.ndim != 2:
        fail(f"embeddings in {path} must be a [K, E] matrix, got shape {array.shape}")
    return array.astype(np.float32)


def allocate(
    scores: Annotated[str, typer.Option(help="Comma-separated PRM scores, e.g. 0.9,0.9,0.7.")],
    budget: Annotated[int, typer.Option(help="Rollout budget N (1 to 2**20).")],
    method: Annotated[str, typer.Option(help=methods_help())] = "dora",
    embeddings: Annotated[
        Path | None,
        typer.Option(help="[K, E] embeddings (.npy, .json, .csv or whitespace text); dora, bayes."),
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
    kappa: Annotated[
        float | None, typer.Option(help="κ for optimal and bayes (default 1.0).")
    ] = None,
    rounding: Annotated[
        str | None, typer.Option(help="hamilton (default) or round_half_even_then_cycle.")
    ] = None,
    prefilter: Annotated[
        str | None, typer.Option(help="dora: none (default) or rebase_round.")
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="learned: a `dora train` checkpoint file, or 'shipped' (the default, fine-tuned "
            "end to end) or 'imitation' (its first stage)."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Break ties at random with this seed, 0 to 2**32-1 (default: by index)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Allocate a rollout budget over K candidates and print the counts (Σ = N exactly)."""
    import numpy as np

    import dora_jax

    check_choice("method", method, dora_jax.METHODS)
    values = parse_floats(scores, "--scores")
    check_budget(budget)
    check_count("--beam-width", beam_width, high=MAX_BUDGET)  # a beam wider than N is moot
    check_seed(seed)
    hp = {
        "temperature": temperature,
        "similarity_temperature": similarity_temperature,
        "beam_width": beam_width,
        "kappa": kappa,
        "rounding": rounding,
        "prefilter": prefilter,
        "checkpoint": checkpoint,
    }
    hp = {name: value for name, value in hp.items() if value is not None}
    emb = None if embeddings is None else load_embeddings(embeddings)
    valid = None if mask is None else np.asarray(parse_mask(mask, len(values)))

    import jax

    from dora_jax.api import RULES

    key = None if seed is None else jax.random.key(seed)
    note = None
    if method == "dora" and emb is None:
        note = "no --embeddings: every candidate is its own direction, so DORA equals REBASE"
    array = np.asarray(values, np.float32)
    try:
        counts = dora_jax.allocate(method, array, budget, key=key, embeddings=emb, mask=valid, **hp)
        weights = None
        if RULES[method].weights is not None:  # the rules with continuous shares
            whp = {k: v for k, v in hp.items() if k != "rounding"}
            if whp.get("prefilter", "none") != "none":
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
