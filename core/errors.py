"""Operator-input errors, carrying the exit code the CLI should use.

They live outside ``cli.command`` so that library code can raise them without
importing click.  Messages are one line naming the file, flag or symbol.
"""
from core import exit_codes


class InputError(Exception):
    """Bad operator input (a flag or its value)."""

    exit_code = exit_codes.USAGE


class DataInputError(InputError):
    """An input file exists but its content is malformed."""

    exit_code = exit_codes.DATA_ERROR


class MissingInputError(InputError):
    """An input file or directory does not exist."""

    exit_code = exit_codes.NO_INPUT


class StoreError(Exception):
    """The store refused or failed a read or write.

    Raised by ``database`` (which adds the subclasses); it lives here so that
    core code holding a store only through a protocol (the alerter) can catch
    it without importing the store.
    """
