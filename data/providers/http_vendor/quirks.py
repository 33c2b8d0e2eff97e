"""Vendor quirks as data, layered.

A vendor's numbers (rate limits, batch size, workers, deadline, retry
budgets, base URL) are one dict merged ``BASE_QUIRKS`` <- the module's wire
facts <- settings ``[providers.<name>]`` <- ``<NAME>_BASE_URL`` env <- keyword
arguments of the constructor.  The keys a vendor takes, and their types,
are listed once, in ``core.settings.VENDOR_QUIRK_KEYS``: the settings loader
refuses a file naming any other, and a layer here naming one raises
:class:`QuirksError`.
"""
from __future__ import annotations

from typing import Any, Mapping

from core.errors import MalformedInputError
from core.settings import VENDOR_QUIRK_KEYS, Settings
from core.settings_schema import is_rate_limits

# Generic defaults of the keys every vendor takes (core.settings.QUIRK_KEYS
# but circuit_breaker_failures, which defaults to [providers]'s);
# core/settings.py (ProvidersSettings) carries each vendor's published
# numbers, the vendor modules carry their wire facts (default base URL).
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
    # Per provider per run: past either, the provider is unavailable for the
    # rest of the run and every remaining symbol falls back at once.
    "rate_limit_budget_seconds": 300.0,  # provider-wide 429 pause, wall clock
    "rate_limit_budget_429s": 100,       # 429 answers received
    "test_symbol": "SPY",
    "test_days": 10,
}

# Env variables that point a vendor elsewhere (the loopback fake in tests).
BASE_URL_ENV: dict[str, str] = {
    "yahoo": "YAHOO_BASE_URL",
    "polygon": "POLYGON_BASE_URL",
    "alpaca": "ALPACA_DATA_URL",
}


class QuirksError(MalformedInputError):
    """A vendor option that does not exist or has the wrong shape: fix
    ``[providers.<name>]`` in the settings file (or the constructor call)."""


def resolve_quirks(name: str, vendor_quirks: Mapping[str, Any], overrides: Mapping[str, Any], *,
                   settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    """Merge the layers of a vendor's quirks (see the module docstring).
    Unknown keys raise :class:`QuirksError`: a typo must not be ignored."""
    known = VENDOR_QUIRK_KEYS[name]
    quirks = dict(BASE_QUIRKS)
    quirks["circuit_breaker_failures"] = settings.providers.circuit_breaker_failures
    quirks.update(vendor_quirks)
    layers = [("settings [providers.%s]" % name, settings.providers.quirks(name)),
              ("constructor", {k: v for k, v in overrides.items() if v is not None})]
    env_url = env.get(BASE_URL_ENV.get(name, ""), "").strip()
    for where, layer in layers:
        unknown = sorted(set(layer) - set(known))
        if unknown:
            raise QuirksError(f"{name}: unknown option(s) {', '.join(unknown)} in {where}; "
                              f"known: {', '.join(sorted(known))}")
        quirks.update(layer)
        if where.startswith("settings") and env_url:
            quirks["base_url"] = env_url   # env beats the file, the constructor beats env
    if not is_rate_limits(quirks["rate_limits"]):
        raise QuirksError(f"{name}: rate_limits entries are [requests, seconds] (requests >= 1, seconds > 0), "
                          f"got {quirks['rate_limits']!r}")
    return quirks
