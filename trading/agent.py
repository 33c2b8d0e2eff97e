"""One decision cycle of Stage 2.

governed data -> forecasts (+ alpha) -> target weights (caps, safe-mode
scale) -> governance filter -> orders -> fills -> ticket.

The expensive part - reading bars, ARIMA, features, the alpha model - is the
``Snapshot``, rebuilt only when the data is refreshed.  Each cycle reads the
governance states again (a symbol demoted mid-day stops trading on the next
tick), checks for critical data gaps, sizes the book and sends the orders
that close the difference between the governed targets and the current
positions.  The kill switch is checked before every single order.

Governance filter: ``data.governance.rules.governed_quantity`` (what each
state may do; the rules page says it in the runbook's words).

Two books are used on purpose.  The *session-start* book (positions before
any fill of the session) sizes the targets and is what the ticket reports,
so re-running a session yields the same ticket; the *current* book decides
what is still to be sent, so a re-run sends nothing twice.
"""
from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from threadpoolctl import threadpool_limits

from core.errors import TradingHalt
from core.universe import UniverseEntry
from data.governance.rules import ACTIVE, DEGRADED, QUARANTINED, governed_quantity
from core.clock import record_stamp
from database import SYNTHETIC_PROVIDER, Store
from core.runtime import RuntimePaths
from trading.alpha_model import SafePredictor
from trading.brokers import BUY, SELL, Book, Broker, OrderRequest, OrderResult
from trading.config import TradingConfig
from trading.features import build_features, latest_feature_rows, price_data_hash
from trading.gate import kill_switch_engaged, kill_switch_message
from trading.risk import SafeMode, exposure, historical_var_cvar, target_weights
from trading.signals import ArimaForecaster, Forecast, Forecaster, ForecastError, RunCounters

SAFE_MODE_STATE_KEY = "safe_mode"


class KillSwitchEngaged(TradingHalt):
    """The kill switch file exists: no further order is sent; trading
    resumes when the operator removes the file."""


class StopRequested(TradingHalt):
    """SIGTERM/SIGINT arrived: the cycle stops before its next model fit or
    order (orders already sent stay recorded)."""


# (label, done, total) while the snapshot's models are fitted.
SnapshotProgress = Callable[[str, int, int], None]
# symbol -> last bar date  ->  symbol -> why its data is too old to trade on
StalenessCheck = Callable[[Mapping[str, str]], dict[str, str]]


@dataclass
class Snapshot:
    """Everything a cycle needs from the price data, computed once per refresh."""

    as_of: str | None
    data_hash: str
    closes: dict[str, float]
    last_dates: dict[str, str]
    providers: dict[str, tuple[str, ...]]
    forecasts: dict[str, Forecast]
    forecast_errors: dict[str, str]
    alphas: dict[str, float] | None
    alpha_model: str | None
    returns: pd.DataFrame           # simple adj_close returns, dates x symbols
    rows_used: dict[str, int]


@dataclass(frozen=True)
class Instruction:
    """One line of the plan for a symbol."""

    symbol: str
    state: str
    side: str | None                 # BUY / SELL, None when no order
    quantity: float                  # > 0 when side is set
    book_quantity: float
    target_quantity: float           # after the governance filter
    signal_quantity: float           # what the signal alone asked for
    target_weight: float             # signal weight (after caps and safe-mode scale)
    final_weight: float              # weight of target_quantity
    forecast: float | None
    model: str | None
    alpha: float | None
    alpha_model: str | None
    action: str                      # open, add, reduce, close, flip, hold, blocked
    note: str | None = None


@dataclass
class Decision:
    session: str | None
    mode: str
    snapshot: Snapshot
    governance: dict[str, dict[str, Any]]
    book: Book                       # session-start book (sizes targets; what the ticket reports)
    equity: float
    plan: list[Instruction]          # against the session-start book (the ticket)
    orders: list[OrderRequest]       # against the current book (what is still to send)
    exposure: dict[str, float]
    var: float
    cvar: float
    safe_mode: dict[str, Any]
    data_gaps: dict[str, str]


@dataclass
class CycleReport:
    decision: Decision
    results: list[OrderResult] = field(default_factory=list)


