"""The `gcgbench` command: one typer app, one module per command.

Errors a user can fix (missing files, malformed predictions, unknown tasks) print as one line on
stderr and exit with status 2; nothing a user did should end in a stack trace.
"""

from __future__ import annotations

import sys

import typer

from gcgbench.api.errors import GcgbenchError

app = typer.Typer(
    name="gcgbench",
    help="Benchmark harness for pixel-grounded multimodal models (GCG, RES, PNG, captioning, VQA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    from gcgbench.cli import cache, ceiling, demo, export, leaderboard, listing, reproduce, run, score, validate

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


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        outcome = app(args=argv, standalone_mode=False)
    except GcgbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # click usage errors
        import click

        if isinstance(error, click.ClickException):
            error.show()
            return error.exit_code
        raise
    return outcome if isinstance(outcome, int) else 0


if __name__ == "__main__":
    sys.exit(main())
