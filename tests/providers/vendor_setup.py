"""Shared constants and helpers of the vendor tests (imported by tests and
by bench/providers.py)."""
from __future__ import annotations

import datetime as dt

from core.settings import Settings

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