STORE_KEY_STATE = "order_key_store"


def order_key(store_key: str, session: str, symbol: str, ordinal: int) -> str:
    """An order's idempotency key: the ``ordinal``-th order of ``symbol``
    in ``session`` from the store ``store_key`` names.  A cycle retried
    after a crash computes the same key for an order it already recorded,
    and the store refuses it; another (or a fresh) store trading the same
    broker account never reuses one (the broker refuses a repeated
    ``client_order_id``, and reconciling by it would adopt the wrong order)."""
    return f"gt-{store_key}-{session}-{symbol}-{ordinal}"


def store_order_key(db: Store) -> str:
    """The store's part of every order key: made once, kept in ``trading_state``."""
    key = db.broker.trading_state(STORE_KEY_STATE)
    if not key:
        key = uuid.uuid4().hex[:8]
        db.broker.set_trading_state(STORE_KEY_STATE, key)
    return str(key)


def _floor_qty(value: float, decimals: int) -> float:
    """Round toward zero so a cap is never exceeded by rounding."""
    scale = 10 ** decimals
    out = math.floor(abs(value) * scale) / scale
    return math.copysign(out, value) if out else 0.0


class TradingAgent:
    """Makes and executes decisions for the selected universe symbols."""

    def __init__(self, db: Store, config: TradingConfig, broker: Broker, entries: Sequence[UniverseEntry],
                 paths: RuntimePaths, *, log: Any = None, counters: RunCounters | None = None,
                 forecaster: Forecaster | None = None, predictor: SafePredictor | None = None,
                 safe_mode: SafeMode | None = None, staleness: StalenessCheck | None = None,
                 stop_requested: Callable[[], bool] | None = None):
        self.db = db
        self.config = config
        self.broker = broker
        self.entries = {e.symbol: e for e in entries}
        self.symbols = sorted(self.entries)
        self.paths = paths
        self.log = log
        self.counters = counters if counters is not None else RunCounters()
        self.forecaster = forecaster or ArimaForecaster(window=config.forecast_window, order=config.arima_order,
                                                        ewma_halflife=config.ewma_halflife, counters=self.counters)
        self.predictor = predictor if predictor is not None else SafePredictor(paths.models_dir, self.counters, log)
        self.safe_mode = safe_mode or SafeMode(error_threshold=config.safe_mode_error_threshold,
                                               scale=config.safe_mode_scale,
                                               recovery_cycles=config.safe_mode_recovery_cycles)
        self.safe_mode.load(db.broker.trading_state(SAFE_MODE_STATE_KEY))
        self.safe_mode.on_transition = self._safe_mode_transition
        # Rule 4 of data/governance/rules.py, asked by the caller (trading.stage2)
        # with the symbols' calendars at the wall clock; None: calendar days.
        self.staleness = staleness
        self.stop_requested = stop_requested or (lambda: False)
        self.store_key = store_order_key(db)
        self.snapshot: Snapshot | None = None

    # ------------------------------------------------------------ snapshot
    def refresh_snapshot(self, progress: SnapshotProgress | None = None) -> Snapshot:
        """Rebuild the snapshot from this agent's store and adopt it (in the
        cycle's own thread: the kill switch also ends the fits)."""
        self.snapshot = self.build_snapshot(self.db, progress, halt_on_kill_switch=True)
        return self.snapshot

    def build_snapshot(self, db: Store, progress: SnapshotProgress | None = None, *,
                       halt_on_kill_switch: bool = False) -> Snapshot:
        """Read the stored bars from ``db`` and compute forecasts, features
        and alpha; the snapshot is returned, not adopted, so the daemon can
        build it on a worker thread with that thread's own connection.

        BLAS is held to one thread for the fits: statsmodels on two cores
        with OpenBLAS's own threads oversubscribes them several times over.
        ``progress`` sees each symbol fitted; a stop request ends the build,
        and so does the kill switch when the build is part of a cycle
        (``halt_on_kill_switch``; the daemon's refresh worker keeps fitting:
        a refresh sends nothing)."""
        bars: dict[str, pd.DataFrame] = {}
        for symbol in self.symbols:
            frame = db.bars.recent(symbol, self.config.history_rows)
            if len(frame):
                bars[symbol] = frame
        closes, last_dates, providers, rows_used = {}, {}, {}, {}
        returns = {}
        for symbol, frame in bars.items():
            closes[symbol] = float(frame["close"].iloc[-1])
            last_dates[symbol] = frame["date"].iloc[-1].strftime("%Y-%m-%d")
            providers[symbol] = tuple(sorted(set(frame["provider"].dropna())))
            rows_used[symbol] = len(frame)
            adj = frame.set_index(frame["date"].dt.strftime("%Y-%m-%d"))["adj_close"]
            returns[symbol] = adj.pct_change().iloc[1:].tail(self.config.var_window)
        forecasts, errors = {}, {}
        with threadpool_limits(limits=1, user_api="blas"):
            for done, (symbol, frame) in enumerate(bars.items(), start=1):
                if self.stop_requested():
                    raise StopRequested(f"stopped while fitting models ({done - 1} of {len(bars)} done)")
                if halt_on_kill_switch and kill_switch_engaged(self.paths.kill_switch):
                    raise KillSwitchEngaged(kill_switch_message(self.paths.kill_switch))
                try:
                    forecasts[symbol] = self.forecaster.forecast(symbol, frame)
                except ForecastError as exc:
                    errors[symbol] = str(exc)
                if progress is not None:
                    progress(symbol, done, len(bars))
            feature_rows = latest_feature_rows(build_features(s, bars[s]) for s in sorted(bars))
            alphas = self.predictor.predict(feature_rows) if len(feature_rows) else None
        returns_frame = pd.DataFrame(returns).sort_index() if returns else pd.DataFrame()
        return Snapshot(
            as_of=max(last_dates.values()) if last_dates else None, data_hash=price_data_hash(bars),
            closes=closes, last_dates=last_dates, providers=providers, forecasts=forecasts,
            forecast_errors=errors, alphas=alphas, alpha_model=self.predictor.model_id if alphas else None,
            returns=returns_frame, rows_used=rows_used)

    # ------------------------------------------------------------ decision
    def data_gaps(self, snapshot: Snapshot, governance: Mapping[str, Mapping[str, Any]],
                  held: Mapping[str, float]) -> dict[str, str]:
        """Critical gaps among tradable (ACTIVE) and held symbols: no bars, a
        non-finite last close, or a last bar too old to trade on - rule 4
        (sessions of the symbol's calendar behind its last complete session
        at the wall clock) when the agent was given ``staleness``, else
        more than ``max_stale_days`` calendar days behind the snapshot."""
        gaps = {}
        if snapshot.as_of is None:
            return {"*": "no stored bars"}
        as_of = dt.date.fromisoformat(snapshot.as_of)
        watched = [s for s in self.symbols
                   if (governance.get(s) or {}).get("state") == ACTIVE or held.get(s)]
        stale = self.staleness({s: snapshot.last_dates[s] for s in watched if s in snapshot.last_dates}) \
            if self.staleness is not None else {}
        for symbol in watched:
            last = snapshot.last_dates.get(symbol)
            if last is None:
                gaps[symbol] = "no stored bars"
                continue
            lag = (as_of - dt.date.fromisoformat(last)).days
            if symbol in stale:
                gaps[symbol] = stale[symbol]
            elif self.staleness is None and lag > self.config.max_stale_days:
                gaps[symbol] = f"last bar {last} is {lag} days behind {snapshot.as_of}"
            elif not math.isfinite(snapshot.closes.get(symbol, float("nan"))):
                gaps[symbol] = "last close is not a number"
        return gaps

    def decide(self, *, governance: Mapping[str, Mapping[str, Any]] | None = None, current: Book | None = None,
               gaps: Mapping[str, str] | None = None) -> Decision:
        """The plan for the current session given the governance states now
        (each read once per cycle: ``run_cycle`` passes what it read)."""
        snapshot = self.snapshot or self.refresh_snapshot()
        if governance is None:
            governance = self.db.governance.states(self.symbols)
        if current is None:
            current = self.broker.book()
        session = snapshot.as_of
        book = self.broker.book_at_session_start(session, current) if session else current
        if gaps is None:
            gaps = self.data_gaps(snapshot, governance, current.positions)
        if book.equity is not None:
            equity = book.equity
        else:
            equity = book.cash + sum(q * snapshot.closes.get(s, 0.0) for s, q in book.positions.items()
                                     if math.isfinite(snapshot.closes.get(s, 0.0)))
        scores, vols, blocked = {}, {}, {}
        for symbol in self.symbols:
            fc = snapshot.forecasts.get(symbol)
            if fc is None:
                blocked[symbol] = snapshot.forecast_errors.get(symbol, "no stored bars")
                continue
            if self.config.mode == "live" and SYNTHETIC_PROVIDER in snapshot.providers.get(symbol, ()):
                blocked[symbol] = "live mode refuses data from the synthetic provider"
                continue
            if symbol in gaps:
                blocked[symbol] = f"critical data gap: {gaps[symbol]}"
                continue
            alpha = (snapshot.alphas or {}).get(symbol)
            scores[symbol] = fc.expected_return + (self.config.alpha_weight * alpha if alpha is not None else 0.0)
            vols[symbol] = fc.volatility
        weights = target_weights(scores, vols, max_symbol_weight=self.config.max_symbol_weight,
                                 max_gross_exposure=self.config.max_gross_exposure,
                                 allow_short=self.config.allow_short,
                                 exposure_scale=self.safe_mode.exposure_scale)
        plan, orders, final_weights = [], [], {}
        # The idempotency key of each order: session, symbol and its ordinal
        # among that session's recorded orders (database migration 0008).
        recorded = self.db.broker.order_counts(session) if session else {}
        for symbol in self.symbols:
            state = (governance.get(symbol) or {}).get("state")
            close = snapshot.closes.get(symbol)
            fc = snapshot.forecasts.get(symbol)
            alpha = (snapshot.alphas or {}).get(symbol)
            held_start = book.quantity(symbol)
            held_now = current.quantity(symbol)
            usable = (symbol not in blocked and close is not None and math.isfinite(close) and close > 0
                      and equity > 0)
            if usable:
                weight = weights.get(symbol, 0.0)
                signal_qty = _floor_qty(weight * equity / close, self.config.quantity_decimals)
                target_start, action = governed_quantity(state, signal_qty, held_start)
                note = None
            else:
                # No usable signal or price: whatever is held stays held.
                weight, signal_qty = 0.0, held_start
                target_start, action = held_start, "blocked"
                note = blocked.get(symbol, "no usable price")
            price = close if close is not None and math.isfinite(close) else 0.0
            final_weights[symbol] = target_start * price / equity if equity > 0 else 0.0
            side, qty = self._order_side(held_start, target_start, close)
            if state == QUARANTINED or state is None:
                note = note or f"governance state {state or 'missing'}: no orders"
            elif state == DEGRADED and action == "blocked":
                note = note or "DEGRADED: reduce-only, nothing to reduce"
            plan.append(Instruction(symbol=symbol, state=state or "MISSING", side=side, quantity=qty,
                                    book_quantity=held_start, target_quantity=target_start,
                                    signal_quantity=signal_qty, target_weight=weight,
                                    final_weight=final_weights[symbol],
                                    forecast=fc.expected_return if fc else None, model=fc.model if fc else None,
                                    alpha=alpha, alpha_model=snapshot.alpha_model if alpha is not None else None,
                                    action=action if side or action == "blocked" else "hold", note=note))
            # What is still to send: the same rule against the current book.
            if usable:
                target_now, _ = governed_quantity(state, signal_qty, held_now)
                side_now, qty_now = self._order_side(held_now, target_now, close)
                if side_now:
                    orders.append(OrderRequest(session=session, symbol=symbol, side=side_now, quantity=qty_now,
                                               asset_class=self.entries[symbol].asset_class,
                                               target_weight=weight, reason=f"{state} target {target_now:g}",
                                               client_order_id=order_key(self.store_key, session, symbol,
                                                                         recorded.get(symbol, 0) + 1)))
        var, cvar = historical_var_cvar(final_weights, snapshot.returns, self.config.var_level)
        return Decision(session=session, mode=self.config.mode, snapshot=snapshot, governance=governance,
                        book=book, equity=equity, plan=plan, orders=orders, exposure=exposure(final_weights),
                        var=var, cvar=cvar, safe_mode=self.safe_mode.to_dict(), data_gaps=dict(gaps))

    def _order_side(self, held: float, target: float, close: float | None) -> tuple[str | None, float]:
        delta = round(target - held, self.config.quantity_decimals)
        if delta == 0 or close is None or not math.isfinite(close):
            return None, 0.0
        if abs(delta) * close < self.config.min_order_notional and target != 0:
            return None, 0.0           # too small to be worth an order (a close is always sent)
        return (BUY if delta > 0 else SELL), abs(delta)

    # ------------------------------------------------------------ execution
    def execute(self, decision: Decision) -> list[OrderResult]:
        """Send the decision's orders; stop before any order once the kill
        switch exists or a stop was requested.  Each order is in the store
        (the broker records it) before it is logged: a log that cannot be
        written loses a line, never the record of an order."""
        results = []
        for order in decision.orders:
            stamped = replace(order, created_at=record_stamp())
            if kill_switch_engaged(self.paths.kill_switch):
                raise KillSwitchEngaged(kill_switch_message(self.paths.kill_switch))
            if self.stop_requested():
                raise StopRequested(f"stopped after {len(results)} of {len(decision.orders)} order(s)")
            result = self.broker.submit(stamped)
            results.append(result)
            if self.log is not None:
                price = f" @ {result.fill_price:.4f} ({result.price_source})" if result.fill_price else ""
                self.log.info("ORDER", module="trading.agent",
                              message=f"ORDER {result.side} {result.quantity:.10g} {result.symbol}{price} "
                                      f"{result.status}{' - ' + result.reason if result.reason else ''} "
                                      f"[{order.client_order_id}]",
                              symbol=result.symbol, side=result.side, order_id=result.order_id,
                              client_order_id=order.client_order_id,
                              quantity=result.quantity, status=result.status, price=result.fill_price,
                              price_source=result.price_source, session=order.session, reason=result.reason)
        return results

    def run_cycle(self, progress: SnapshotProgress | None = None) -> CycleReport:
        """One full cycle: gaps -> safe mode -> decision -> orders
        (``progress``: the model fits, when the snapshot must be built first)."""
        if kill_switch_engaged(self.paths.kill_switch):
            raise KillSwitchEngaged(kill_switch_message(self.paths.kill_switch))
        snapshot = self.snapshot or self.refresh_snapshot(progress)
        governance = self.db.governance.states(self.symbols)
        current = self.broker.book()
        gaps = self.data_gaps(snapshot, governance, current.positions)
        if gaps:
            self.safe_mode.record_data_gap("; ".join(f"{s}: {why}" for s, why in sorted(gaps.items())))
        decision = self.decide(governance=governance, current=current, gaps=gaps)
        results = self.execute(decision)
        if not gaps:
            self.safe_mode.record_clean_cycle()
        self.persist_safe_mode()
        self.counters.add("cycles")
        return CycleReport(decision, results)

    def record_loop_error(self, exc: BaseException) -> None:
        """A failed cycle (called by the loop that caught it)."""
        self.safe_mode.record_error(f"{type(exc).__name__}: {exc}")
        self.persist_safe_mode()

    def persist_safe_mode(self) -> None:
        self.db.broker.set_trading_state(SAFE_MODE_STATE_KEY, self.safe_mode.to_dict())

    def _safe_mode_transition(self, event: str, state, reason: str) -> None:
        detail = {"scale": self.safe_mode.exposure_scale, "consecutive_errors": state.consecutive_errors}
        self.db.governance.record_event(event, reason=reason, detail=detail,
                                        before_state="SAFE" if event == "SAFE_MODE_EXIT" else "NORMAL",
                                        after_state="SAFE" if event == "SAFE_MODE_ENTER" else "NORMAL")
        if self.log is not None:
            self.log.warning(event, module="trading.risk", reason=reason, **detail)
