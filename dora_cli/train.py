"""`dora train`: train the `learned` rule's network in the synthetic world (simulations.train)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dora_cli._common import (
    check_budgets,
    check_count,
    check_out,
    check_seed,
    fail,
    first_line,
    parse_budgets,
    progress_bar,
    split_list,
    unique,
)

DEFAULT_STEPS = 800


def _world_names() -> str:
    from simulations.train import TRAINING_WORLDS

    return ",".join(TRAINING_WORLDS)


def train(
    out: Annotated[Path, typer.Option(help="The checkpoint file to write (msgpack).")],
    worlds: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated training worlds: presets or the training mixtures "
            f"(default {_world_names()})."
        ),
    ] = None,
    steps: Annotated[
        int, typer.Option(help=f"Optimizer steps to reach (default {DEFAULT_STEPS}).")
    ] = DEFAULT_STEPS,
    budgets: Annotated[
        str | None, typer.Option(help="Comma-separated budgets N trained on (default 16,64,256).")
    ] = None,
    problems: Annotated[
        int | None, typer.Option(help="Problems searched per world for states (default 40).")
    ] = None,
    seed: Annotated[int, typer.Option(help="The run's seed, 0 to 2**32-1 (default 0).")] = 0,
    resume: Annotated[
        bool, typer.Option(help="Continue the run saved in --out (same settings).")
    ] = False,
) -> None:
    """Train the `learned` allocator (amortized Eq. 7) on simulated search states."""
    from simulations import train as train_lib

    check_out(out, folder=False)
    check_count("--steps", steps, high=10**7)
    check_seed(seed)
    check_count("--problems", problems, low=5, high=10**6)
    names = (
        unique(split_list(worlds, "--worlds"), "--worlds")
        if worlds is not None
        else list(train_lib.TRAINING_WORLDS)
    )
    try:
        for name in names:
            train_lib.world_config(name)
    except ValueError as error:
        fail(str(error))
    settings = train_lib.TrainSettings(
        worlds=tuple(names),
        seed=seed,
        **({"budgets": tuple(check_budgets(parse_budgets(budgets)))} if budgets else {}),
        **({"problems": problems} if problems is not None else {}),
    )
    if max(settings.budgets) > 4096:
        fail(f"--budgets must be <= 4096 for training, got {max(settings.budgets)}")
    if resume:
        try:
            done = int(train_lib.resume_point(out, settings)["step"])
        except ValueError as error:
            fail(first_line(error))
        if done >= steps:
            fail(f"{out} is already at step {done} >= --steps {steps}")
    else:
        done = 0
    with progress_bar() as bar:
        data = bar.add_task("training states", total=len(settings.worlds))
        task = bar.add_task("training", total=steps, completed=done, visible=False)

        def on_data():
            bar.advance(data)

        def on_step(step: int, loss: float):
            bar.update(data, visible=False)
            bar.update(task, completed=step, visible=True, description=f"loss {loss:.4f}")

        result = train_lib.train(
            settings, steps, out, resume=resume, on_data=on_data, on_step=on_step
        )
    before, after = result.held_out_loss
    typer.echo(f"wrote {out} (step {result.step})")
    typer.echo(f"relaxed loss on the held-out states: {before:.4f} at step {done} -> {after:.4f}")
    typer.echo(train_lib.validation_summary(result))
