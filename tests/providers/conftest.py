"""Fixtures for the vendor tests: a tmp runtime, the loopback vendor server,
canary credentials, and quirks that keep deadlines and backoffs short."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.fakes.vendor_server import VendorServer, sample_frame
from tests.providers.vendor_setup import CANARY_ALPACA_KEY, CANARY_ALPACA_SECRET, CANARY_POLYGON

@pytest.fixture
def vendor_runtime(tmp_path, monkeypatch):
    """RUNTIME_DIR/LOGS_DIR under tmp; vendor env cleared, then entitled
    with canary keys (tests that need otherwise override)."""
    root = tmp_path / "runtime"
    root.mkdir()
    monkeypatch.setenv("RUNTIME_DIR", str(root))
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    for name in ("SETTINGS_FILE", "PROVIDER_PRIORITY", "FILE_PROVIDER_DIR", "YAHOO_BASE_URL",
                 "POLYGON_BASE_URL", "ALPACA_DATA_URL", "YAHOO_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POLYGON_ENABLED", "true")
    monkeypatch.setenv("ALPACA_ENABLED", "true")
    monkeypatch.setenv("POLYGON_API_KEY", CANARY_POLYGON)
    monkeypatch.setenv("ALPACA_API_KEY", CANARY_ALPACA_KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", CANARY_ALPACA_SECRET)
    return root


@pytest.fixture
def server():
    """A started VendorServer with AAPL, MSFT, BRK-B, SPY (dividend and
    split inside the window), EURUSD=X, BTC-USD and GC=F registered."""
    with VendorServer(stall_seconds=1.0) as srv:
        srv.register("AAPL", sample_frame(seed=1, dividend_on=5, split_on=20))
        srv.register("MSFT", sample_frame(seed=2))
        srv.register("BRK-B", sample_frame(seed=3, base_price=400.0))
        srv.register("JPM", sample_frame(seed=9, base_price=150.0))
        srv.register("SPY", sample_frame(start=str(dt.date.today() - dt.timedelta(days=40)), seed=4))
        srv.register("EURUSD=X", sample_frame(seed=5, base_price=1.1))
        srv.register("BTC-USD", sample_frame(seed=6, calendar="D", base_price=40000.0))
        srv.register("GC=F", sample_frame(seed=8, base_price=2000.0))
        yield srv


@pytest.fixture
def point_env_at(monkeypatch):
    """Point every vendor at ``server.url`` through the env variables the
    operator would use (what the router's ``cls()`` construction reads)."""
    def apply(server: VendorServer) -> None:
        monkeypatch.setenv("YAHOO_BASE_URL", server.url)
        monkeypatch.setenv("POLYGON_BASE_URL", server.url)
        monkeypatch.setenv("ALPACA_DATA_URL", server.url)
    return apply
