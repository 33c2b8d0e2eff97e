"""Shared constants and helpers of the vendor tests (imported by tests and
by bench/providers.py)."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Sequence

from core.settings import Settings
from core.universe import UniverseEntry
from data.collectors.ingestion import FAILED, SymbolFetch, SymbolPlan
from data.providers.base import FetchRequest

CANARY_POLYGON = "canary-polygon-7Hq2ZkP0"
CANARY_ALPACA_KEY = "canary-alpaca-key-Xv93Lm"
CANARY_ALPACA_SECRET = "canary-alpaca-secret-Qe81Rt"
CANARIES = (CANARY_POLYGON, CANARY_ALPACA_KEY, CANARY_ALPACA_SECRET)

# Test quirks: short deadline and backoffs, no client-side rate limit.
FAST = {
    "deadline_seconds": 0.4,
    "backoff_initial_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "rate_limit_retries": 3,
    "unavailable_retries": 2,
    "rate_limits": [],
    "workers": 2,
}

WINDOW = (dt.date(2024, 1, 2), dt.date(2024, 2, 26))   # 40 XNYS sessions


def fast_settings(priority=None, **per_vendor) -> Settings:
    """Default settings with FAST quirks for every vendor (plus overrides)."""
    providers = {name: {**FAST, **per_vendor.get(name, {})} for name in ("yahoo", "polygon", "alpaca")}
    if priority is not None:
        providers["priority"] = list(priority)
    return Settings().with_overrides({"providers": providers}, source="test")


def plans_for(requests: Sequence[FetchRequest]) -> list[SymbolPlan]:
    """Bare requests planned as a run plans them, for ``fetch_symbols``
    (the run's fallback loop) without a store or a universe file."""
    return [SymbolPlan(UniverseEntry(r.symbol, r.asset_class, calendar=r.calendar), r.calendar, r, 0)
            for r in requests]


def by_symbol(fetches: Iterable[SymbolFetch], requests: Sequence[FetchRequest]) -> dict[str, SymbolFetch]:
    """``fetch_symbols``' output keyed by symbol in request order; every
    requested symbol must come out exactly once."""
    resolved: dict[str, SymbolFetch] = {}
    for fetched in fetches:
        assert fetched.result.symbol not in resolved, f"{fetched.result.symbol} resolved twice"
        resolved[fetched.result.symbol] = fetched
    assert sorted(resolved) == sorted(r.symbol for r in requests)
    return {r.symbol: resolved[r.symbol] for r in requests}


def failed_tries(fetched: SymbolFetch) -> list[tuple[str, str]]:
    """(provider, error_code) of the providers that failed the symbol, in
    the order they were asked (what the audit row's providers_tried says)."""
    return [(t["provider"], t["error_code"]) for t in fetched.result.tried if t["outcome"] == FAILED]
