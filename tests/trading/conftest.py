"""Stage 2 fixtures: a tmp runtime (RUNTIME_DIR, LOGS_DIR, SETTINGS_FILE,
UNIVERSE_FILE), a seeded store, and a network guard."""
from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.runtime import RuntimePaths
from tests.trading.market_frames import seed_store, write_settings, write_universe

SYMBOLS = ("AAA", "BBB", "CCC")


@dataclass
class Desk:
    root: Path
    paths: RuntimePaths
    universe: Path
    settings: Path
    symbols: tuple[str, ...]


class NetworkBlocked(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection to a non-loopback address fails the test."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and sock.family != socket.AF_UNIX:
            raise NetworkBlocked(f"test tried to connect to {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "LIVE_TRADING_CONFIRMED", "ALPACA_PAPER"):
        monkeypatch.delenv(name, raising=False)


class ExplodingLiveBroker:
    """Stands in for the live broker in every Stage 2 test: constructing it
    fails the test (a test of live mode passes its own broker factory)."""

    def __init__(self, *args, **kwargs):
        pytest.fail("the live broker was constructed by a test that did not ask for it")


@pytest.fixture(autouse=True)
def live_broker_explodes(monkeypatch):
    import trading.stage2

    monkeypatch.setattr(trading.stage2, "LiveAlpacaBroker", ExplodingLiveBroker)


@pytest.fixture
def desk(tmp_path, monkeypatch) -> Desk:
    """An empty desk: env points at tmp; nothing seeded yet."""
    root = tmp_path / "runtime"
    root.mkdir()
    monkeypatch.setenv("RUNTIME_DIR", str(root))
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    settings = write_settings(tmp_path / "settings.toml")
    monkeypatch.setenv("SETTINGS_FILE", str(settings))
    universe = write_universe(tmp_path / "universe.json", SYMBOLS)
    monkeypatch.setenv("UNIVERSE_FILE", str(universe))
    return Desk(root, RuntimePaths.resolve(), universe, settings, SYMBOLS)


@pytest.fixture
def seeded(desk) -> Desk:
    """The desk with 300 bars per symbol, all ACTIVE, Stage 1 verified."""
    seed_store(desk.paths.db, desk.symbols, rows=300)
    return desk
