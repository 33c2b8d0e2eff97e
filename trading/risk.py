"""Risk: target weights with caps, historical VaR/CVaR, and safe mode.

``target_weights`` and ``historical_var_cvar`` are pure.  ``SafeMode`` is a
small state machine whose every transition is reported to a callback (the
agent logs it and persists the state).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd


def target_weights(scores: Mapping[str, float], volatilities: Mapping[str, float], *,
                   max_symbol_weight: float, max_gross_exposure: float, allow_short: bool = False,
                   exposure_scale: float = 1.0) -> dict[str, float]:
    """Weights from expected-return scores.

    Each symbol's raw weight is its score over its volatility (a per-unit-of
    -risk view); without shorting negative views become 0.  Raw weights are
    scaled so their gross sum is ``max_gross_exposure``, then each is capped
    at ``max_symbol_weight`` (the cap is not redistributed: a concentrated
    book simply runs below the gross cap), then everything is multiplied by
    ``exposure_scale`` (safe mode's 0.1).  Symbols are returned in name order
    and every input symbol is present (0.0 when flat).
    """
    raw: dict[str, float] = {}
    for symbol in sorted(scores):
        score = float(scores[symbol])
        vol = float(volatilities.get(symbol, 0.0) or 0.0)
        if not math.isfinite(score) or not math.isfinite(vol) or vol <= 0:
            raw[symbol] = 0.0
            continue
        value = score / vol
        raw[symbol] = value if (allow_short or value > 0) else 0.0
    gross = sum(abs(v) for v in raw.values())
    if gross == 0:
        return {s: 0.0 for s in raw}
    out = {}
    for symbol, value in raw.items():
        w = value / gross * max_gross_exposure
        w = max(-max_symbol_weight, min(max_symbol_weight, w))
        out[symbol] = w * exposure_scale
    return out


def exposure(weights: Mapping[str, float]) -> dict[str, float]:
    """Gross (sum of |w|), net (sum of w) and long/short exposure."""
    values = [float(w) for w in weights.values()]
    return {"gross": sum(abs(w) for w in values), "net": sum(values),
            "long": sum(w for w in values if w > 0), "short": -sum(w for w in values if w < 0)}


def historical_var_cvar(weights: Mapping[str, float], returns: pd.DataFrame,
                        level: float = 0.95) -> tuple[float, float]:
    """1-day historical VaR and CVaR of a portfolio, as positive fractions
    of equity (0.02 = a 2% loss).

    ``returns`` holds daily simple returns, one column per symbol, one row
    per date.  The portfolio's return on each date is the weighted sum; rows
    where a held symbol has no return are dropped (not treated as 0, which
    would understate risk).  VaR is the loss at the ``1 - level`` quantile
    (linear interpolation); CVaR is the mean loss of the returns at or below
    that quantile.  A flat book or no common history gives (0.0, 0.0).
    """
    held = [s for s, w in weights.items() if w != 0 and s in returns.columns]
    if not held:
        return 0.0, 0.0
    frame = returns[held].dropna()
    if frame.empty:
        return 0.0, 0.0
    w = np.array([float(weights[s]) for s in held])
    pnl = frame.to_numpy(dtype="float64") @ w
    cutoff = float(np.quantile(pnl, 1.0 - level))
    tail = pnl[pnl <= cutoff]
    var = max(0.0, -cutoff)
    cvar = max(0.0, -float(tail.mean())) if tail.size else var
    return var, cvar


@dataclass
class SafeModeState:
    active: bool = False
    consecutive_errors: int = 0
    clean_cycles: int = 0
    reason: str | None = None
    transitions: int = 0


@dataclass
class SafeMode:
    """More than ``error_threshold`` consecutive loop errors, or a critical
    data gap, enters safe mode (exposure x ``scale``); ``recovery_cycles``
    clean cycles in a row leave it.  ``on_transition(event, state, reason)``
    is called on every entry and exit."""

    error_threshold: int = 5
    scale: float = 0.1
    recovery_cycles: int = 3
    state: SafeModeState = field(default_factory=SafeModeState)
    on_transition: Callable[[str, SafeModeState, str], None] | None = None

    @property
    def active(self) -> bool:
        return self.state.active

    @property
    def exposure_scale(self) -> float:
        return self.scale if self.state.active else 1.0

    def record_error(self, reason: str) -> None:
        """A loop error: one more in a row; the (threshold+1)-th enters."""
        st = self.state
        st.consecutive_errors += 1
        st.clean_cycles = 0
        if not st.active and st.consecutive_errors > self.error_threshold:
            self._enter(f"{st.consecutive_errors} consecutive loop errors (last: {reason})")

    def record_data_gap(self, reason: str) -> None:
        """A critical data gap enters at once and restarts the recovery count."""
        self.state.clean_cycles = 0
        if not self.state.active:
            self._enter(f"critical data gap: {reason}")

    def record_clean_cycle(self) -> None:
        """A cycle with no error and no critical gap."""
        st = self.state
        st.consecutive_errors = 0
        if st.active:
            st.clean_cycles += 1
            if st.clean_cycles >= self.recovery_cycles:
                self._exit(f"{st.clean_cycles} clean cycles")

    def _enter(self, reason: str) -> None:
        st = self.state
        st.active, st.reason, st.clean_cycles = True, reason, 0
        st.transitions += 1
        if self.on_transition:
            self.on_transition("SAFE_MODE_ENTER", st, reason)

    def _exit(self, reason: str) -> None:
        st = self.state
        st.active, st.reason, st.clean_cycles, st.consecutive_errors = False, None, 0, 0
        st.transitions += 1
        if self.on_transition:
            self.on_transition("SAFE_MODE_EXIT", st, reason)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self.state) | {"scale": self.exposure_scale}

    def load(self, saved: Mapping[str, Any] | None) -> None:
        """Restore a state saved by ``to_dict`` (unknown keys ignored)."""
        if not saved:
            return
        self.state = SafeModeState(active=bool(saved.get("active", False)),
                                   consecutive_errors=int(saved.get("consecutive_errors", 0)),
                                   clean_cycles=int(saved.get("clean_cycles", 0)),
                                   reason=saved.get("reason"),
                                   transitions=int(saved.get("transitions", 0)))
