"""Stage 2 configuration: the ``[trading]`` table of the settings file.

Defaults live here (not in ``core/settings.py``) so Stage 2 is one package;
``configs/settings.toml`` may override any key under ``[trading]``.

Live credentials are part of the config only in live mode: loading the
config for paper mode drops them, so no paper code path can hand them to a
broker by mistake.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from core.settings import Settings

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
class TradingConfig:
    """Every Stage 2 knob.  Weights are fractions of equity."""

    mode: str = "paper"
    initial_cash: float = 1_000_000.0
    max_symbol_weight: float = 0.10
    max_gross_exposure: float = 1.0
    allow_short: bool = False
    slippage_bps: float = 5.0
    commission_bps: float = 1.0
    min_order_notional: float = 10.0
    quantity_decimals: int = 4
    # Signals: ARIMA on the last ``forecast_window`` adj_close log returns.
    forecast_window: int = 250
    arima_order: tuple[int, int, int] = (1, 0, 1)
    ewma_halflife: float = 20.0
    alpha_weight: float = 0.5
    ridge_lambda: float = 1.0
    # Risk.
    var_window: int = 250
    var_level: float = 0.95
    safe_mode_error_threshold: int = 5     # more than this many consecutive errors -> safe mode
    safe_mode_scale: float = 0.1
    safe_mode_recovery_cycles: int = 3     # clean cycles in a row that end safe mode
    max_stale_days: int = 6                # a traded symbol this far behind the as-of date is a critical gap
    # Stage 2 reads the database; a provider request longer than this is a GUARD VIOLATION.
    guard_max_days: int = 10
    heartbeat_seconds: float = 5.0
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
    """A ``[trading]`` setting has the wrong kind of value."""


def load_trading_config(settings: Settings, mode: str, env: Mapping[str, str] | None = None,
                        **overrides: Any) -> TradingConfig:
    """Resolve the config for ``mode``.  In paper mode live credentials are
    dropped whatever the environment holds; in live mode they are read from
    ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY`` (absent keys leave None and
    the live gate refuses)."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    env = os.environ if env is None else env
    table = dict(settings.get("trading", {}) or {})
    table.update(overrides)
    known = {f.name: f for f in fields(TradingConfig)}
    values: dict[str, Any] = {}
    defaults = TradingConfig()
    for key, value in table.items():
        if key not in known or key in ("mode", "live_credentials"):
            raise ConfigError(f"[trading] unknown setting {key!r}")
        default = getattr(defaults, key)
        try:
            if isinstance(default, tuple):
                value = tuple(int(v) for v in value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError("expected true or false")
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[trading] {key}: {exc}") from exc
        values[key] = value
    config = replace(defaults, mode=mode, **values)
    if mode == "live":
        key, secret = env.get(LIVE_KEY_ENV), env.get(LIVE_SECRET_ENV)
        if key and secret:
            paper_endpoint = env.get("ALPACA_PAPER", "").strip().lower() in ("1", "true", "yes", "on")
            config = replace(config, live_credentials=LiveCredentials(key, secret, paper_endpoint))
    return config
