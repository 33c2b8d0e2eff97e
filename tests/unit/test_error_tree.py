"""One error tree (core/errors.py) and one table from error class to exit
code (cli/exit_codes.py), used by every command through OperatorCommand."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import signal

import click
import pytest
from click.testing import CliRunner

from cli import exit_codes
from cli.command import OperatorCommand
from core import errors
from core.calendar import CalendarError
from core.process import RunInterrupted
from core.settings import SettingsError
from core.symbols import InvalidSymbolError
from core.universe import NotInUniverseError, UniverseError
from data.collectors.data_router import NoValidProviderError, ProviderNotInstalled
from data.collectors.ingestion import IngestionError
from data.governance.governance_agent import GovernanceError
from data.providers.base import (EntitlementError, MalformedDataError, NoDataError, ProviderCrash,
                                 ProviderUnavailable)
from data.providers.file import DataDirectoryNotFound
from data.providers.guard import GuardViolation
from data.providers.http_vendor import QuirksError
from database.errors import (MixedOriginError, StoreAccessError, StoreCorrupt, StoreDiskFull, StoreLocationError,
                             StoreLocked, StoreMissing, StoreNotADatabase, StorePermissionDenied, StoreReadOnly)
from trading.agent import KillSwitchEngaged
from trading.alpha_model import AlphaModelError
from trading.brokers import BrokerError
from trading.config import ConfigError
from trading.features import FeatureValidationError
from trading.signals import ArimaFailed, ForecastError

PRODUCT_PACKAGES = ("core", "data", "database", "reports", "trading", "cli")
BRANCHES = (errors.InputError, errors.StoreError, errors.ProviderError, errors.TradingHalt, errors.ModelError,
            errors.OperationFailed, errors.Interrupted, errors.InvariantError)


def _product_exceptions() -> list[type[BaseException]]:
    found = {}
    for package in PRODUCT_PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__.split(".")[0] in PRODUCT_PACKAGES:
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_every_exception_of_the_product_is_on_one_branch_of_the_one_tree():
    classes = _product_exceptions()
    assert len(classes) > 30
    for cls in classes:
        if cls is errors.GovernedTradingError:
            continue
        assert issubclass(cls, errors.GovernedTradingError), cls
        assert sum(issubclass(cls, branch) for branch in BRANCHES) == 1 or cls in BRANCHES, cls
        # One root: no second lineage through a builtin (ValueError, RuntimeError, OSError...).
        builtin = [b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (Exception, BaseException, object)]
        assert builtin == [], (cls, builtin)
        assert (cls.__doc__ or "").strip(), f"{cls.__name__} has no docstring saying what the caller does"


def _command_raising(error: BaseException) -> click.Command:
    @click.command(cls=OperatorCommand)
    def probe():
        raise error
    return probe


CASES = [
    # (error, exit code, what the one line names)
    (errors.UsageError("--mode sideways: not a mode"), 64, "--mode sideways"),
    (InvalidSymbolError("--symbol: 'A B' is not a plausible ticker"), 64, "--symbol"),
    (NotInUniverseError("--tickers: u.json: not in the universe: ZZZ"), 64, "ZZZ"),
    (CalendarError("--as-of/--start/--end: as-of 2099-01-01 is beyond calendar XNYS's last session"), 64, "--as-of"),
    (IngestionError("--start 2026-01-10 is after --end 2026-01-02"), 64, "--start 2026-01-10"),
    (ConfigError("mode must be one of paper, live, got 'x'"), 64, "mode"),
    (StoreLocationError("PostgreSQL is not available in this build: postgresql://desk:***@db/trading"), 64,
     "postgresql://desk:***@db/trading"),
    (errors.MalformedInputError("/desk/bars.csv: line 4: not a number"), 65, "/desk/bars.csv"),
    (UniverseError("/desk/universe.json: entry 2 ('AAPL'): duplicate symbol AAPL"), 65, "/desk/universe.json"),
    (SettingsError("/desk/settings.toml: unknown setting [quality] acept_threshold"), 65, "acept_threshold"),
    (QuirksError("polygon: unknown option(s) colour in [providers.polygon]"), 65, "[providers.polygon]"),
    (errors.MissingInputError("/desk/x.db: database not found (run ingest_history.py first)"), 66, "/desk/x.db"),
    (DataDirectoryNotFound("/srv/dumps"), 66, "/srv/dumps"),
    (errors.StoreError("/desk/x.db: schema version 9 is newer than this code (3)"), 1, "/desk/x.db"),
    (MixedOriginError("/desk/x.db holds synthetic data; refusing to write vendor bars"), 1, "/desk/x.db"),
    (StoreAccessError("disk I/O error"), 1, "Database I/O error"),
    (StoreCorrupt("/desk/x.db: database disk image is malformed"), 79, "Database corruption"),
    (StoreNotADatabase("/desk/x.db: empty file (0 bytes), not a SQLite database"), 65, "not a database file"),
    (StoreMissing("/desk/x.db: database not found"), 66, "Database: file not found"),
    (StorePermissionDenied("/desk/x.db: permission denied"), 77, "Database: permission denied"),
    (StoreReadOnly("/desk/x.db: on a read-only filesystem"), 73, "Database: read-only filesystem"),
    (StoreDiskFull("/desk: disk full (0 bytes free)"), 74, "Database: disk full"),
    (StoreLocked("/desk/x.db: database is locked"), 75, "Database: locked"),
    (KillSwitchEngaged("KILL_SWITCH present at /desk/KILL_SWITCH: trading halted"), 3, "/desk/KILL_SWITCH"),
    (ProviderUnavailable("HTTP 503", provider="yahoo", symbol="AAPL"), 1, "yahoo:AAPL"),
    (EntitlementError("HTTP 401", provider="polygon", symbol="AAPL"), 1, "polygon:AAPL"),
    (MalformedDataError("AAPL.csv line 4: abc"), 1, "AAPL.csv"),
    (NoDataError("nothing", symbol="XYZ"), 1, "XYZ"),
    (ProviderCrash.wrapping(KeyError("x"), provider="file", symbol="AAPL"), 1, "file:AAPL: KeyError"),
    (ProviderNotInstalled("provider 'x': module x is not available"), 1, "provider 'x'"),
    (NoValidProviderError("yahoo: does not serve commodities", symbol="GC=F"), 1, "GC=F"),
    (GuardViolation("GUARD VIOLATION: 1825 days for AAPL"), 1, "AAPL"),
    (ForecastError("AAPL: 1 usable returns; cannot forecast"), 1, "AAPL"),
    (ArimaFailed("did not converge"), 1, "converge"),
    (AlphaModelError("/desk/models/alpha_ridge.json: malformed model file"), 1, "alpha_ridge.json"),
    (FeatureValidationError("missing feature column(s): zscore_20d"), 1, "zscore_20d"),
    (BrokerError("alpaca: order buy 3 AAPL failed: HTTP 500"), 1, "AAPL"),
    (GovernanceError("not enabled in the universe: NOPE"), 1, "NOPE"),
    (RunInterrupted(signal.SIGTERM), 143, "interrupted by SIGTERM"),
    (RunInterrupted(signal.SIGINT), 130, "interrupted by SIGINT"),
]


@pytest.mark.parametrize("error, code, named", CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_each_error_class_maps_to_its_exit_code_with_one_line_on_stderr(error, code, named):
    assert exit_codes.exit_code_for(error) == code
    result = CliRunner().invoke(_command_raising(error), [])
    assert result.exit_code == code
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert result.stdout == ""


def test_every_branch_is_in_the_table_and_a_damaged_store_names_the_procedure():
    assert set(BRANCHES) - {errors.ProviderError, errors.ModelError, errors.OperationFailed,
                            errors.InvariantError} <= set(exit_codes.EXIT_CODES)
    assert exit_codes.EXIT_CODES[errors.GovernedTradingError] == exit_codes.FAILURE
    line = exit_codes.error_line(StoreCorrupt("database disk image is malformed"))
    assert line == "error: database error: database disk image is malformed (see docs/runbook.md, 'Database corruption')"
    assert exit_codes.error_line(StoreLocked("database is locked")).endswith("(see docs/runbook.md, 'Database: locked')")
    assert exit_codes.error_line(errors.UsageError("a\nb")) == "error: a b"


def test_an_exception_outside_the_tree_is_a_bug_with_its_traceback():
    result = CliRunner().invoke(_command_raising(ZeroDivisionError("boom")), [])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


def test_provider_errors_survive_a_worker_process_with_their_type():
    import pickle

    for error in (ProviderCrash.wrapping(KeyError("x"), provider="file", symbol="AAPL"),
                  ProviderNotInstalled("missing", provider="polygon", symbol="AAPL"), DataDirectoryNotFound("/srv/d")):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
    assert ProviderCrash.wrapping(KeyError("x")).code == "PROVIDER_CRASH"
