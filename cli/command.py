"""Click plumbing shared by the thin CLI scripts.

``OperatorCommand`` maps click's usage errors to exit 64 (click would use 2,
which is our quality-gate code) and our typed input errors to 64/65/66, as a
single line on stderr naming the flag, file or symbol.
"""
from __future__ import annotations

import sys

import click

from core import exit_codes
from core.errors import DataInputError, InputError, MissingInputError  # noqa: F401 (re-exported)
from database.errors import StoreAccessError


class OperatorCommand(click.Command):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:  # --help and ctx.exit()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(exit_codes.FAILURE)
        except click.UsageError as exc:
            hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exit_codes.USAGE)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except StoreAccessError as exc:
            # A malformed or locked store: one line and the procedure to follow.
            click.echo(f"error: database error: {exc} (see docs/runbook.md, 'Database corruption')", err=True)
            sys.exit(exit_codes.FAILURE)
        if isinstance(rv, int):
            sys.exit(rv)
        sys.exit(exit_codes.OK)


def db_option(fn):
    return click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
                        help="SQLite database (default: $RUNTIME_DIR/institutional_trading.db).")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True,
                        help="Machine-readable JSON on stdout; human output suppressed.")(fn)
