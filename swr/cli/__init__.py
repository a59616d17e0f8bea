"""The ``swr`` command line: the demo and the emulator on this machine, and deploy,
onboarding, drills and execution inspection against any endpoint (AWS by default).
Each command lives in the module named for it; this one assembles them and keeps the
exit codes.

Exit codes: 0 done; 1 the thing asked for did not succeed (the demo did not recover, a
waited-for drill failed); 2 bad input (usage, ARN, unknown application); 3 the environment
(endpoint unreachable, credentials, region, missing state machine or table, AWS errors);
130 interrupted.
"""

from __future__ import annotations

import sys

import typer

from swr.cli import demo, deploy, executions, onboard, operations, report
from swr.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
)

# The exit codes are the command line's contract with scripts: importable from swr.cli.
__all__ = ["EXIT_ENVIRONMENT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "app", "main"]

app = typer.Typer(
    name="swr",
    help="Smart workload recovery: cross-AZ failover of an RMS-managed application on AWS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # an unexpected error is a bug: its traceback is the report
    rich_markup_mode="rich",
)
for module in (demo, executions, onboard, deploy, report, operations):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    command = _command_name(args)
    try:
        result = typer.main.get_command(app).main(args=args, prog_name="swr", standalone_mode=False)
    except typer.TyperException as error:  # usage: a bad option or value (click's errors)
        context = getattr(error, "ctx", None)
        where = context.command_path if context is not None else "swr"
        print(f"{where}: {getattr(error, 'format_message', error.__str__)()}", file=sys.stderr)
        if context is not None:
            print(f"Try '{where} --help' for help.", file=sys.stderr)
        return int(getattr(error, "exit_code", EXIT_USAGE))
    except CliError as error:
        print(f"swr {command}: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print(f"swr {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exited:  # --show-completion ends the process itself
        return exited.code if isinstance(exited.code, int) else EXIT_USAGE
    return result if isinstance(result, int) else EXIT_OK


def _command_name(args: list[str]) -> str:
    return next((arg for arg in args if not arg.startswith("-")), "")


if __name__ == "__main__":
    sys.exit(main())
