"""What a Stage 1 run is asked to do, and who and where it is.

``IngestOptions`` is the operator's request (validated at the edge, in
``cli/ingest.py``); ``RunContext`` is what every step of one run shares:
the store, the universe and settings, the runtime paths, the run's id and
as-of date, and its audit trail.
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from core.clock import run_id_stamp
from core.errors import UsageError
from core.logs import AuditTrail
from core.runtime import RuntimePaths
from core.settings import Settings
from core.universe import Universe
from database import Store

# The modes ``run_ingestion`` runs.  ``range`` is what --start/--end make of
# a run; a repair is not an ingest mode (``data.collectors.repair`` records
# its own runs).
MODES = ("deep_backfill", "incremental", "verify", "range")


class IngestionError(UsageError):
    """The run cannot start as asked (bad range, mixed data origins, a
    repair outside the universe, an undo already undone): change the
    command line.

    Raised before the run changes any state, except mixed data origins
    found only at the first write, after which the run's row is closed as
    FAILED.  A missing data directory is not one of these: the router
    refuses it when it is built, before the store is opened
    (``DataDirectoryNotFound``, exit 66)."""


@dataclass(frozen=True)
class IngestOptions:
    """What the operator asked for."""

    mode: str = "deep_backfill"
    as_of: dt.date | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    tickers: tuple[str, ...] = ()
    provider: str | None = None
    data_dir: str | None = None
    revive: tuple[str, ...] = ()     # dead-lettered symbols to bring back before the run
    cross_check: bool = False        # compare closes with a second provider (settings [cross_check])
    now: dt.datetime | None = None   # for tests: what "now" is when as_of is today

    def params(self) -> dict[str, Any]:
        """The options as ``ingestion_audit_runs.params`` records them."""
        return {"mode": self.mode, "as_of": self.as_of, "start": self.start, "end": self.end,
                "tickers": list(self.tickers), "provider": self.provider, "data_dir": self.data_dir}


@dataclass(frozen=True)
class RunContext:
    """What every step of one run (ingest, verify, repair) shares."""

    db: Store
    universe: Universe
    settings: Settings
    paths: RuntimePaths
    run_id: str
    as_of: dt.date
    trail: AuditTrail
    now: dt.datetime | None = None   # None: the wall clock (freshness is judged against it)


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable, unique, file-name safe: ``20261122T064800Z-3f9a1c``."""
    return f"{run_id_stamp(now)}-{secrets.token_hex(3)}"
