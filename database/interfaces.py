"""The store's interface: what the application may ask of a store, and what
every backend must guarantee.  The application names these protocols (and
gets its store from ``database.open_store``); ``database.manager.Database``
is the SQLite backend, and a second one (PostgreSQL) implements the same
protocols without the application changing.

A store is one ``Store`` with six aggregates sharing one connection::

    store.bars          BarStore          price history, corporate actions, replaced rows
    store.runs          RunStore          runs, per-symbol audit rows, provider health
    store.fetch_state   FetchStateStore   where each symbol's fetching stands, dead letters
    store.governance    GovernanceStore   states, quality rows, the event log
    store.alerts        AlertStore        the alerts raised
    store.broker        BrokerStore       Stage 2's paper account, orders, fills, positions

What every backend guarantees, for every method below:

* Plain values in and out: ``str``/``int``/``float``/``None``, dicts and
  lists of them, and pandas frames where a method says so.  Dates are
  ``YYYY-MM-DD`` text, timestamps ISO-8601 UTC text, as the caller gave them.
* Every failure reaches the caller as ``core.errors.StoreError``:
  ``StoreAccessError`` (``database.errors``) when the store is damaged,
  locked past its timeout or unreachable, with the backend's own message and
  its exception as ``__cause__``; never the driver's exception itself.
* A write method is one transaction: all of it or none of it, whatever
  instant a crash comes.  Other processes may read and write the same store
  at the same time (worker processes reading, the daemon beside an ingest):
  a backend waits for a competing writer (up to a timeout), it does not fail.
* Upserts are idempotent: writing a row identical to the stored one changes
  nothing (not even its provenance: provider, run_id, ingested_at), so a
  re-run converges to byte-for-byte the same content.
* Event-like records (governance events, alerts, orders, fills) are
  append-only: never updated or deleted by the application's methods.

Only the methods the application calls are here; the SQLite classes have a
few more that tests, the bench or another aggregate use
(``tests/unit/test_store_interfaces.py`` keeps both lists exact).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

import pandas as pd

__all__ = ["AlertStore", "BarStore", "BrokerStore", "FetchStateStore", "GovernanceStore", "IntegrityResult",
           "RunStore", "Store", "SymbolWrite"]


@dataclass
class SymbolWrite:
    """Everything one symbol's successful fetch writes, in one transaction."""

    symbol: str
    provider: str
    frame: pd.DataFrame           # bars contract (data.providers.base), duplicates already collapsed
    audit: dict[str, Any]         # ingestion_audit columns (run_id/symbol filled in by the store)


@dataclass(frozen=True)
class IntegrityResult:
    """What a store's own consistency check found."""

    ok: bool
    detail: str                   # "ok", or the problems found, in the backend's words


