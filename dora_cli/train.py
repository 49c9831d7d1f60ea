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
    finetune_from: Annotated[
        str | None,
        typer.Option(
            help="Fine-tune this checkpoint ('imitation': the packaged first stage, 'shipped': "
            "the packaged default, or a file) end to end on the simulated "
            "search's accuracy (REINFORCE) instead of training afresh; uses the --e2e-* options."
        ),
    ] = None,
    e2e_steps: Annotated[int, typer.Option(help="Fine-tuning steps to reach (default 360).")] = 360,
    e2e_worlds: Annotated[
        str, typer.Option(help="Comma-separated fine-tuning worlds.")
    ] = "paper-like,paraphrase,hard-corner",
    e2e_budgets: Annotated[
        str, typer.Option(help="Comma-separated fine-tuning budgets N.")
    ] = "16,64",
    e2e_problems: Annotated[int, typer.Option(help="Problems per fine-tuning step.")] = 64,
    rollouts: Annotated[
        int, typer.Option(help="Searches per problem (leave-one-out baseline, >= 2).")
    ] = 4,
    e2e_lr: Annotated[float, typer.Option(help="Fine-tuning learning rate (Adam).")] = 1e-3,
    anchor: Annotated[
        float, typer.Option(help="Weight of ||theta - theta_start||^2/2 in fine-tuning.")
    ] = 1.0,
    reward: Annotated[
        str, typer.Option(help="Fine-tuning reward: accuracy or correct_fraction.")
    ] = "accuracy",
) -> None:
    """Train the `learned` allocator (amortized Eq. 7) on simulated search states."""
    from simulations import train as train_lib

    check_out(out, folder=False)
    if finetune_from is not None:
        if worlds is not None or budgets is not None or problems is not None:
            fail(
                "--worlds, --budgets, --problems set the first stage; "
                "with --finetune-from use --e2e-*"
            )
        _finetune(
            out,
            finetune_from,
            e2e_steps,
            e2e_worlds,
            e2e_budgets,
            e2e_problems,
            rollouts,
            e2e_lr,
            anchor,
            reward,
            seed,
            resume,
        )
        return
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


def _finetune(
    out: Path,
    start: str,
    steps: int,
    worlds: str,
    budgets: str,
    problems: int,
    rollouts: int,
    learning_rate: float,
    anchor: float,
    reward: str,
    seed: int,
    resume: bool,
) -> None:
    """`dora train --finetune-from`: end-to-end fine-tuning (simulations.finetune)."""
    from simulations import finetune as finetune_lib

    check_count("--e2e-steps", steps, high=10**6)
    check_count("--e2e-problems", problems, high=10**5)
    check_count("--rollouts", rollouts, low=2, high=1024)
    check_seed(seed)
    names = unique(split_list(worlds, "--e2e-worlds"), "--e2e-worlds")
    sizes = check_budgets(parse_budgets(budgets), "--e2e-budgets")
    if max(sizes) > 4096:
        fail(f"--e2e-budgets must be <= 4096, got {max(sizes)}")
    try:
        settings = finetune_lib.FinetuneSettings(
            start=start,
            e2e_worlds=tuple(names),
            e2e_budgets=tuple(sizes),
            e2e_problems=problems,
            rollouts=rollouts,
            learning_rate=learning_rate,
            anchor=anchor,
            reward=reward,
            seed=seed,
        ).resolved()
        done = int(finetune_lib.resume_point(out, settings)["step"]) if resume else 0
    except ValueError as error:
        fail(first_line(error))
    if done >= steps:
        fail(f"{out} is already at step {done} >= --e2e-steps {steps}")
    with progress_bar() as bar:
        task = bar.add_task(
            "fine-tuning (compiles each world, N first)", total=steps, completed=done
        )

        def on_step(step: int, mean: float):
            bar.update(task, completed=step, description=f"mean reward {mean:.3f}")

        result = finetune_lib.finetune(settings, steps, out, resume=resume, on_step=on_step)
    typer.echo(f"wrote {out} (fine-tuning step {result.step}, from {start})")
    if result.log:
        first = sum(r for *_, r in result.log[: len(settings.pairs)]) / min(
            len(result.log), len(settings.pairs)
        )
        last = sum(r for *_, r in result.log[-len(settings.pairs) :]) / min(
            len(result.log), len(settings.pairs)
        )
        typer.echo(
            f"mean reward of the sampled policy: first {len(settings.pairs)} steps {first:.3f}, "
            f"last {len(settings.pairs)} steps {last:.3f} (different problems: noisy)"
        )
