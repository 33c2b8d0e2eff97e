"""One error tree: every error the product raises on purpose derives from
:class:`GovernedTradingError`, on the branch that says what the caller does
next::

    GovernedTradingError
    |-- InputError               the operator's input is wrong; nothing has changed
    |   |-- UsageError           fix the command line (a flag or its value)
    |   |-- MalformedInputError  fix the file (universe, settings, data file)
    |   `-- MissingInputError    create the input, or point the command at it
    |-- StoreError               the store refused or failed a read or write
    |   `-- StoreAccessError     damaged or locked: the runbook's 'Database corruption'
    |-- ProviderError            a provider failed one request: record the outcome and
    |                            try the next provider (an outcome, never an exit code)
    |-- TradingHalt              trading must stop: no further order, the halt recorded
    |-- ModelError               a model gave no usable value: use the fallback, count it
    |-- OperationFailed          a step failed: the command fails, the daemon counts a
    |                            loop error and goes on
    |-- Interrupted              the operator stopped the command (SIGINT/SIGTERM): what
    |                            was committed stays, the run is recorded ABORTED
    `-- InvariantError           a bug: something the code relies on does not hold

The leaves live beside the code that raises them, for instance
``core.settings_schema.SettingsError`` (malformed), ``core.symbols.InvalidSymbolError``
(usage), ``data.providers.base`` (every provider error, with the audit codes),
``data.providers.file.DataDirectoryNotFound`` (missing), ``database.errors``
(``MixedOriginError``, ``StoreAccessError``; ``StoreLocationError``, usage),
``trading.agent.KillSwitchEngaged`` (halt).  This module knows no exit code: the edge maps each branch to one
(``cli/exit_codes.py``, docs/error_codes.md).  Messages are one line naming
the flag, file or symbol concerned.
"""
from __future__ import annotations


class GovernedTradingError(Exception):
    """Base of every error the product raises on purpose.  Anything else
    escaping a command is a bug (a traceback, exit 1)."""


# ------------------------------------------------------------ operator input
class InputError(GovernedTradingError):
    """The operator's input is wrong and nothing has changed yet: fix the
    input named in the message and run the command again.  Raised before
    any state changes; never a governance decision, never a provider
    failure.  Raise one of the three subclasses."""


class UsageError(InputError):
    """The invocation is wrong (a flag, a flag's value, a symbol outside the
    universe): fix the command line."""


class MalformedInputError(InputError):
    """An input file exists but its content is malformed (universe JSON,
    settings TOML, a data file): fix the file named in the message."""


class MissingInputError(InputError):
    """An input file or directory does not exist (database, universe, data
    directory): create it, or point the command at the right one."""


# ------------------------------------------------------------------ store
class StoreError(GovernedTradingError):
    """The store refused or failed a read or write (schema newer than the
    code, data origins mixed, ...).  Raised by ``database`` (which adds the
    subclasses); it lives here so that code holding a store only through a
    protocol (the alerter) can catch it without importing the store."""


# --------------------------------------------------------------- providers
class ProviderError(GovernedTradingError):
    """A provider failed one request: the caller records it as the symbol's
    outcome (``code`` goes into the audit row) and tries the next provider.
    Never an exit code.  The subclasses, one per code, are in
    ``data.providers.base``."""

    code = "PROVIDER_ERROR"
    retryable = False

    def __init__(self, message: str, *, provider: str | None = None, symbol: str | None = None):
        super().__init__(message)
        self.provider = provider
        self.symbol = symbol

    def __str__(self) -> str:
        where = ":".join(x for x in (self.provider, self.symbol) if x)
        base = super().__str__()
        return f"{where}: {base}" if where else base

    def __reduce__(self):
        # Keyword-only constructor arguments and attributes (provider, symbol,
        # retry_after) survive a trip through a worker process.
        return (_rebuild_error, (type(self), Exception.__str__(self), dict(self.__dict__)))


def _rebuild_error(cls: type, message: str, state: dict) -> ProviderError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


# ---------------------------------------------------------------- trading
class TradingHalt(GovernedTradingError):
    """Trading must stop now: no further order is sent and the halt is
    recorded (``runtime/governance_halt.log``); the operator clears the
    cause (the kill switch file, the data) and starts again."""


class ModelError(GovernedTradingError):
    """A model could not give a usable value (too little data, no
    convergence, a malformed model file): use the fallback (EWMA instead of
    ARIMA, no alpha) and count it; never a reason to stop the loop."""


class OperationFailed(GovernedTradingError):
    """A step failed (the broker refused an order, an account could not be
    read): a one-shot command fails; the daemon counts a loop error, which
    leads to safe mode when repeated, and goes on."""


class Interrupted(GovernedTradingError):
    """The operator stopped the command with a signal (``signum``: SIGINT,
    SIGTERM): nothing half-done is committed, the interrupted run is
    recorded ABORTED; run the command again to resume.  Raised at the
    command's safe points, never inside a transaction
    (``core.process.RunInterrupted``)."""

    signum: int | None = None


class InvariantError(GovernedTradingError):
    """A bug: a condition the code relies on does not hold (governance asked
    about a symbol outside the universe, ...).  Report it with the
    traceback; do not work around it."""
