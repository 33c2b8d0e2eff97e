"""Vendor quirks as data, layered.

A vendor's numbers (rate limits, batch size, workers, deadline, retry
budgets, base URL) are one dict merged ``BASE_QUIRKS`` <- the module's wire
facts <- settings ``[providers.<name>]`` <- ``<NAME>_BASE_URL`` env <- keyword
arguments of the constructor.  Unknown keys raise :class:`QuirksError`.
"""
from __future__ import annotations

from typing import Any, Mapping

from core.settings import Settings

# Generic defaults; core/settings.py (ProvidersSettings) carries each vendor's
# published numbers and the circuit breaker, the vendor modules carry their
# wire facts (default base URL).
BASE_QUIRKS: dict[str, Any] = {
    "base_url": None,
    "batch_size": 1,
    "workers": 1,
    "rate_limits": [],                 # [[requests, seconds], ...]
    "deadline_seconds": 30.0,          # per HTTP request, connect + response
    "rate_limit_retries": 8,           # 429s absorbed per unit before giving up
    "unavailable_retries": 2,          # 5xx / timeout / connection retries per unit
    "backoff_initial_seconds": 1.0,
    "backoff_max_seconds": 60.0,
    "max_retry_after_seconds": 300.0,  # a longer Retry-After gives up (fall back) at once
    "test_symbol": "SPY",
    "test_days": 10,
}

# Env variables that point a vendor elsewhere (the loopback fake in tests).
BASE_URL_ENV: dict[str, str] = {
    "yahoo": "YAHOO_BASE_URL",
    "polygon": "POLYGON_BASE_URL",
    "alpaca": "ALPACA_DATA_URL",
}


class QuirksError(ValueError):
    """A vendor option that does not exist or has the wrong shape."""


def resolve_quirks(name: str, vendor_quirks: Mapping[str, Any], overrides: Mapping[str, Any], *,
                   settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    """Merge the layers of a vendor's quirks (see the module docstring).
    Unknown keys raise :class:`QuirksError`: a typo must not be ignored."""
    quirks = dict(BASE_QUIRKS)
    quirks["circuit_breaker_failures"] = settings.providers.circuit_breaker_failures
    quirks.update(vendor_quirks)
    layers = [("settings [providers.%s]" % name, settings.providers.quirks(name)),
              ("constructor", {k: v for k, v in overrides.items() if v is not None})]
    env_url = env.get(BASE_URL_ENV.get(name, ""), "").strip()
    for where, layer in layers:
        unknown = sorted(set(layer) - set(quirks))
        if unknown:
            raise QuirksError(f"{name}: unknown option(s) {', '.join(unknown)} in {where}; "
                              f"known: {', '.join(sorted(quirks))}")
        quirks.update(layer)
        if where.startswith("settings") and env_url:
            quirks["base_url"] = env_url   # env beats the file, the constructor beats env
    for limit in quirks["rate_limits"]:
        if len(limit) != 2 or float(limit[0]) < 1 or float(limit[1]) <= 0:
            raise QuirksError(f"{name}: rate_limits entries are [requests, seconds], got {limit!r}")
    return quirks
