"""Live mode: refused without credentials, confirmation or Stage 1 verified,
with no network call; paper mode never touches the live broker."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from database.manager import Database
from core.settings import load_settings
from tests.trading.fake_alpaca_trading import FakeAlpacaTrading
from tests.trading.market_frames import SEEDED_AS_OF, seed_store
from tests import store_reads
from trading.brokers import LiveAlpacaBroker
from trading.config import load_trading_config
from cli.stage2 import run_command
from trading.stage2 import Stage2Options, run_stage2

import main as main_cli

AS_OF = dt.date.fromisoformat(SEEDED_AS_OF)

KEYS = {"ALPACA_API_KEY": "PKTESTKEY0000001", "ALPACA_SECRET_KEY": "s3cr3t-canary-value-0001"}


def exploding_live_broker(*args, **kwargs):
    pytest.fail("the live broker was constructed")


def test_live_without_credentials_is_refused_without_network(desk):
    result = CliRunner().invoke(main_cli.main, ["--mode=live", "--run-once", "--as-of", SEEDED_AS_OF])
    assert result.exit_code == 2
    assert "live trading refused" in result.output
    assert "ALPACA_API_KEY and ALPACA_SECRET_KEY must be set" in result.output
    assert "--confirm-live" in result.output
    assert not desk.paths.db.exists()


def test_live_without_confirmation_is_refused(seeded, monkeypatch):
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    code = run_command(Stage2Options(mode="live", run_once=True, as_of=AS_OF), live_broker_factory=exploding_live_broker)
    assert code == 2


def test_confirmation_by_env_still_needs_stage1_passed(desk, monkeypatch, capsys):
    """Paper trades a store with a DEGRADED symbol (it only reduces there);
    live refuses it: Stage 1 has not passed (rule 5) at the as-of date."""
    seed_store(desk.paths.db, desk.symbols, rows=300, states={"AAA": "ACTIVE", "BBB": "DEGRADED", "CCC": "ACTIVE"})
    for k, v in {**KEYS, "LIVE_TRADING_CONFIRMED": "yes"}.items():
        monkeypatch.setenv(k, v)
    code = run_command(Stage2Options(mode="live", run_once=True, as_of=AS_OF), live_broker_factory=exploding_live_broker)
    assert code == 2
    err = capsys.readouterr().err
    assert "Stage 1 not verified: 1 of 3 symbol(s) fail it (BBB DEGRADED" in err
    assert run_command(Stage2Options(mode="paper", run_once=True, as_of=AS_OF)) == 0


def test_paper_mode_drops_live_credentials_and_never_builds_the_live_broker(seeded, monkeypatch):
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    assert load_trading_config(load_settings(), "paper").live_credentials is None
    live = load_trading_config(load_settings(), "live")
    assert live.live_credentials is not None and KEYS["ALPACA_SECRET_KEY"] not in repr(live)
    code = run_command(Stage2Options(mode="paper", run_once=True, as_of=AS_OF), live_broker_factory=exploding_live_broker)
    assert code == 0


def _live_opts():
    return Stage2Options(mode="live", run_once=True, as_of=AS_OF, confirm_live=True)


def test_confirmed_live_run_sends_orders_through_trading_client(desk, monkeypatch, capsys):
    seed_store(desk.paths.db, desk.symbols, rows=300, drifts={s: 0.004 for s in desk.symbols}, vol=0.006)
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    with FakeAlpacaTrading(cash=1_000_000) as alpaca:
        factory = lambda creds, db: LiveAlpacaBroker(creds, db, url_override=alpaca.url)  # noqa: E731
        code = run_command(_live_opts(), as_json=True, live_broker_factory=factory)
        assert code == 0, capsys.readouterr()
        # A re-run while those orders are still working sends nothing again.
        assert run_command(_live_opts(), as_json=True, live_broker_factory=factory) == 0
    assert {o["symbol"] for o in alpaca.orders} == {"AAA", "BBB", "CCC"}
    assert all(o["side"] == "buy" and o["time_in_force"] == "day" for o in alpaca.orders)
    assert all(r["key"] == KEYS["ALPACA_API_KEY"] for r in alpaca.requests)
    with Database(desk.paths.db) as db:
        rows = store_reads.orders(db, mode="live")
    assert len(rows) == 3 and all(r["status"] == "ACCEPTED" and r["broker_order_id"] for r in rows)


def test_live_mode_refuses_symbols_with_synthetic_data(desk, monkeypatch, capsys):
    seed_store(desk.paths.db, desk.symbols, rows=300, provider="synthetic",
               drifts={s: 0.004 for s in desk.symbols}, vol=0.006)
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    with FakeAlpacaTrading() as alpaca:
        code = run_command(_live_opts(), as_json=True, live_broker_factory=lambda creds, db: LiveAlpacaBroker(
            creds, db, url_override=alpaca.url))
    assert code == 0
    assert alpaca.orders == []
    out = json.loads(capsys.readouterr().out)
    notes = {e["symbol"]: e["note"] for e in out["ticket"]["evidence"]}
    assert all("synthetic" in n for n in notes.values())


def test_non_loopback_connection_is_blocked_by_the_guard():
    import socket

    with pytest.raises(AssertionError, match="tried to connect"):
        socket.create_connection(("192.0.2.1", 443), timeout=0.1)


def test_the_default_live_broker_explodes_in_tests(seeded, monkeypatch):
    """The autouse guard works: a fully confirmed live run without an
    explicit broker factory fails the test instead of reaching Alpaca."""
    for k, v in {**KEYS, "LIVE_TRADING_CONFIRMED": "yes"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(pytest.fail.Exception, match="live broker was constructed"):
        run_stage2(Stage2Options(mode="live", run_once=True, as_of=AS_OF))


def test_live_broker_itself_refuses_orders_on_a_synthetic_store(desk):
    from trading.brokers import BUY, OrderRequest
    from trading.config import LiveCredentials

    seed_store(desk.paths.db, ["AAA"], rows=30, provider="synthetic")
    with FakeAlpacaTrading() as alpaca, Database(desk.paths.db) as db:
        broker = LiveAlpacaBroker(LiveCredentials("k" * 16, "s" * 24), db, url_override=alpaca.url)
        result = broker.submit(OrderRequest(session="2023-02-10", symbol="AAA", side=BUY, quantity=1))
    assert result.status == "REJECTED" and "synthetic" in result.reason
    assert alpaca.requests == []
