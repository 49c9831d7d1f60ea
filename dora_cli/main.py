"""The `dora` command: the app, its commands (one module each), the entry point.

Each command module parses and checks its options, calls the library (dora_jax, simulations,
backends, theory) and prints. Bad input prints one line (`dora: error: ...`) to stderr and exits
with status 2, before any work starts; no traceback. `dora` alone prints the help.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from dora_cli import allocate, bench, calibrate, paper, simulate, train, verify
from dora_cli._common import RunError, UsageError

app = typer.Typer(
    name="dora",
    help="dora-jax: optimal rollout allocation for test-time scaling (DORA, NeurIPS 2025).",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
for command in (
    allocate.allocate,
    simulate.simulate,
    bench.bench,
    calibrate.calibrate,
    verify.verify,
    paper.paper,
    train.train,
):
    app.command()(command)


def _print_version(value: bool) -> None:
    if value:
        import dora_jax

        typer.echo(f"dora {dora_jax.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """dora-jax: optimal rollout allocation for test-time scaling (DORA, NeurIPS 2025)."""


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
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        args = ["--help"]  # `dora` alone: the help, status 0
    _enable_compilation_cache()
    try:
        result = app(args=args, prog_name="dora", standalone_mode=False)
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
        format_message = getattr(error, "format_message", None)
        if format_message is None:
            raise
        typer.echo(f"dora: error: {format_message()} (see dora --help)", err=True)
        return 2
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script wrapper: exit with `main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    run()
