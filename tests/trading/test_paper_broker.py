"""Paper broker: fill rule, slippage, commission, cash, positions, persistence."""
from __future__ import annotations

import pytest

from database.manager import Database
from tests.trading.market_frames import random_walk_bars, write_bars
from tests import store_reads
from trading.brokers import BUY, SELL, BrokerError, OrderRequest, PaperBroker
from trading.config import TradingConfig

CONFIG = TradingConfig(initial_cash=100_000.0, slippage_bps=10.0, commission_bps=2.0)


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "t.db")
    bars = random_walk_bars(30, seed=1)
    write_bars(db, {"AAA": bars})
    yield db, bars
    db.close()


def _date(bars, i):
    return bars["date"].iloc[i].strftime("%Y-%m-%d")


def test_order_for_the_last_session_fills_at_its_close_plus_slippage(store):
    db, bars = store
    broker = PaperBroker(db, CONFIG)
    last = _date(bars, -1)
    result = broker.submit(OrderRequest(session=last, symbol="AAA", side=BUY, quantity=10))
    close = float(bars["close"].iloc[-1])
    assert result.status == "FILLED" and result.price_source == "last_close"
    assert result.fill_price == pytest.approx(close * 1.001)
    assert result.commission == pytest.approx(10 * close * 1.001 * 0.0002)
    assert broker.book().cash == pytest.approx(100_000 - 10 * close * 1.001 - result.commission)
    assert broker.book().positions == {"AAA": 10}


def test_order_for_an_earlier_session_fills_at_the_next_open(store):
    db, bars = store
    broker = PaperBroker(db, CONFIG)
    result = broker.submit(OrderRequest(session=_date(bars, 10), symbol="AAA", side=BUY, quantity=5))
    assert result.price_source == "next_open"
    assert result.fill_price == pytest.approx(float(bars["open"].iloc[11]) * 1.001)


def test_sell_gets_slippage_against_it_and_reduction_keeps_cost_basis(store):
    db, bars = store
    broker = PaperBroker(db, CONFIG)
    s = _date(bars, -1)
    buy = broker.submit(OrderRequest(session=s, symbol="AAA", side=BUY, quantity=10))
    sell = broker.submit(OrderRequest(session=s, symbol="AAA", side=SELL, quantity=4))
    assert sell.fill_price == pytest.approx(float(bars["close"].iloc[-1]) * 0.999)
    pos = db.broker.positions()["AAA"]
    assert pos["quantity"] == 6 and pos["avg_price"] == pytest.approx(buy.fill_price)
    broker.submit(OrderRequest(session=s, symbol="AAA", side=SELL, quantity=6))
    assert "AAA" not in db.broker.positions()


def test_adding_averages_the_cost(store):
    db, bars = store
    broker = PaperBroker(db, CONFIG)
    first = broker.submit(OrderRequest(session=_date(bars, 5), symbol="AAA", side=BUY, quantity=10))
    second = broker.submit(OrderRequest(session=_date(bars, 20), symbol="AAA", side=BUY, quantity=30))
    avg = (10 * first.fill_price + 30 * second.fill_price) / 40
    assert db.broker.positions()["AAA"]["avg_price"] == pytest.approx(avg)


def test_book_persists_across_broker_instances(store, tmp_path):
    db, bars = store
    PaperBroker(db, CONFIG).submit(OrderRequest(session=_date(bars, -1), symbol="AAA", side=BUY, quantity=3))
    with Database(db.path) as other:
        book = PaperBroker(other, CONFIG).book()
    assert book.positions == {"AAA": 3}
    assert book.cash < 100_000


def test_session_start_book_replays_earlier_fills_only(store):
    db, bars = store
    broker = PaperBroker(db, CONFIG)
    broker.submit(OrderRequest(session=_date(bars, 20), symbol="AAA", side=BUY, quantity=7))
    broker.submit(OrderRequest(session=_date(bars, 29), symbol="AAA", side=BUY, quantity=2))
    start = broker.book_at_session_start(_date(bars, 29))
    assert start.positions == {"AAA": 7}
    now = broker.book()
    assert now.positions == {"AAA": 9}
    # The replayed book agrees with the stored cash when replaying everything.
    assert broker.book_at_session_start("9999-12-31").cash == pytest.approx(now.cash)


def test_short_sale_is_rejected_when_shorting_is_off(store):
    db, bars = store
    result = PaperBroker(db, CONFIG).submit(OrderRequest(session=_date(bars, -1), symbol="AAA", side=SELL,
                                                         quantity=1))
    assert result.status == "REJECTED" and "shorting disabled" in result.reason
    assert store_reads.orders(db)[0]["status"] == "REJECTED"
    assert db.broker.fills() == []


def test_symbol_without_prices_is_rejected(store):
    db, bars = store
    result = PaperBroker(db, CONFIG).submit(OrderRequest(session=_date(bars, -1), symbol="ZZZ", side=BUY,
                                                         quantity=1))
    assert result.status == "REJECTED" and "no stored price" in result.reason


def test_invalid_order_raises(store):
    db, bars = store
    with pytest.raises(BrokerError):
        PaperBroker(db, CONFIG).submit(OrderRequest(session="2023-01-03", symbol="AAA", side=BUY, quantity=0))


def test_concurrent_writers_lose_no_cash_or_quantity(store):
    """A run-once beside a running daemon: two connections trading the same
    paper book at once.  Stored cash and position equal the fills' replay."""
    import threading

    db, bars = store
    session = _date(bars, -1)
    PaperBroker(db, CONFIG)                     # creates the account

    def trade():
        with Database(db.path) as own:
            broker = PaperBroker(own, CONFIG)
            for _ in range(40):
                broker.submit(OrderRequest(session=session, symbol="AAA", side=BUY, quantity=1))

    threads = [threading.Thread(target=trade) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    broker = PaperBroker(db, CONFIG)
    replay = broker.book_at_session_start("9999-12-31")
    assert len(db.broker.fills()) == 120
    assert broker.book().positions == {"AAA": 120} == replay.positions
    assert broker.book().cash == pytest.approx(replay.cash)
