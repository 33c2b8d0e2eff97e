"""Settings: thresholds, capability matrix and provider priority.

Defaults live here in code; ``configs/settings.toml`` (or the file named by
``SETTINGS_FILE``) overrides any of them, table by table.  Environment
variables override the priority (``PROVIDER_PRIORITY=yahoo,polygon``).
"""
from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS_PATH = REPO_ROOT / "configs" / "settings.toml"

# The runbook's matrix, verbatim, plus the two local sources.  ``file`` and
# ``synthetic`` need no entitlement and serve every class; ``synthetic`` is
# never in the default priority: it is asked for explicitly (--provider).
PROVIDER_CAPABILITIES: dict[str, dict[str, Any]] = {
    "alpaca": {
        "stocks": True, "fx": False, "crypto": True,
        "commodities": False, "max_history_days": 730,
        "requires_entitlement": True,
    },
    "yahoo": {
        "stocks": True, "fx": True, "crypto": True,
        "commodities": True, "max_history_days": 5000,
        "requires_entitlement": False,
    },
    "polygon": {
        "stocks": True, "fx": True, "crypto": True,
        "commodities": False, "max_history_days": 5000,
        "requires_entitlement": True,
    },
    "file": {
        "stocks": True, "fx": True, "crypto": True,
        "commodities": True, "max_history_days": 100000,
        "requires_entitlement": False,
    },
    "synthetic": {
        "stocks": True, "fx": True, "crypto": True,
        "commodities": True, "max_history_days": 100000,
        "requires_entitlement": False,
    },
}

PROVIDER_PRIORITY: list[str] = ["yahoo", "polygon", "alpaca"]

DEFAULTS: dict[str, Any] = {
    "history": {
        "required_sessions": 1260,
        "degraded_min_rows": 1000,
        # Calendar per asset class (exchange_calendars names).  Commodities
        # follow CME Globex (CMES): futures settle on CME's holiday schedule.
        "calendars": {"stocks": "XNYS", "fx": "24/5", "crypto": "24/7", "commodities": "CMES"},
    },
    "providers": {
        "priority": PROVIDER_PRIORITY,
        # Appended after the vendors when FILE_PROVIDER_DIR / --data-dir is set.
        "file_fallback": True,
        "capabilities": PROVIDER_CAPABILITIES,
        "fetch_workers": 2,
        # Consecutive failed requests (after retries; 429s excluded) that open
        # a provider's circuit for the rest of the run.
        "circuit_breaker_failures": 5,
        # Per-vendor quirks, merged over data/providers/http_vendor.py's
        # defaults; a provider's constructor keywords override them.
        # rate_limits: [[requests, seconds], ...], every window enforced.
        "yahoo": {
            # Yahoo publishes no limit: 2,000 requests/hour per IP is the
            # documented YQL-era public limit; 2/s keeps bursts polite.
            "rate_limits": [[2, 1.0], [2000, 3600.0]],
            "batch_size": 100,           # symbols per chunk (yf.download's batch)
            "workers": 4,
            "deadline_seconds": 30.0,
        },
        "polygon": {
            # Basic (free) plan: 5 API calls per minute; raise for paid plans.
            "rate_limits": [[5, 60.0]],
            "batch_size": 1,             # aggregates are one ticker per request
            "workers": 4,
            "deadline_seconds": 30.0,
        },
        "alpaca": {
            # Basic plan: 200 API calls per minute.
            "rate_limits": [[200, 60.0]],
            "batch_size": 100,           # symbols per /v2/stocks/bars request
            "workers": 2,
            "deadline_seconds": 30.0,
            "feed": "sip",
        },
    },
    "quality": {
        "accept_threshold": 0.6,
        "weights": {"missing_dates_pct": 0.3, "duplicate_pct": 0.2,
                    "zero_negative_flag": 0.2, "extreme_spike_flag": 0.3},
        "spike_threshold": {"stocks": 0.5, "fx": 0.15, "crypto": 0.8, "commodities": 0.4},
        "universe_reject_alert_pct": 5.0,
        # Checks that feed states and the report (not the score); see
        # configs/settings.toml for what each one means.
        "false_tick": {"window": 11, "scale_window": 63, "mad_z": 8.0,
                       "min_move": {"stocks": 0.05, "fx": 0.02, "crypto": 0.10, "commodities": 0.05}},
        "stale_warn_sessions": 1,
        "stale_error_sessions": 5,
        "zero_volume_warn_fraction": 0.05,
        "ohlc_tolerance": 1e-6,
        # Allow-lists for missing sessions: calendar -> dates the calendar lists
        # as sessions but the exchange was closed; symbol -> [start, end] halts.
        "allowed_missing_sessions": {},
        "halts": {},
    },
    # Cross-source drift (ingest_history.py --cross-check): closes of the last
    # sample_sessions sessions compared with the next entitled provider.
    "cross_check": {
        "enabled": False,
        "sample_sessions": 60,
        "warn_pct": 1.0,
        "error_pct": 2.5,
        "min_overlap": 20,
    },
    "ingest": {
        "symbols_per_transaction": 100,
        # gzip level for the raw archive: 1 keeps a 7.56 M-row backfill I/O bound.
        "raw_archive_compresslevel": 1,
    },
    "health": {
        # Price health by the age of each symbol's last bar, in sessions of
        # its own calendar: GREEN under yellow_sessions, YELLOW up to
        # red_sessions, RED beyond.
        "freshness_yellow_sessions": 2,
        "freshness_red_sessions": 7,
        "recent_events": 20,
    },
    "alerts": {
        "max_per_run": 10,
        "min_severity": "warning",
        "dry_run": False,
    },
}


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class SettingsError(ValueError):
    """The settings file cannot be read or holds a value of the wrong kind."""


@dataclass(frozen=True)
class Settings:
    """Resolved settings (defaults merged with the settings file and env)."""

    data: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULTS))
    source: str = "defaults"

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def required_sessions(self) -> int:
        return int(self.data["history"]["required_sessions"])

    @property
    def capabilities(self) -> dict[str, dict[str, Any]]:
        return self.data["providers"]["capabilities"]

    @property
    def priority(self) -> list[str]:
        return list(self.data["providers"]["priority"])

    def calendar_for(self, asset_class: str) -> str:
        return self.data["history"]["calendars"][asset_class]


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Load defaults, then the TOML file (``path``, ``SETTINGS_FILE`` or the
    repo's ``configs/settings.toml`` when present), then env overrides."""
    data = copy.deepcopy(DEFAULTS)
    source = "defaults"
    chosen = path or os.environ.get("SETTINGS_FILE")
    file_path = Path(chosen) if chosen else DEFAULT_SETTINGS_PATH
    if chosen and not file_path.exists():
        raise SettingsError(f"{file_path}: settings file not found")
    if file_path.exists():
        try:
            with open(file_path, "rb") as fh:
                data = _merge(data, tomllib.load(fh))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{file_path}: {exc}") from exc
        source = str(file_path)
    env_priority = os.environ.get("PROVIDER_PRIORITY")
    if env_priority:
        data["providers"]["priority"] = [p.strip().lower() for p in env_priority.split(",") if p.strip()]
    unknown = [p for p in data["providers"]["priority"] if p not in data["providers"]["capabilities"]]
    if unknown:
        raise SettingsError(f"{source}: provider priority names unknown provider(s) {', '.join(unknown)}")
    return Settings(data=data, source=source)
