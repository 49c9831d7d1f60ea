"""What the commands share: the error types, parsing of comma lists, bounds, the progress bar, and
the help text generated from the registries (methods, world presets, claim ids).

A user mistake is `fail(message)`: `main` prints `dora: error: message` (one line) and exits 2.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

import dora_jax

T = TypeVar("T")

# The largest rollout budget N: the core's bound (Σ B = N stays exact in float32 shares).
MAX_BUDGET = dora_jax.MAX_BUDGET

# Counts that end up as int32 array sizes or loop bounds (problems, seeds, rounds).
MAX_COUNT = 2**31 - 1

# `jax.random.key(seed)` keeps the seed's low 32 bits (without x64): 2**32 + 7 gives the key of 7
# and a seed past 2**63 overflows. So a seed is 0 ≤ seed ≤ 2**32 − 1, where distinct seeds are
# distinct keys.
MAX_SEED = 2**32 - 1


class UsageError(Exception):
    """A user mistake: reported as one line, exit status 2."""


class RunError(Exception):
    """A run that stopped part way (e.g. the model engine crashed): one line, status 1."""


def fail(message: str) -> NoReturn:
    raise UsageError(message)


def first_line(error: BaseException) -> str:
    """An exception as one line (its message's first line, or its type's name)."""
    lines = [x for x in str(error).splitlines() if x.strip()]
    return lines[0] if lines else type(error).__name__


# ---------------------------------------------------------------------------------------------
# Parsing and bounds


def split_list(text: str, what: str) -> list[str]:
    """Items of a comma-separated option (spaces ignored); empty → error."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        fail(f"{what} is empty")
    return items


def unique(items: Sequence[T], what: str) -> list[T]:
    """`items` unchanged, or an error naming the first repeated one.

    One rule for every list option: a repeat is a mistake (a typo, or a copy that would run the
    same thing twice), never silently dropped.
    """
    seen: set[T] = set()
    for item in items:
        if item in seen:
            fail(f"{what} repeats {item!r}; give each once")
        seen.add(item)
    return list(items)


def parse_floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in split_list(text, what)]
    except ValueError:
        fail(f"{what} must be comma-separated numbers, got {text!r}")


def parse_mask(text: str, k: int) -> list[bool]:
    table = {"1": True, "0": False, "true": True, "false": False}
    items = [x.strip().lower() for x in text.split(",")]
    if any(x not in table for x in items):
        fail(f"--mask must be comma-separated 1/0 values, got {text!r}")
    if len(items) != k:
        fail(f"--mask has {len(items)} entries but --scores has {k}")
    return [table[x] for x in items]


def check_budget(budget: int, what: str = "budget") -> int:
    """1 ≤ N ≤ MAX_BUDGET, before any work (see MAX_BUDGET for the upper bound)."""
    if not isinstance(budget, int) or isinstance(budget, bool):
        fail(f"{what} must be an integer, got {budget!r}")
    if budget < 1:
        fail(f"{what} must be >= 1, got {budget}")
    if budget > MAX_BUDGET:
        fail(f"{what} must be <= {MAX_BUDGET} (2**20), got {budget}")
    return budget


def check_budgets(budgets: Sequence[int], what: str = "budgets") -> list[int]:
    """Every budget bounded (`check_budget`), none repeated."""
    for b in budgets:
        check_budget(b, what)
    return unique(budgets, what)


def parse_budgets(text: str) -> list[int]:
    """--budgets: comma-separated integers in [1, MAX_BUDGET], each once."""
    try:
        values = [int(x) for x in split_list(text, "--budgets")]
    except ValueError:
        fail(f"--budgets must be comma-separated integers, got {text!r}")
    return check_budgets(values, "--budgets")


def parse_methods(text: str) -> list[str]:
    """--methods: comma-separated rule names, each once (unknown names are the library's call)."""
    return unique(split_list(text, "--methods"), "--methods")


def check_count(name: str, value: int | None, low: int = 1, high: int = MAX_COUNT) -> None:
    """An integer option (None: not given) within [low, high]."""
    if value is None:
        return
    if value < low:
        fail(f"{name} must be >= {low}, got {value}")
    if value > high:
        fail(f"{name} must be <= {high}, got {value}")


