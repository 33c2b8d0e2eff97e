"""Exit codes, part of the operator interface (docs/error_codes.md), and the
one table from error class to exit code that every command uses (through
``cli.command.OperatorCommand``).

The library raises typed errors (``core.errors``) and returns reports; only
this edge decides what the shell sees.  An error's code is that of the
nearest class of its MRO in :data:`EXIT_CODES`; a report's (a failed gate,
a halt) is decided by the command that renders it.
"""
from __future__ import annotations

from core.errors import (GovernedTradingError, InputError, Interrupted, MalformedInputError, MissingInputError,
                         StoreError, TradingHalt, UsageError)
from database.errors import StoreAccessError

OK = 0
FAILURE = 1            # at least one symbol or step failed
GATE_FAILED = 2        # quality / governance gate failed
HALTED = 3             # kill switch or governance halt
USAGE = 64             # bad flag or flag value (EX_USAGE)
DATA_ERROR = 65        # malformed input file: universe, CSV, settings (EX_DATAERR)
NO_INPUT = 66          # an input file or directory does not exist (EX_NOINPUT)
# Stopped by a signal: 128 + the signal's number, the shell's convention
# (what `$?` shows for a process the signal killed), so a scheduler reads
# an interrupted job the same way whether it stopped cleanly or not.
SIGNAL_BASE = 128
INTERRUPTED = SIGNAL_BASE + 2      # SIGINT (Ctrl-C): 130
TERMINATED = SIGNAL_BASE + 15      # SIGTERM: 143


SIGNAL_EXIT_CODES = {"SIGINT": INTERRUPTED, "SIGTERM": TERMINATED}


def signal_exit_code(signum: int) -> int:
    """The exit code of a command stopped by signal ``signum`` (130, 143)."""
    return SIGNAL_BASE + int(signum)

# Error class -> exit code.  Every branch of the tree is listed; a class
# not listed takes the code of its nearest listed ancestor.
EXIT_CODES: dict[type[GovernedTradingError], int] = {
    GovernedTradingError: FAILURE,    # a provider, model, step failure or a bug reaching the edge
    InputError: USAGE,
    UsageError: USAGE,
    MalformedInputError: DATA_ERROR,
    MissingInputError: NO_INPUT,
    StoreError: FAILURE,
    StoreAccessError: FAILURE,
    TradingHalt: HALTED,
    Interrupted: INTERRUPTED,         # 128 + its signal when it names one (signal_exit_code)
}

CORRUPTION_HINT = "see docs/runbook.md, 'Database corruption'"


def exit_code_for(error: GovernedTradingError) -> int:
    """The exit code of ``error``: its nearest class listed in EXIT_CODES
    (an interrupt: 128 + its signal)."""
    if isinstance(error, Interrupted) and error.signum:
        return signal_exit_code(error.signum)
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    raise TypeError(f"{type(error).__name__} is not a GovernedTradingError")


def error_line(error: GovernedTradingError) -> str:
    """The one line on stderr: the message (which names the flag, file or
    symbol), and for a damaged or locked store the procedure to follow."""
    text = " ".join(str(error).split("\n"))
    if isinstance(error, StoreAccessError):
        return f"error: database error: {text} ({CORRUPTION_HINT})"
    return f"error: {text}"
