"""The `gcgbench` command: one typer app, one module per command.

Errors a user can fix (missing files, malformed predictions, unknown tasks) print as one line on
stderr and exit with status 2; nothing a user did should end in a stack trace.
"""

from __future__ import annotations

import contextlib
import sys

import typer
import typer.main

from gcgbench.api.errors import GcgbenchError

app = typer.Typer(
    name="gcgbench",
    help="Benchmark harness for pixel-grounded multimodal models (GCG, RES, PNG, captioning, VQA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
from gcgbench.runner.children import kill_children


def _register_commands() -> None:
    from gcgbench.cli import (cache, ceiling, demo, diagnose, export, leaderboard, listing, reproduce, run, score,
                              validate)

    app.command("tasks", help="List tasks, versions, and whether their data is present.")(listing.tasks)
    app.command("models", help="List backends and their arguments.")(listing.models)
    app.command("validate", help=validate.__doc__)(validate.validate)
    app.command("run", help="Run a backend on tasks and score it (infer + score).")(run.run)
    app.command("infer", help="Run a backend on tasks and store its predictions, without scoring.")(run.infer)
    app.command("score", help=score.__doc__)(score.score)
    app.command("export", help=export.__doc__)(export.export)
    app.command("res-ceiling", help=ceiling.res_ceiling.__doc__)(ceiling.res_ceiling)
    app.add_typer(cache.app, name="cache")
    app.add_typer(leaderboard.app, name="leaderboard")
    app.command("check", help=leaderboard.check.__doc__)(leaderboard.check)
    app.command("report", help=leaderboard.report.__doc__)(leaderboard.report)
    app.command("demo", help=demo.__doc__)(demo.demo)
    app.command("reproduce", help=reproduce.__doc__)(reproduce.reproduce)
    app.command("diagnose", help=diagnose.diagnose.__doc__)(diagnose.diagnose)
    app.command("compare", help=diagnose.compare.__doc__)(diagnose.compare)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: parse, run, and turn every way of ending into an exit status.

    0 success (and bare `gcgbench`, which prints the help); 1 a failed check or validation; 2 a usage
    error (typer's usage panel) or an input error (one line); 130 Ctrl-C ("interrupted", after the
    command's own cleanup). The command is invoked here rather than through `app()`, whose standalone
    handling would turn Ctrl-C into a silent exit 130 and, with the click that the pinned typer bundles,
    let usage errors escape as tracebacks.
    """
    exceptions = _click_exceptions()
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with command.make_context("gcgbench", args) as context:
            outcome = command.invoke(context)
    except exceptions.NoArgsIsHelpError as error:
        top_level = error.ctx is None or error.ctx.parent is None
        typer.echo(error.ctx.get_help() if error.ctx is not None else str(error), err=not top_level)
        return 0 if top_level else 2  # a group without its subcommand is a usage error
    except exceptions.ClickException as error:
        _show_usage_error(error)
        return error.exit_code
    except GcgbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        _end_children()
        print("error: interrupted", file=sys.stderr)
        return 130
    except typer.Exit as done:
        return done.exit_code
    except BrokenPipeError:  # `gcgbench tasks | head`: the reader left; nothing is wrong
        _silence_stdout()
        return 0
    except OSError as error:
        if error.filename is None:   # not about a path the user gave: a bug, keep its traceback
            raise
        _end_children()
        print(f"error: {error.filename}: {error.strerror or error}", file=sys.stderr)
        return 2
    return outcome if isinstance(outcome, int) else 0


def _click_exceptions():
    """The click exception classes typer raises: its bundled copy (typer >= 0.26) or click itself."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer runs on the click package
        from click import exceptions
    return exceptions


def _show_usage_error(error: Exception) -> None:
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(error)
    except ImportError:  # typer without rich: click's plain text
        error.show()


def _end_children() -> None:
    """Kill what this process started and left running (a JVM scoring METEOR, a tokenizer): after Ctrl-C
    nothing of the run may outlive it."""

    kill_children()


def _silence_stdout() -> None:
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
