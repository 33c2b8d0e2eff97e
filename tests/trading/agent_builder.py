"""Build a TradingAgent over a seeded desk the way stage2 does, with an
injectable forecaster and broker."""
from __future__ import annotations

from ops.settings import load_settings
from ops.structured_log import StructuredLog
from data.universe import load_universe
from database.manager import Database
from trading.agent import TradingAgent
from trading.brokers import PaperBroker
from trading.config import load_trading_config


def build_agent(desk, db: Database, *, forecaster=None, broker=None, mode: str = "paper", env=None, **overrides):
    settings = load_settings()
    config = load_trading_config(settings, mode, env or {}, **overrides)
    broker = broker or PaperBroker(db, config)
    log = StructuredLog(desk.paths.logs, run_id="test-run", console=None)
    entries = load_universe(desk.universe).enabled
    return TradingAgent(db, config, broker, entries, desk.paths, log=log, forecaster=forecaster)