def check_seed(seed: int | None, name: str = "--seed") -> None:
    check_count(name, seed, low=0, high=MAX_SEED)


def check_out(out: Path, *, folder: bool = True, name: str = "--out") -> None:
    """`out` can be written (a folder, or with `folder=False` a file), checked before any work.

    The nearest existing folder on the way to `out` must take a new file (probed with a temporary
    file that vanishes at once; permission bits alone say nothing for root or a read-only mount).
    Nothing is created.
    """
    if folder and out.exists() and not out.is_dir():
        fail(f"{name} {out} exists and is not a folder")
    if not folder and out.is_dir():
        fail(f"{name} {out} is a folder; give a file name")
    if out.exists() and not folder and not os.access(out, os.W_OK):
        fail(f"{name} {out} is not writable")
    place = out if folder else out.parent
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        fail(f"{name} {out} cannot be created: {place} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=place):
            pass
    except OSError as error:
        fail(f"{name} {out} is not writable ({error.strerror or type(error).__name__} in {place})")


def check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        fail(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")


# ---------------------------------------------------------------------------------------------
# Help text from the registries (so a new rule, preset or claim shows up without a CLI edit)


def method_names() -> str:
    """The allocation rules, from the registry (`dora_jax.RULES`): the one place the method help
    is built, so a newly registered rule appears in every command's help."""
    import dora_jax

    return ", ".join(dora_jax.RULES)


def method_descriptions() -> str:
    """Every registered rule with its one-line description (its equation in the paper)."""
    import dora_jax

    return "; ".join(f"{name}: {info.description}" for name, info in dora_jax.RULES.items())


def methods_help(default: Sequence[str] | None = None) -> str:
    """--method's help (one rule), or --methods' help (a list, with its `default`)."""
    if default is None:
        return f"The allocation rule. {method_descriptions()}."
    return (
        f"Comma-separated methods, each once, from: {method_names()} (default {joined(default)})."
    )


def preset_names() -> str:
    from dora_jax import world
    from dora_jax.paper_worlds import PAPER_WORLDS

    own = [name for name in world.PRESETS if name not in PAPER_WORLDS]
    fitted = f", paper-<model>-<dataset> ({', '.join(PAPER_WORLDS)})" if PAPER_WORLDS else ""
    return ", ".join(own) + fitted


def claim_names() -> str:
    from theory import CLAIM_IDS  # a plain tuple: listing the ids imports no claim module

    return ", ".join(CLAIM_IDS)


def joined(values: Sequence[object]) -> str:
    return ",".join(str(v) for v in values)


def _paper_grid_options():
    """--methods and --budgets as `simulate` and `bench` declare them (the paper's grid)."""
    from simulations.spec import PAPER_BUDGETS, PAPER_METHODS

    methods = Annotated[str | None, typer.Option(help=methods_help(PAPER_METHODS))]
    budgets = Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated budgets N, each once (default {joined(PAPER_BUDGETS)})."
        ),
    ]
    return methods, budgets


MethodsOption, BudgetsOption = _paper_grid_options()


# ---------------------------------------------------------------------------------------------
# Output


def progress_bar():
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


@contextlib.contextmanager
def out_of_memory_is_one_line(hint: str) -> Iterator[None]:
    """XLA running out of memory as one line (status 1) with `hint`; other errors pass through."""
    import jax

    try:
        yield
    except jax.errors.JaxRuntimeError as error:
        if "RESOURCE_EXHAUSTED" not in str(error):
            raise  # a bug: keep the traceback
        raise RunError(f"out of memory ({first_line(error)}); {hint}") from None


# --- multi-host (jax.distributed; docs/multihost.md) ---------------------------------------

