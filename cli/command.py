"""The click command class every operator command uses.

``OperatorCommand`` answers ``-h`` as well as ``--help``, maps click's usage
errors to exit 64 (click would use 2, which is our quality-gate code) and
every typed error of the product to its exit code through the one table in
``cli.exit_codes``, as a single line on stderr naming the flag, file or
symbol.  A command's own return value (an int) is its exit code.

Whatever ends a command (its verdict, a typed error, Ctrl-C, a crash
outside the error tree, whose traceback is still printed) is audited and
alerted through ``cli.job_alerts.report_exit``: ``critical`` when the exit
code is not 0, a recovery notice when a failed command passes again.

While a command runs, third-party libraries' logging goes to stderr, each
repeated message once and then counted (``core.library_logs``), and under
``--json`` stdout takes only the edge's document (``cli.machine_output``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from cli.exit_codes import FAILURE, INTERRUPTED, OK, USAGE, error_line, exit_code_for
from cli.job_alerts import report_exit
from cli.machine_output import document_only_stdout
from core.errors import GovernedTradingError
from core.library_logs import collapsed_library_logs

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


def exit_now(code: int, error: BaseException | None = None) -> NoReturn:
    """End the process at once with ``code``, after reporting the exit as
    every command's exit is reported (the audit line, the job's alert).

    For a command whose threads are stuck in a vendor call or its back-off
    (an interrupted ingest, a daemon that abandoned its refresh): no thread
    API can cancel them, and the interpreter would wait for them at exit.
    Everything the command records is recorded by then."""
    ctx = click.get_current_context(silent=True)
    command = ctx.command if ctx is not None else None
    if isinstance(command, OperatorCommand):
        try:
            report_exit(command.job_name(), code, error, dict(ctx.params))
        except Exception:  # noqa: BLE001 - leaving must not fail; report_exit records its own problems
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class OperatorCommand(click.Command):
    """An operator command; ``job`` names it in the audit trail and in its
    alert key (``job.<job>.exit``; default: the script run, else the callback's module)."""

    def __init__(self, *args, context_settings=None, job: str | None = None, **kwargs):
        super().__init__(*args, context_settings={**HELP_OPTIONS, **(context_settings or {})}, **kwargs)
        self.job = job
        self._params: dict = {}

    def invoke(self, ctx: click.Context):
        """Run the callback, keeping its parameters (``--db``) for the exit
        report, with library logs collapsed on stderr and, under ``--json``,
        stdout reserved for the document."""
        self._params = dict(ctx.params)
        with document_only_stdout(bool(ctx.params.get("as_json"))), collapsed_library_logs():
            return super().invoke(ctx)

    def job_name(self) -> str:
        """What this command is called in the audit trail and its alert key."""
        if self.job:
            return self.job
        script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
        if script is not None and script.suffix == ".py" and script.stem != "__main__":
            return script.stem
        module = getattr(self.callback, "__module__", "") or ""
        return module.rsplit(".", 1)[-1] if not module.startswith("cli.") else \
            f"{module.rsplit('.', 1)[-1]}_{getattr(self.callback, '__name__', 'main')}"

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code, error = self._run(args, prog_name, complete_var, extra)
        except BaseException as exc:
            # Outside the error tree (a bug) or SystemExit from inside: alerted, then as before
            # (Python prints the traceback, exit 1).
            code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else FAILURE
            if not (isinstance(exc, SystemExit) and code == OK):
                report_exit(self.job_name(), code, None if isinstance(exc, SystemExit) else exc, self._params)
            raise
        if error is not None or code != OK or self._params:
            report_exit(self.job_name(), code, error, self._params)
        sys.exit(code)

    def _run(self, args, prog_name, complete_var, extra) -> tuple[int, BaseException | None]:
        """The command's exit code and the error that ended it (None: its verdict)."""
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:  # --help and ctx.exit()
            return exc.exit_code, None
        except click.exceptions.Abort as exc:   # click's form of a KeyboardInterrupt (Ctrl-C)
            click.echo(f"error: interrupted by SIGINT (exit {INTERRUPTED})", err=True)
            return INTERRUPTED, exc
        except click.UsageError as exc:
            hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            return USAGE, exc
        except GovernedTradingError as exc:
            click.echo(error_line(exc), err=True)
            return exit_code_for(exc), exc
        return (rv if isinstance(rv, int) else OK), None
