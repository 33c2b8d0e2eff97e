"""Broker: ``paper_account``, ``orders``, ``fills``, ``positions`` and ``trading_state``.

Owns Stage 2's book: the paper account's cash, every order (paper or live)
with its fill, the positions, and the small JSON values the daemon keeps
across restarts (safe mode).  Business rules (fill price, average price,
cash arithmetic) live in ``trading.brokers``; this module only reads and
writes rows, applying quantity and cash as deltas so that two writers never
lose each other's update.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from core.clock import record_stamp
from database.values import insert_sql, sql_value, to_json

if TYPE_CHECKING:
    from database.manager import SqliteSession

_ORDER_COLUMNS = ("created_at", "session", "symbol", "side", "quantity", "order_type", "status", "reason",
                  "mode", "target_weight", "client_order_id", "broker_order_id")
_FILL_COLUMNS = ("filled_at", "session", "symbol", "side", "quantity", "price", "commission",
                 "price_source", "slippage_bps")


class BrokerRepository:
    """The paper account, orders, fills, positions and trading state
    (``db.broker``; ``database.interfaces.BrokerStore``)."""

    def __init__(self, sql: SqliteSession):
        self._sql = sql

    def open_account(self, initial_cash: float, ts: str | None = None) -> dict[str, Any]:
        """The paper account row, created with ``initial_cash`` on first use."""
        ts = ts or record_stamp()
        with self._sql.transaction():
            self._sql.run("INSERT INTO paper_account(id, initial_cash, cash, created_at, updated_at) "
                          "VALUES (1, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                          (float(initial_cash), float(initial_cash), ts, ts))
        return self._sql.dicts("SELECT * FROM paper_account WHERE id = 1")[0]

    def account(self) -> dict[str, Any] | None:
        """The paper account row without creating it (for read-only status)."""
        rows = self._sql.dicts("SELECT * FROM paper_account WHERE id = 1")
        return rows[0] if rows else None

    def positions(self) -> dict[str, dict[str, Any]]:
        """Open positions by symbol."""
        return {r["symbol"]: r for r in self._sql.dicts("SELECT * FROM positions ORDER BY symbol")}

    def record_order(self, order: Mapping[str, Any], fill: Mapping[str, Any] | None = None,
                     position: Mapping[str, Any] | None = None, cash_delta: float | None = None) -> int | None:
        """One transaction: the order row, and when it filled, its fill, the
        position change and the cash change.  Quantity and cash are applied
        as deltas in SQL (``position['quantity_delta']``, ``cash_delta``) so
        two writers never lose each other's update; ``avg_price`` is set as
        given.  A position that reaches zero is deleted.  Returns the order
        id, or None when an order with the same ``client_order_id`` is
        already recorded (nothing is written: the idempotency key of
        migration 0008)."""
        with self._sql.transaction():
            key = order.get("client_order_id")
            if key is not None and self._sql.value("SELECT 1 FROM orders WHERE client_order_id = ?", (key,)):
                return None
            order_id = self._sql.insert(
                insert_sql("orders", _ORDER_COLUMNS),
                tuple(sql_value(order.get(c, "MARKET" if c == "order_type" else None)) for c in _ORDER_COLUMNS))
            if fill is not None:
                self._sql.run(insert_sql("fills", ("order_id", *_FILL_COLUMNS)),
                              (order_id, *(sql_value(fill.get(c)) for c in _FILL_COLUMNS)))
            if position is not None:
                self._sql.run(
                    "INSERT INTO positions(symbol, quantity, avg_price, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(symbol) DO UPDATE SET quantity = positions.quantity + excluded.quantity, "
                    "avg_price = excluded.avg_price, updated_at = excluded.updated_at",
                    (position["symbol"], float(position["quantity_delta"]), float(position["avg_price"]),
                     position["updated_at"]))
                # Float sums of fractional quantities can leave dust; below 1e-9 is flat.
                self._sql.run("DELETE FROM positions WHERE symbol = ? AND ABS(quantity) < 1e-9",
                              (position["symbol"],))
            if cash_delta is not None:
                self._sql.run("UPDATE paper_account SET cash = cash + ?, updated_at = ? WHERE id = 1",
                              (float(cash_delta), order["created_at"]))
        return order_id

    def update_order(self, order_id: int, *, status: str, broker_order_id: str | None = None,
                     reason: str | None = None) -> None:
        """Set a recorded order's status (a live order recorded SUBMITTING
        before it was sent gets the broker's answer)."""
        with self._sql.transaction():
            self._sql.run("UPDATE orders SET status = ?, broker_order_id = COALESCE(?, broker_order_id), "
                          "reason = COALESCE(?, reason) WHERE id = ?", (status, broker_order_id, reason, order_id))

    def order_counts(self, session: str) -> dict[str, int]:
        """Orders recorded for ``session``, by symbol (the ordinal of the
        next order's idempotency key)."""
        return dict(self._sql.rows("SELECT symbol, COUNT(*) FROM orders WHERE session = ? GROUP BY symbol",
                                   (session,)))

    def orders_with_status(self, status: str) -> list[dict[str, Any]]:
        """Recorded orders in one status (e.g. SUBMITTING: sent or not, the broker must say)."""
        return self._sql.dicts("SELECT * FROM orders WHERE status = ? ORDER BY id", (status,))

    def fills(self, before_session: str | None = None) -> list[dict[str, Any]]:
        """Fills in id order; with ``before_session`` only those of earlier sessions."""
        if before_session:
            return self._sql.dicts("SELECT * FROM fills WHERE session < ? ORDER BY id", (before_session,))
        return self._sql.dicts("SELECT * FROM fills ORDER BY id")

    def trading_state(self, key: str) -> Any:
        """A JSON value kept across restarts (safe mode), or None."""
        text = self._sql.value("SELECT value FROM trading_state WHERE key = ?", (key,))
        return json.loads(text) if text is not None else None

    def set_trading_state(self, key: str, value: Any, ts: str | None = None) -> None:
        with self._sql.transaction():
            self._sql.run(
                "INSERT INTO trading_state(key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, to_json(value), ts or record_stamp()))
