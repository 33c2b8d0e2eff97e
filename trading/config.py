"""Stage 2 configuration: the ``[trading]`` table of the settings file,
resolved for a mode.

The knobs and their defaults are ``core.settings.TradingSettings`` (every
default lives in ``core/settings.py``); ``configs/settings.toml`` may
override any key under ``[trading]``, checked as strictly as every table.

Live credentials are part of the config only in live mode: loading the
config for paper mode drops them, so no paper code path can hand them to a
broker by mistake.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from core.settings import Settings, TradingSettings

LIVE_KEY_ENV = "ALPACA_API_KEY"
LIVE_SECRET_ENV = "ALPACA_SECRET_KEY"
LIVE_CONFIRM_ENV = "LIVE_TRADING_CONFIRMED"
MODES = ("paper", "live")


@dataclass(frozen=True)
class LiveCredentials:
    api_key: str
    secret_key: str
    alpaca_paper_endpoint: bool = False

    def __repr__(self) -> str:  # never print a key, even in a traceback's locals
        return f"LiveCredentials(api_key=***, secret_key=***, alpaca_paper_endpoint={self.alpaca_paper_endpoint})"


@dataclass(frozen=True)
class TradingConfig(TradingSettings):
    """Every Stage 2 knob (``[trading]``, see ``TradingSettings``) for one
    mode, with live credentials in live mode only."""

    mode: str = "paper"
    live_credentials: LiveCredentials | None = field(default=None, repr=False)

    @property
    def history_rows(self) -> int:
        """Bars read per symbol: enough for the forecast, VaR and features."""
        return max(self.forecast_window, self.var_window, 60) + 1

    def public(self) -> dict[str, Any]:
        """The knobs that shape a decision (for the ticket): no credentials, no mode."""
        out = {}
        for f in fields(self):
            if f.name in ("live_credentials", "mode", "heartbeat_seconds", "guard_max_days"):
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


class ConfigError(ValueError):
    """Stage 2 was asked for a mode it does not have."""


def load_trading_config(settings: Settings, mode: str, env: Mapping[str, str] | None = None,
                        **overrides: Any) -> TradingConfig:
    """Resolve the config for ``mode`` from ``settings.trading`` (plus
    ``overrides``, keys of ``[trading]`` checked like the file's).  In paper
    mode live credentials are dropped whatever the environment holds; in
    live mode they are read from ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``
    (absent keys leave None and the live gate refuses)."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    env = os.environ if env is None else env
    if overrides:
        settings = settings.with_overrides({"trading": overrides}, source="load_trading_config overrides")
    knobs = {f.name: getattr(settings.trading, f.name) for f in fields(TradingSettings)}
    config = TradingConfig(mode=mode, **knobs)
    if mode == "live":
        key, secret = env.get(LIVE_KEY_ENV), env.get(LIVE_SECRET_ENV)
        if key and secret:
            paper_endpoint = env.get("ALPACA_PAPER", "").strip().lower() in ("1", "true", "yes", "on")
            config = replace(config, live_credentials=LiveCredentials(key, secret, paper_endpoint))
    return config
