"""Brokers: a paper broker persisted in SQLite, and Alpaca for live mode.

Paper fills ("at the next available price").  This is a daily system: an
order belongs to a session D (the date of the last stored bar its decision
used).  It fills

* at the open of the first stored bar after D, when one exists (the order is
  being placed late, e.g. after the daemon's refresh stored the next bar); or
* otherwise at D's close (the last close on or before D) - the next price
  the system will ever have for D is not stored yet, and waiting for it
  would leave the book stale for a whole session.

Either way the price moves against the order by ``slippage_bps`` and a
commission of ``commission_bps`` of the notional is charged.  The fill rule
is recorded per fill (``price_source``: next_open / last_close).

The live broker wraps alpaca-py's ``TradingClient``.  It is constructed only
by ``trading.stage2.run_stage2`` in live mode, after Stage 1 is verified, and
creates its client lazily, so nothing in paper mode can reach Alpaca.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from core.clock import record_stamp
from core.errors import OperationFailed
from database import SYNTHETIC_PROVIDER, Store
from trading.config import LiveCredentials, TradingConfig

BUY, SELL = "BUY", "SELL"
# An order whose idempotency key (client_order_id) is recorded already: not
# recorded or sent again (a retried cycle, a second daemon on the store).
DUPLICATE = "DUPLICATE"
# A live order recorded before it is sent; the broker's answer replaces it.
SUBMITTING = "SUBMITTING"


@dataclass(frozen=True)
class OrderRequest:
    session: str
    symbol: str
    side: str
    quantity: float
    asset_class: str = "stocks"
    target_weight: float | None = None
    reason: str | None = None
    client_order_id: str | None = None
    # Stamped by the sender just before its last kill-switch check, so an
    # order's created_at never postdates a kill switch it did not see.
    created_at: str | None = None


@dataclass(frozen=True)
class OrderResult:
    order_id: int | None
    symbol: str
    side: str
    quantity: float
    status: str                      # FILLED, NEW/ACCEPTED (live, pending), REJECTED, DUPLICATE
    fill_price: float | None = None
    commission: float = 0.0
    price_source: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Book:
    """Cash and signed position quantities."""

    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    # The broker's own valuation when it has one (live); None: value the
    # positions at the stored closes.
    equity: float | None = None

    def quantity(self, symbol: str) -> float:
        return self.positions.get(symbol, 0.0)


class Broker(Protocol):
    mode: str

    def book(self) -> Book:
        """The current cash and positions."""
        ...

    def book_at_session_start(self, session: str, current: Book) -> Book:
        """Cash and positions before any fill of ``session`` (``current`` is
        the book just read, for brokers whose own book is the only truth)."""
        ...

    def submit(self, order: OrderRequest) -> OrderResult:
        ...


class BrokerError(OperationFailed):
    """The broker could not take or report an order: the cycle fails (a
    loop error for the daemon)."""


class PaperBroker:
    """Orders, fills, positions and cash in the store's paper tables."""

    mode = "paper"

    def __init__(self, db: Store, config: TradingConfig, *, clock: Callable[[], str] = record_stamp):
        self.db = db
        self.config = config
        self.clock = clock
        self.account = db.broker.open_account(config.initial_cash)
        self._session_start: tuple[str, Book] | None = None

    def book(self) -> Book:
        account = self.db.broker.account() or self.db.broker.open_account(self.config.initial_cash)
        positions = {s: float(r["quantity"]) for s, r in self.db.broker.positions().items()}
        return Book(cash=float(account["cash"]), positions=positions)

    def book_at_session_start(self, session: str, current: Book | None = None) -> Book:
        """Replays the fills of earlier sessions from the initial cash, so the
        answer depends only on what was filled before ``session`` - not on
        how many times the session has run.  Cached per session: orders are
        only ever placed for the latest session, so earlier fills are final."""
        if self._session_start is not None and self._session_start[0] == session:
            return self._session_start[1]
        book = self._replay_before(session)
        self._session_start = (session, book)
        return book

    def _replay_before(self, session: str) -> Book:
        cash = float(self.account["initial_cash"])
        positions: dict[str, float] = {}
        for fill in self.db.broker.fills(before_session=session):
            signed = float(fill["quantity"]) * (1 if fill["side"] == BUY else -1)
            cash -= signed * float(fill["price"]) + float(fill["commission"])
            qty = positions.get(fill["symbol"], 0.0) + signed
            positions[fill["symbol"]] = qty
        return Book(cash=cash, positions={s: q for s, q in positions.items() if abs(q) > 1e-12})

    def fill_price(self, symbol: str, session: str) -> tuple[float, str] | None:
        """The base price (before slippage) and its source, or None."""
        nxt = self.db.bars.first_after(symbol, session)
        if nxt is not None and _usable(nxt.get("open")):
            return float(nxt["open"]), "next_open"
        last = self.db.bars.last_on_or_before(symbol, session)
        if last is not None and _usable(last.get("close")):
            return float(last["close"]), "last_close"
        return None

    def submit(self, order: OrderRequest) -> OrderResult:
        if order.side not in (BUY, SELL) or not (order.quantity > 0):
            raise BrokerError(f"{order.symbol}: invalid order {order.side} {order.quantity}")
        now = order.created_at or self.clock()
        row = {"created_at": now, "session": order.session, "symbol": order.symbol, "side": order.side,
               "quantity": order.quantity, "mode": "paper", "target_weight": order.target_weight,
               "client_order_id": order.client_order_id, "reason": order.reason}
        current = self.db.broker.positions().get(order.symbol)
        held = float(current["quantity"]) if current else 0.0
        signed = order.quantity if order.side == BUY else -order.quantity
        if not self.config.allow_short and held + signed < -1e-9:
            return self._reject(row, f"sell of {order.quantity} exceeds the {held} held (shorting disabled)")
        priced = self.fill_price(order.symbol, order.session)
        if priced is None:
            return self._reject(row, "no stored price to fill at")
        base, source = priced
        slip = self.config.slippage_bps / 10_000.0
        price = base * (1 + slip) if order.side == BUY else base * (1 - slip)
        commission = abs(order.quantity * price) * self.config.commission_bps / 10_000.0
        cash_delta = -signed * price - commission
        new_qty = held + signed
        if abs(new_qty) < 1e-12:
            new_qty, avg = 0.0, 0.0
        elif held == 0 or (held > 0) != (new_qty > 0):
            avg = price                      # opened, or flipped through zero
        elif abs(new_qty) > abs(held):
            avg = (abs(held) * float(current["avg_price"]) + abs(signed) * price) / abs(new_qty)
        else:
            avg = float(current["avg_price"])  # a reduction keeps the cost basis
        fill = {"filled_at": now, "session": order.session, "symbol": order.symbol, "side": order.side,
                "quantity": order.quantity, "price": price, "commission": commission,
                "price_source": source, "slippage_bps": self.config.slippage_bps}
        position = {"symbol": order.symbol, "quantity_delta": signed, "avg_price": avg, "updated_at": now}
        order_id = self.db.broker.record_order(dict(row, status="FILLED"), fill, position, cash_delta)
        if order_id is None:
            return _duplicate(order)
        return OrderResult(order_id, order.symbol, order.side, order.quantity, "FILLED", price, commission, source)

    def _reject(self, row: dict[str, Any], reason: str) -> OrderResult:
        order_id = self.db.broker.record_order(dict(row, status="REJECTED", reason=reason))
        if order_id is None:
            return OrderResult(None, row["symbol"], row["side"], row["quantity"], DUPLICATE,
                               reason=f"order {row['client_order_id']} is recorded already")
        return OrderResult(order_id, row["symbol"], row["side"], row["quantity"], "REJECTED", reason=reason)


