"""The click command class every operator command uses.

``OperatorCommand`` answers ``-h`` as well as ``--help``, maps click's usage
errors to exit 64 (click would use 2, which is our quality-gate code) and
every typed error of the product to its exit code through the one table in
``cli.exit_codes``, as a single line on stderr naming the flag, file or
symbol.  A command's own return value (an int) is its exit code.

While a command runs, third-party libraries' logging goes to stderr, each
repeated message once and then counted (``core.library_logs``), and under
``--json`` stdout takes only the edge's document (``cli.machine_output``).
"""
from __future__ import annotations

import sys

import click

from cli.exit_codes import FAILURE, OK, USAGE, error_line, exit_code_for
from cli.machine_output import document_only_stdout
from core.errors import GovernedTradingError
from core.library_logs import collapsed_library_logs

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


class OperatorCommand(click.Command):
    def __init__(self, *args, context_settings=None, **kwargs):
        super().__init__(*args, context_settings={**HELP_OPTIONS, **(context_settings or {})}, **kwargs)

    def invoke(self, ctx: click.Context):
        """Run the command with library logs collapsed on stderr and, under
        ``--json``, stdout reserved for the document."""
        with document_only_stdout(bool(ctx.params.get("as_json"))), collapsed_library_logs():
            return super().invoke(ctx)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:  # --help and ctx.exit()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(FAILURE)
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
