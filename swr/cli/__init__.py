"""The ``swr`` command line: the demo and the emulator on this machine, and deploy,
onboarding, drills and execution inspection against any endpoint (AWS by default).
Each command lives in the module named for it; this one only dispatches.

Exit codes: 0 done; 1 the thing asked for did not succeed (the demo did not recover, a
waited-for drill failed); 2 bad input (usage, ARN, unknown application); 3 the environment
(endpoint unreachable, credentials, region, missing state machine or table, AWS errors);
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from swr.cli import demo, deploy, executions, onboard, operations, report
from swr.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    cli_logging,
)

# The exit codes are the command line's contract with scripts: importable from swr.cli.
__all__ = ["EXIT_ENVIRONMENT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with cli_logging(args.verbose):
            return int(args.run(args))
    except CliError as error:
        print(f"swr {args.command}: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print(f"swr {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swr",
        description="Smart workload recovery: cross-AZ failover of an RMS-managed application on AWS.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("-v", "--verbose", action="store_true", help="show library and emulator logs on stderr")
        sub.set_defaults(run=run)
        return sub

    for module in (demo, executions, onboard, deploy, report, operations):
        module.register(command)
    return parser


if __name__ == "__main__":
    sys.exit(main())