def _duplicate(order: OrderRequest) -> OrderResult:
    """The idempotency key says this order was recorded (and, live, sent) already."""
    return OrderResult(None, order.symbol, order.side, order.quantity, DUPLICATE,
                       reason=f"order {order.client_order_id} is recorded already; not sent again")


def _usable(value: Any) -> bool:
    return value is not None and math.isfinite(float(value)) and float(value) > 0


# ----------------------------------------------------------------- live
LIVE_ASSET_CLASSES = ("stocks", "crypto")


def alpaca_symbol(symbol: str, asset_class: str) -> str:
    """Our symbol as Alpaca spells it (BTC-USD -> BTC/USD, BRK-B -> BRK.B)."""
    if asset_class == "crypto":
        return symbol.replace("-", "/")
    return symbol.replace("-", ".")


def from_alpaca_symbol(symbol: str) -> str:
    return symbol.replace("/", "-").replace(".", "-")


class LiveAlpacaBroker:
    """Orders through alpaca-py's TradingClient (constructed on first use)."""

    mode = "live"

    def __init__(self, credentials: LiveCredentials, db: Store, *, url_override: str | None = None,
                 clock: Callable[[], str] = record_stamp):
        if credentials is None:
            raise BrokerError("live broker needs credentials")
        self._credentials = credentials
        self._url_override = url_override
        self._client = None
        self.db = db
        self.clock = clock

    def client(self):
        if self._client is None:
            from alpaca.trading.client import TradingClient

            self._client = TradingClient(self._credentials.api_key, self._credentials.secret_key,
                                         paper=self._credentials.alpaca_paper_endpoint,
                                         url_override=self._url_override)
        return self._client

    def book(self) -> Book:
        """Cash and positions, with open orders counted as if filled: a
        re-run while orders are still working must not send them again."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        self.reconcile()
        try:
            account = self.client().get_account()
            positions = self.client().get_all_positions()
            working = self.client().get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
        except Exception as exc:
            raise BrokerError(f"alpaca: cannot read the account: {exc}") from exc
        held: dict[str, float] = {}
        for p in positions:
            qty = float(p.qty)
            if str(getattr(p.side, "value", p.side)).lower() == "short" and qty > 0:
                qty = -qty
            held[from_alpaca_symbol(p.symbol)] = qty
        for o in working:
            remaining = float(o.qty or 0) - float(o.filled_qty or 0)
            sign = 1.0 if str(getattr(o.side, "value", o.side)).lower() == "buy" else -1.0
            symbol = from_alpaca_symbol(o.symbol)
            held[symbol] = held.get(symbol, 0.0) + sign * remaining
        equity = float(account.equity) if getattr(account, "equity", None) is not None else None
        return Book(cash=float(account.cash), positions={s: q for s, q in held.items() if q}, equity=equity)

    def book_at_session_start(self, session: str, current: Book) -> Book:
        # The broker's own book is the truth in live mode; ``current`` was
        # just read, and reading it again would double the API calls.
        return current

    def submit(self, order: OrderRequest) -> OrderResult:
        now = order.created_at or self.clock()
        row = {"created_at": now, "session": order.session, "symbol": order.symbol, "side": order.side,
               "quantity": order.quantity, "mode": "live", "target_weight": order.target_weight,
               "client_order_id": order.client_order_id, "reason": order.reason}
        reason = None
        if self.db.data_origin() == SYNTHETIC_PROVIDER:
            # Second line of defence (the agent already refuses these symbols):
            # never send a real order decided on synthetic prices.
            reason = "the store holds synthetic data; live orders refused"
        elif order.asset_class not in LIVE_ASSET_CLASSES:
            reason = f"alpaca does not trade {order.asset_class}"
        if reason:
            oid = self.db.broker.record_order(dict(row, status="REJECTED", reason=reason))
            if oid is None:
                return _duplicate(order)
            return OrderResult(oid, order.symbol, order.side, order.quantity, "REJECTED", reason=reason)
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        request = MarketOrderRequest(
            symbol=alpaca_symbol(order.symbol, order.asset_class), qty=order.quantity,
            side=OrderSide.BUY if order.side == BUY else OrderSide.SELL,
            # Alpaca accepts only GTC/IOC for crypto.
            time_in_force=TimeInForce.GTC if order.asset_class == "crypto" else TimeInForce.DAY,
            client_order_id=order.client_order_id)
        # Recorded before it is sent: an order the store cannot take is never
        # sent, and one whose answer is lost is found again by its key.
        oid = self.db.broker.record_order(dict(row, status=SUBMITTING))
        if oid is None:
            return _duplicate(order)
        try:
            placed = self.client().submit_order(request)
        except Exception as exc:
            # Sent or not, only the broker knows: the row stays SUBMITTING and
            # the next book() asks the broker by client_order_id.
            raise BrokerError(f"alpaca: order {order.side} {order.quantity} {order.symbol} failed: {exc}") from exc
        status = str(getattr(placed.status, "value", placed.status)).upper()
        self.db.broker.update_order(oid, status=status, broker_order_id=str(placed.id))
        return OrderResult(oid, order.symbol, order.side, order.quantity, status)

    def reconcile(self) -> None:
        """Give every order left SUBMITTING (its answer was lost) the
        broker's status, looked up by its client_order_id; one the broker
        never received becomes NOT_SENT.  Before any new order is decided:
        the book then counts what was really sent, and no retry doubles it."""
        for row in self.db.broker.orders_with_status(SUBMITTING):
            try:
                placed = self.client().get_order_by_client_id(row["client_order_id"])
            except Exception as exc:
                if getattr(exc, "status_code", None) == 404:
                    self.db.broker.update_order(row["id"], status="NOT_SENT",
                                                reason="the broker has no order with this client_order_id")
                    continue
                raise BrokerError(f"alpaca: cannot look up order {row['client_order_id']}: {exc}") from exc
            status = str(getattr(placed.status, "value", placed.status)).upper()
            self.db.broker.update_order(row["id"], status=status, broker_order_id=str(placed.id))