@runtime_checkable
class BarStore(Protocol):
    """Stored bars (keyed by symbol and date), corporate actions (symbol,
    date, action) and the rows a repair replaced.

    The ingest's bulk write is the hot path: a backend writes a symbol's
    bars in a few statements, never one round trip per row."""

    def write_symbols(self, run_id: str, ingested_at: str, writes: Sequence[SymbolWrite],
                      audit_only: Sequence[Mapping[str, Any]] = ()) -> int:
        """One transaction for the whole batch: each symbol's bars and
        corporate actions (upserts), its audit row (``RunStore.audit_rows``)
        and its fetch state (last date, failures reset, dead letter cleared);
        plus the audit rows of ``audit_only`` symbols, each counting one
        consecutive failure unless ``count_failure`` is false.  The first
        bars written claim the store's data origin in the same transaction
        (``Store.check_origin``; mixing raises ``MixedOriginError``).  A bar
        identical to the stored one (market columns and provider) writes
        nothing.  Returns the bar rows inserted or changed."""
        ...

    def write_repair(self, run_id: str, ingested_at: str, write: SymbolWrite,
                     replaced: Sequence[Mapping[str, Any]]) -> int:
        """One transaction: keep the ``replaced`` rows (their old values, and
        the dates the repair inserts) under ``run_id``, then write ``write``
        as ``write_symbols`` does.  Returns the bar rows inserted or changed."""
        ...

    def replaced_rows(self, repair_run_id: str) -> list[dict[str, Any]]:
        """The rows one repair replaced or inserted, with their old values
        (``change``, ``undone_at``), by symbol and date."""
        ...

    def undo_repair(self, repair_run_id: str, ts: str) -> int:
        """One transaction: put back the rows a repair replaced, delete the
        dates it inserted, mark them undone at ``ts`` (an undone repair is
        not undone twice).  Returns the rows restored or deleted."""
        ...

    def last_dates(self, symbols: Iterable[str]) -> dict[str, str | None]:
        """Last stored date per symbol (None: nothing stored)."""
        ...

    def count(self, symbol: str, start: str, end: str) -> int:
        """Stored bars of ``symbol`` with ``start <= date <= end``."""
        ...

    def history_summary(self, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """``rows``, ``first_date``, ``last_date`` per symbol: every stored
        symbol, or those named (zeros and None for a symbol with nothing)."""
        ...

    def read(self, symbol: str, start: str | None = None, end: str | None = None, *,
             include_provenance: bool = False) -> pd.DataFrame:
        """One symbol's bars in [start, end], oldest first, as a bars-contract
        frame (``date`` datetime64[ns], prices float64 with NaN for NULL,
        ``volume`` Int64) plus ``provider`` (and ``run_id``, ``ingested_at``
        with ``include_provenance``)."""
        ...

    def recent(self, symbol: str, rows: int) -> pd.DataFrame:
        """The last ``rows`` bars of one symbol, oldest first, typed as
        ``read`` (with ``provider``)."""
        ...

    def first_after(self, symbol: str, date: str) -> dict[str, Any] | None:
        """The first bar (``date``, ``open``, ``close``) strictly after ``date``, or None."""
        ...

    def last_on_or_before(self, symbol: str, date: str) -> dict[str, Any] | None:
        """The last bar (``date``, ``open``, ``close``) on or before ``date``, or None."""
        ...

    def corporate_actions(self, symbols: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
        """Corporate actions (``date`` datetime64[ns], ``action``, ``value``)
        per symbol, ordered by date and action; symbols without any are absent."""
        ...


@runtime_checkable
class RunStore(Protocol):
    """Runs (ingest, verify, repair), their per-symbol audit rows (keyed by
    run and symbol, upserted) and each provider's health numbers per run."""

    def begin(self, run_id: str, mode: str, as_of: str | None, params: Mapping[str, Any],
              started_at: str, symbols_requested: int, owner: Mapping[str, Any] | None = None) -> None:
        """Record a new run as ``RUNNING`` (``params`` kept as JSON text),
        with the process that runs it (``owner``: ``pid``, ``host``,
        ``started``; kept as ``owner_pid``, ``owner_host``, ``owner_started``)."""
        ...

    def finish(self, run_id: str, *, status: str, symbols_succeeded: int, symbols_failed: int,
               rows_written: int, providers_used: Mapping[str, int], verification: str | None = None,
               error: str | None = None) -> None:
        """Close a run with its outcome and the finishing time (the store's
        clock); ``verification`` None keeps the stored one; ``error`` is what
        ended a ``FAILED`` or ``ABORTED`` run (None otherwise).  A run no
        longer ``RUNNING`` (closed by whoever abandoned it) is left as it is."""
        ...

    def running(self) -> list[dict[str, Any]]:
        """The runs still recorded ``RUNNING``, oldest first, every column."""
        ...

    def close_unfinished(self, run_id: str, *, status: str, error: str) -> bool:
        """One transaction: close a run that will not reach ``finish``
        (interrupted, failed, or left ``RUNNING`` by a dead owner) with
        ``status``, ``error``, the finishing time and the counts its
        committed audit rows hold, only if it is still ``RUNNING``; whether
        it was closed."""
        ...

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first (in the order they began), every
        column (``providers_used``, ``params`` as JSON text)."""
        ...

    def audit_rows(self, run_id: str) -> list[dict[str, Any]]:
        """One run's audit rows, by symbol."""
        ...

    def write_provider_health(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """One transaction: upsert each provider's health numbers for the run."""
        ...

    def provider_health(self, run_id: str) -> list[dict[str, Any]]:
        """One run's provider health rows by provider, ``failures`` and
        ``detail`` decoded to dicts."""
        ...


@runtime_checkable
class FetchStateStore(Protocol):
    """Where each symbol's fetching stands (one row per symbol, written with
    its bars by ``BarStore.write_symbols``) and the dead letters."""

    def by_symbol(self) -> dict[str, dict[str, Any]]:
        """Every symbol's fetch state row."""
        ...

    def mark_dead_letters(self, threshold: int, ts: str, fingerprints: Mapping[str, str]) -> list[str]:
        """One transaction: dead-letter every symbol with ``threshold`` or
        more consecutive failures that is not one already, remembering its
        universe entry (``fingerprints``); returns those newly dead-lettered, sorted."""
        ...

    def revive_dead_letters(self, symbols: Iterable[str], ts: str) -> list[str]:
        """One transaction: clear the dead letter and the failure count of
        ``symbols``; returns those that were dead-lettered."""
        ...

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-lettered symbols (failures, last error, last date, since when), by symbol."""
        ...


@runtime_checkable
class GovernanceStore(Protocol):
    """Each symbol's current governance state, one quality row per symbol
    per run, and the append-only event log: nothing changes silently."""

    def set_states(self, states: Sequence[Mapping[str, Any]], *, run_id: str | None = None,
                   ts: str | None = None) -> list[dict[str, Any]]:
        """One transaction: upsert the current states and append a
        ``STATE_CHANGE`` event for every symbol whose state or reason changed
        (none when both are as stored).  Returns the changes (symbol,
        before_state, after_state, reason)."""
        ...

    def states(self, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The current governance row per symbol (all, or those named that have one)."""
        ...

    def write_quality(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """One transaction: upsert quality rows (keyed by run and symbol;
        ``findings`` may be a list, kept as JSON).  Returns the rows given."""
        ...

    def latest_quality(self, symbols: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The quality row behind each symbol's current state (written by the
        run that last governed it), ``findings`` decoded; never a scan of the bars."""
        ...

    def record_event(self, event: str, *, run_id: str | None = None, symbol: str | None = None,
                     before_state: str | None = None, after_state: str | None = None,
                     reason: str | None = None, detail: Mapping[str, Any] | None = None,
                     ts: str | None = None) -> None:
        """Append one event (``detail`` kept as JSON text)."""
        ...

    def events(self, limit: int = 50, symbol: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
        """Events newest first (in the order appended): all, one symbol's, or one kind."""
        ...


@runtime_checkable
class AlertStore(Protocol):
    """The append-only record of alerts raised, delivered or not (the
    alerter's view of it is ``core.alerts.AlertStore``).  Bodies arrive
    already redacted."""

    def record(self, alert: Mapping[str, Any]) -> int:
        """Append one alert (``targets`` may be a list, kept as JSON); returns its id."""
        ...

    def open_problem(self, key: str) -> dict[str, Any] | None:
        """The open problem named ``key`` (its last fingerprint, severity,
        what was last delivered for it), or None."""
        ...

    def save_problem(self, problem: Mapping[str, Any]) -> None:
        """Insert or replace the open problem ``problem["alert_key"]`` (one transaction)."""
        ...

    def clear_problem(self, key: str) -> bool:
        """Forget the open problem ``key``; True when there was one."""
        ...


@runtime_checkable
class BrokerStore(Protocol):
    """Stage 2's book: the paper account, orders and fills (append-only),
    positions, and small JSON values kept across restarts (safe mode)."""

    def open_account(self, initial_cash: float, ts: str | None = None) -> dict[str, Any]:
        """The paper account, created with ``initial_cash`` on first use
        (an existing account is returned unchanged)."""
        ...

    def account(self) -> dict[str, Any] | None:
        """The paper account without creating it, or None."""
        ...

    def positions(self) -> dict[str, dict[str, Any]]:
        """Open positions by symbol."""
        ...

    def record_order(self, order: Mapping[str, Any], fill: Mapping[str, Any] | None = None,
                     position: Mapping[str, Any] | None = None, cash_delta: float | None = None) -> int | None:
        """One transaction: the order, and when it filled its fill, the
        position change and the cash change.  Quantity
        (``position['quantity_delta']``) and cash are applied as deltas in
        the store, so two writers never lose each other's update;
        ``avg_price`` is set as given; a position that reaches zero (below
        1e-9) is deleted.  Returns the order id, or None (nothing written)
        when an order with the same ``client_order_id`` is recorded already."""
        ...

    def update_order(self, order_id: int, *, status: str, broker_order_id: str | None = None,
                     reason: str | None = None) -> None:
        """Set a recorded order's status (and the broker's id, a reason)."""
        ...

    def order_counts(self, session: str) -> dict[str, int]:
        """Orders recorded for ``session``, by symbol."""
        ...

    def orders_with_status(self, status: str) -> list[dict[str, Any]]:
        """Recorded orders in one status, oldest first."""
        ...

    def fills(self, before_session: str | None = None) -> list[dict[str, Any]]:
        """Fills in the order recorded; with ``before_session`` only those of earlier sessions."""
        ...

    def trading_state(self, key: str) -> Any:
        """A JSON value kept across restarts, or None."""
        ...

    def set_trading_state(self, key: str, value: Any, ts: str | None = None) -> None:
        """Upsert a JSON value kept across restarts."""
        ...


@runtime_checkable
class Store(Protocol):
    """One open store: its aggregates, sharing one connection (a write that
    spans aggregates, like ``BarStore.write_symbols``, is one transaction),
    and what the application asks of the store as a whole.  A context
    manager that closes it.  Open one with ``database.open_store``."""

    bars: BarStore
    runs: RunStore
    fetch_state: FetchStateStore
    governance: GovernanceStore
    alerts: AlertStore
    broker: BrokerStore
    code_schema_version: int
    """The newest schema version this build's backend knows (its migrations)."""

    @property
    def location(self) -> str:
        """Where the store is, as the operator reads it and as
        ``database.open_store`` takes it (a second connection, a worker process)."""
        ...

    def close(self) -> None:
        ...

    def __enter__(self) -> Store:
        ...

    def __exit__(self, *exc: Any) -> None:
        ...

    def schema_version(self) -> int:
        """The schema version the store is at (migrated to on a read-write
        open; a store newer than ``code_schema_version`` is refused with a StoreError)."""
        ...

    def data_origin(self) -> str | None:
        """``'synthetic'``, ``'vendor'``, or None while the store holds no bars."""
        ...

    def check_origin(self, provider: str) -> None:
        """Raise ``MixedOriginError`` when bars from ``provider`` would mix
        synthetic and vendor data in this store (checked before a run writes;
        the write itself claims the origin)."""
        ...

    def table_count(self, table: str) -> int:
        """Rows in one of the store's tables, by its runbook name (docs/data_model.md)."""
        ...

    def check_writable(self) -> None:
        """Raise ``StoreAccessError`` naming the cause when a write could
        not be recorded now (read-only file or filesystem, locked by another
        writer for longer than a moment); returns quickly either way."""
        ...

    def check_integrity(self, *, quick: bool = False) -> IntegrityResult:
        """The backend's own consistency check (``quick``: the cheaper one,
        for status reports).  A store too damaged to check raises
        ``StoreAccessError`` instead."""
        ...