CoordinatorOption = Annotated[
    str | None,
    typer.Option(
        envvar="DORA_COORDINATOR",
        help="Multi-host: HOST:PORT of process 0's coordinator (docs/multihost.md).",
    ),
]
NumProcessesOption = Annotated[
    int | None,
    typer.Option(envvar="DORA_NUM_PROCESSES", help="Multi-host: number of processes."),
]
ProcessIdOption = Annotated[
    int | None,
    typer.Option(envvar="DORA_PROCESS_ID", help="Multi-host: this process's id, 0 … n−1."),
]


def check_distributed(
    coordinator: str | None, num_processes: int | None, process_id: int | None
) -> tuple[str, int, int] | None:
    """The multi-host settings, all three or none, checked (one line on a mistake)."""
    given = (coordinator, num_processes, process_id)
    if all(x is None for x in given):
        return None
    if any(x is None for x in given):
        fail("multi-host needs all of --coordinator, --num-processes and --process-id")
    assert coordinator is not None and num_processes is not None and process_id is not None
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"--coordinator must be HOST:PORT with a port in 1..65535, not {coordinator!r}")
    if num_processes < 1:
        fail(f"--num-processes must be at least 1, not {num_processes}")
    if not 0 <= process_id < num_processes:
        fail(f"--process-id must be in 0..{num_processes - 1}, not {process_id}")
    return coordinator, num_processes, process_id


def initialize_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Joins the `jax.distributed` run (blocks until every process has joined)."""
    import jax

    # CPU devices of different processes talk through gloo (no effect on GPU devices).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )


# --- adaptive compute (dora_jax.adaptive; simulate and bench) -------------------------------

StopThresholdOption = Annotated[
    float | None,
    typer.Option(
        help="Adaptive: stop a problem when P(its vote's leader is correct) ≥ this, in (0, 1)."
    ),
]
StopPriceOption = Annotated[
    float | None,
    typer.Option(
        help="Adaptive: stop a problem when 1 − P(leader correct) ≤ this × the next round's "
        "rollouts (accuracy per rollout, ≥ 0)."
    ),
]
StopKappaOption = Annotated[
    float | None, typer.Option(help="Adaptive: κ of the stopping posterior (default 15).")
]
PoolCapOption = Annotated[
    int | None,
    typer.Option(
        help="Adaptive: the batch shares P·N slots per round; a running problem may take up to "
        "this × N (an integer ≥ 1; default 1)."
    ),
]
TotalRolloutsOption = Annotated[
    int | None,
    typer.Option(
        help="Adaptive: a total budget of this many rollouts per problem on average over the "
        "whole search (the batch shares P × this; unspent slots carry to later rounds; ≥ N)."
    ),
]
TotalFinishOption = Annotated[
    bool | None,
    typer.Option(
        "--total-finish/--total-no-finish",
        help="Adaptive, with --total-rollouts: when the total runs short, problems stop and "
        "vote over what finished (default), or the last round generates to EOS.",
    ),
]
MinVotesOption = Annotated[
    int | None,
    typer.Option(help="Adaptive: finished solutions needed before an early stop (default 2)."),
]


def adaptive_from(
    base: object | None,
    threshold: float | None,
    price: float | None,
    kappa: float | None,
    cap: int | None,
    min_votes: int | None,
    total: int | None = None,
    budgets: Sequence[int] = (),
    finish: bool | None = None,
):
    """The adaptive settings: `base` (a spec's, or None) with the given flags in place; None when
    neither gives any. A bad setting (or a total below one of `budgets`) is one line (exit 2),
    before any work."""
    import dataclasses

    from dora_jax.adaptive import Adaptive, AdaptiveError

    flags = {
        "threshold": threshold,
        "price": price,
        "kappa": kappa,
        "cap": cap,
        "min_votes": min_votes,
        "total": total,
        "finish": finish,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    if base is None and not given:
        return None
    try:
        if base is None:
            adaptive = Adaptive(**given)
        else:
            assert isinstance(base, Adaptive)
            adaptive = dataclasses.replace(base, **given)
        if finish is not None and adaptive.total is None:
            raise AdaptiveError("--total-finish/--total-no-finish needs a total (--total-rollouts)")
        for budget in budgets:
            adaptive.check_budget(budget)
    except AdaptiveError as error:
        fail(str(error))
    return adaptive
