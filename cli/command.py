"""The click command class every operator command uses.

``OperatorCommand`` answers ``-h`` as well as ``--help``, maps click's usage
errors to exit 64 (click would use 2, which is our quality-gate code) and
every typed error of the product to its exit code through the one table in
``cli.exit_codes``, as a single line on stderr naming the flag, file or
symbol.  A command's own return value (an int) is its exit code.
"""
from __future__ import annotations

import sys

import click

from cli.exit_codes import INTERRUPTED, OK, USAGE, error_line, exit_code_for
from core.errors import GovernedTradingError

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


class OperatorCommand(click.Command):
    def __init__(self, *args, context_settings=None, **kwargs):
        super().__init__(*args, context_settings={**HELP_OPTIONS, **(context_settings or {})}, **kwargs)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:  # --help and ctx.exit()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:   # click's form of a KeyboardInterrupt (Ctrl-C)
            click.echo(f"error: interrupted by SIGINT (exit {INTERRUPTED})", err=True)
            sys.exit(INTERRUPTED)
        except click.UsageError as exc:
            hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(USAGE)
        except GovernedTradingError as exc:
            click.echo(error_line(exc), err=True)
            sys.exit(exit_code_for(exc))
        if isinstance(rv, int):
            sys.exit(rv)
        sys.exit(OK)
