"""Fetch state: ``fetch_state``, one row per symbol, and its dead letters.

Owns where each symbol's fetching stands: the last stored session, the last
successful run and provider, the consecutive failures, and the dead-letter
flag (with the universe entry it was recorded under) that stops an
incremental run from retrying a symbol no provider serves.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    from database.manager import SqliteSession


class FetchStateRepository:
    """Each symbol's fetch state and the dead letters (``db.fetch_state``; ``database.interfaces.FetchStateStore``)."""

    def __init__(self, sql: SqliteSession):
        self._sql = sql

    def by_symbol(self) -> dict[str, dict[str, Any]]:
        """Every symbol's fetch_state row."""
        return {r["symbol"]: r for r in self._sql.dicts("SELECT * FROM fetch_state")}

    def record_success(self, symbol: str, last_date: str | None, run_id: str, provider: str, ts: str) -> None:
        """A symbol's bars were written: reset its failures and dead letter
        (inside the caller's transaction, ``BarRepository.write_symbols``)."""
        self._sql.run(
            "INSERT INTO fetch_state(symbol, last_date, last_success_run, last_provider, "
            "consecutive_failures, last_error_code, dead_letter, dead_letter_since, updated_at) "
            "VALUES (?, ?, ?, ?, 0, NULL, 0, NULL, ?) "
            "ON CONFLICT(symbol) DO UPDATE SET last_date = excluded.last_date, "
            "last_success_run = excluded.last_success_run, last_provider = excluded.last_provider, "
            "consecutive_failures = 0, last_error_code = NULL, dead_letter = 0, "
            "dead_letter_since = NULL, updated_at = excluded.updated_at",
            (symbol, last_date, run_id, provider, ts))

    def count_failure(self, symbol: str, error_code: str | None, ts: str) -> None:
        """One more consecutive failure (inside the caller's transaction)."""
        self._sql.run(
            "INSERT INTO fetch_state(symbol, consecutive_failures, last_error_code, updated_at) "
            "VALUES (?, 1, ?, ?) ON CONFLICT(symbol) DO UPDATE SET "
            "consecutive_failures = consecutive_failures + 1, "
            "last_error_code = excluded.last_error_code, updated_at = excluded.updated_at",
            (symbol, error_code, ts))

    def mark_dead_letters(self, threshold: int, ts: str, fingerprints: Mapping[str, str]) -> list[str]:
        """Dead-letter every symbol with ``threshold`` or more consecutive
        failures that is not one already, remembering the universe entry it
        was recorded under; returns the newly dead-lettered."""
        with self._sql.transaction():
            rows = self._sql.rows(
                "UPDATE fetch_state SET dead_letter = 1, dead_letter_since = ? "
                "WHERE dead_letter = 0 AND consecutive_failures >= ? RETURNING symbol", (ts, threshold))
            newly = sorted(r[0] for r in rows)
            self._sql.run_many("UPDATE fetch_state SET dead_letter_entry = ? WHERE symbol = ?",
                               [(fingerprints.get(s), s) for s in newly])
        return newly

    def revive_dead_letters(self, symbols: Iterable[str], ts: str) -> list[str]:
        """Clear the dead-letter state (and the failure count) of ``symbols``;
        returns those that were dead-lettered."""
        revived = []
        with self._sql.transaction():
            for symbol in symbols:
                row = self._sql.value(
                    "UPDATE fetch_state SET dead_letter = 0, dead_letter_since = NULL, dead_letter_entry = NULL, "
                    "consecutive_failures = 0, updated_at = ? WHERE symbol = ? AND dead_letter = 1 RETURNING symbol",
                    (ts, symbol))
                if row:
                    revived.append(symbol)
        return revived

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-lettered symbols with their failure count and last error."""
        return self._sql.dicts("SELECT symbol, consecutive_failures, last_error_code, last_date, dead_letter_since "
                               "FROM fetch_state WHERE dead_letter = 1 ORDER BY symbol")
