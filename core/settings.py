"""Settings: every number an operator may tune, typed, with its one default.

One frozen dataclass per table of ``configs/settings.toml``; the defaults
written below are the only ones in the code (the file restates them for
operators).  :func:`load_settings` layers them: defaults <- the TOML file
(``path``, ``SETTINGS_FILE`` or ``configs/settings.toml``) <- environment
(``PROVIDER_PRIORITY=yahoo,polygon``).  A table of the file merges key by key
over the defaults, so a file may set one key and keep the rest.

The loader is strict: an unknown key (where a table's keys are fixed), a
value of the wrong type or an invalid number is a :class:`SettingsError` of
one line naming the key and the file, e.g.
``configs/settings.toml: unknown setting [quality] acept_threshold``.  A
field's valid range is declared beside its default (``ge``/``gt``/``le``/
``lt``/``choices``) and checked whenever a table is built, from a file or in
code; rules that tie two keys together are the table's ``_check_relations``
(the machinery: ``core/settings_schema.py``).
"""
from __future__ import annotations

import datetime as dt
import os
import tomllib
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from core.settings_schema import IsoDate, RateLimits, SettingsError, Table, parse_table, setting, show

if TYPE_CHECKING:
    from core.universe import UniverseEntry

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS_PATH = REPO_ROOT / "configs" / "settings.toml"

ALERT_SEVERITIES = ("info", "warning", "error", "critical")


# ----------------------------------------------------------------- tables
@dataclass(frozen=True)
class HistorySettings(Table):
    """``[history]``: the window every symbol must fill (governance rule 1)."""

    TABLE: ClassVar[str] = "history"
    required_sessions: int = setting(1260, ge=1)
    degraded_min_rows: int = setting(1000, ge=0)
    # Calendar per asset class (exchange_calendars names).  Commodities
    # follow CME Globex (CMES): futures settle on CME's holiday schedule.
    calendars: Mapping[str, str] = setting({"stocks": "XNYS", "fx": "24/5", "crypto": "24/7",
                                            "commodities": "CMES"})

    def calendar_of(self, entry: UniverseEntry) -> str:
        """The calendar of a universe entry: its own when it names one, else
        its asset class's."""
        return entry.calendar or self.calendars[entry.asset_class]

    def _check_relations(self) -> None:
        self._require(self.degraded_min_rows <= self.required_sessions, "degraded_min_rows",
                      f"must be <= required_sessions ({self.required_sessions})")


def _capability(stocks: bool, fx: bool, crypto: bool, commodities: bool, max_history_days: int,
                requires_entitlement: bool) -> dict[str, Any]:
    return {"stocks": stocks, "fx": fx, "crypto": crypto, "commodities": commodities,
            "max_history_days": max_history_days, "requires_entitlement": requires_entitlement}


# The keys of a ``[providers.<vendor>]`` table and the type of each: the
# ones every network vendor takes (their generic defaults are BASE_QUIRKS in
# data/providers/http_vendor/quirks.py, which checks its layers against this
# list too), then each vendor's own (defaults in its module's VENDOR_QUIRKS).
QUIRK_KEYS: Mapping[str, Any] = {
    "base_url": str,
    "batch_size": int,
    "workers": int,
    "rate_limits": RateLimits,
    "deadline_seconds": float,
    "rate_limit_retries": int,
    "unavailable_retries": int,
    "backoff_initial_seconds": float,
    "backoff_max_seconds": float,
    "max_retry_after_seconds": float,
    "rate_limit_budget_seconds": float,
    "rate_limit_budget_429s": int,
    "test_symbol": str,
    "test_days": int,
    "circuit_breaker_failures": int,
}
VENDOR_QUIRK_KEYS: Mapping[str, Mapping[str, Any]] = {
    "yahoo": {**QUIRK_KEYS, "cache_dir": str},
    "polygon": dict(QUIRK_KEYS),
    "alpaca": {**QUIRK_KEYS, "feed": str, "adjusted_close": bool},
}


@dataclass(frozen=True)
class ProvidersSettings(Table):
    """``[providers]``: the capability matrix, priority, pools and breaker,
    and each network vendor's quirks."""

    TABLE: ClassVar[str] = "providers"
    # ``synthetic`` is never in the default priority: it is asked for
    # explicitly (--provider synthetic).
    priority: tuple[str, ...] = ("yahoo", "polygon", "alpaca")
    # Appended after the vendors when FILE_PROVIDER_DIR / --data-dir is set.
    file_fallback: bool = True
    # The runbook's matrix, verbatim, plus the two local sources (no
    # entitlement, every class).  Keys per provider are fixed.
    capabilities: Mapping[str, Mapping[str, Any]] = setting({
        "alpaca": _capability(True, False, True, False, 730, True),
        "yahoo": _capability(True, True, True, True, 5000, False),
        "polygon": _capability(True, True, True, False, 5000, True),
        "file": _capability(True, True, True, True, 100000, False),
        "synthetic": _capability(True, True, True, True, 100000, False),
    })
    fetch_workers: int = setting(2, ge=1)             # threads fetching from network vendors
    process_workers: int = setting(0, ge=0)           # processes for local sources; 0: CPUs - 1
    # Consecutive failed requests (after retries; 429s excluded) that open
    # a provider's circuit for the rest of the run.
    circuit_breaker_failures: int = setting(5, ge=1)
    # Per-vendor quirks, merged over data/providers/http_vendor/quirks.py's
    # BASE_QUIRKS; constructor keywords override them.  A table takes the
    # keys VENDOR_QUIRK_KEYS lists for its vendor, nothing else.
    # rate_limits: [[requests, seconds], ...], every window enforced.
    yahoo: Mapping[str, Any] = setting({
        # Yahoo publishes no limit: 2,000 requests/hour per IP is the
        # documented YQL-era public limit; 2/s keeps bursts polite.
        "rate_limits": [[2, 1.0], [2000, 3600.0]],
        "batch_size": 100,           # symbols per chunk (yf.download's batch)
        "workers": 4,
        "deadline_seconds": 30.0,
    }, keys=VENDOR_QUIRK_KEYS["yahoo"])
    polygon: Mapping[str, Any] = setting({
        # Basic (free) plan: 5 API calls per minute; raise for paid plans.
        "rate_limits": [[5, 60.0]],
        "batch_size": 1,             # aggregates are one ticker per request
        "workers": 4,
        "deadline_seconds": 30.0,
    }, keys=VENDOR_QUIRK_KEYS["polygon"])
    alpaca: Mapping[str, Any] = setting({
        # Basic plan: 200 API calls per minute.
        "rate_limits": [[200, 60.0]],
        "batch_size": 100,           # symbols per /v2/stocks/bars request
        "workers": 2,
        "deadline_seconds": 30.0,
        "feed": "sip",
    }, keys=VENDOR_QUIRK_KEYS["alpaca"])

    def quirks(self, vendor: str) -> Mapping[str, Any]:
        """``[providers.<vendor>]``: a network vendor's quirks table."""
        if vendor not in VENDOR_QUIRK_KEYS:
            raise KeyError(vendor)
        return getattr(self, vendor)

    def _check_relations(self) -> None:
        unknown = [p for p in self.priority if p not in self.capabilities]
        self._require(not unknown, "priority", f"names unknown provider(s) {', '.join(unknown)}")


@dataclass(frozen=True)
class FalseTickSettings(Table):
    """``[quality.false_tick]``: an isolated bar (both neighbours on the same
    side of it) more than ``min_move`` (per class) and more than ``mad_z``
    robust sigmas away from the median of the ``window`` bars centred on it;
    sigma from the MAD of daily log returns over ``scale_window`` bars."""

    TABLE: ClassVar[str] = "quality.false_tick"
    window: int = setting(11, ge=1)
    scale_window: int = setting(63, ge=1)
    mad_z: float = setting(8.0, gt=0)
    min_move: Mapping[str, float] = setting({"stocks": 0.05, "fx": 0.02, "crypto": 0.10, "commodities": 0.05},
                                            ge=0)


@dataclass(frozen=True)
class QualitySettings(Table):
    """``[quality]``: the score (governance rule 2) and the checks that feed
    states and the report; configs/settings.toml says what each one means."""

    TABLE: ClassVar[str] = "quality"
    accept_threshold: float = setting(0.6, ge=0, le=1)
    weights: Mapping[str, float] = setting({"missing_dates_pct": 0.3, "duplicate_pct": 0.2,
                                            "zero_negative_flag": 0.2, "extreme_spike_flag": 0.3}, ge=0)
    spike_threshold: Mapping[str, float] = setting({"stocks": 0.5, "fx": 0.15, "crypto": 0.8,
                                                    "commodities": 0.4}, gt=0)
    universe_reject_alert_pct: float = setting(5.0, ge=0, le=100)
    false_tick: FalseTickSettings = field(default_factory=FalseTickSettings)
    stale_warn_sessions: int = setting(1, ge=1)
    stale_error_sessions: int = setting(5, ge=1)
    zero_volume_warn_fraction: float = setting(0.05, ge=0, le=1)
    ohlc_tolerance: float = setting(1e-6, ge=0)
    # Allow-lists for missing sessions: calendar -> dates the calendar lists
    # as sessions but the exchange was closed; symbol -> [start, end] halts.
    allowed_missing_sessions: Mapping[str, tuple[IsoDate, ...]] = setting({}, open=True)
    halts: Mapping[str, tuple[tuple[IsoDate, IsoDate], ...]] = setting({}, open=True)

    def excused_sessions(self, symbol: str | None, calendar: str | None) -> frozenset[dt.date]:
        """The sessions ``symbol`` may lack: its calendar's configured
        closures and its own trading halts (inclusive ranges).  One home for
        both users: the missing-dates component (data.quality) and freshness
        (data.governance.rules)."""
        days = {dt.date.fromisoformat(d) for d in self.allowed_missing_sessions.get(calendar or "", ())}
        for start, end in self.halts.get(symbol or "", ()):
            day, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
            while day <= last:
                days.add(day)
                day += dt.timedelta(days=1)
        return frozenset(days)

    def _check_relations(self) -> None:
        self._require(self.stale_error_sessions >= self.stale_warn_sessions, "stale_error_sessions",
                      f"must be >= stale_warn_sessions ({self.stale_warn_sessions})")
        for symbol, ranges in self.halts.items():
            if any(start > end for start, end in ranges):
                raise SettingsError(f"[quality.halts] {symbol} = {show(ranges)}: each range is [start, end] "
                                    f"with start <= end")


@dataclass(frozen=True)
class CrossCheckSettings(Table):
    """``[cross_check]``: closes of the last ``sample_sessions`` sessions
    compared with the next entitled provider (ingest --cross-check)."""

    TABLE: ClassVar[str] = "cross_check"
    enabled: bool = False
    sample_sessions: int = setting(60, ge=1)
    warn_pct: float = setting(1.0, ge=0)
    error_pct: float = setting(2.5, ge=0)
    min_overlap: int = setting(20, ge=1)

    def _check_relations(self) -> None:
        self._require(self.error_pct >= self.warn_pct, "error_pct", f"must be >= warn_pct ({show(self.warn_pct)})")


@dataclass(frozen=True)
class IngestSettings(Table):
    """``[ingest]``: how a run writes."""

    TABLE: ClassVar[str] = "ingest"
    symbols_per_transaction: int = setting(100, ge=1)
    # gzip level for the raw archive: 1 keeps a 7.56 M-row backfill I/O bound.
    raw_archive_compresslevel: int = setting(1, ge=0, le=9)
    # Consecutive runs in which no provider served a symbol before it is
    # dead-lettered (incremental runs skip it until --revive or an edit of
    # its universe entry).
    dead_letter_after_failures: int = setting(3, ge=1)


@dataclass(frozen=True)
class GovernanceSettings(Table):
    """``[governance]``: scoring stored windows in worker processes."""

    TABLE: ClassVar[str] = "governance"
    score_workers: int = setting(0, ge=0)             # 0: one per CPU
    parallel_from_symbols: int = setting(300, ge=1)   # fewer symbols score in-process


@dataclass(frozen=True)
class HealthSettings(Table):
    """``[health]``: price health by the age of each symbol's last bar, in
    sessions of its own calendar: GREEN under ``freshness_yellow_sessions``,
    YELLOW up to ``freshness_red_sessions``, RED beyond (governance rule 4)."""

    TABLE: ClassVar[str] = "health"
    freshness_yellow_sessions: int = setting(2, ge=1)
    freshness_red_sessions: int = setting(7, ge=1)
    recent_events: int = setting(20, ge=0)            # governance events verify_db_status.py shows

    def _check_relations(self) -> None:
        self._require(self.freshness_red_sessions >= self.freshness_yellow_sessions, "freshness_red_sessions",
                      f"must be >= freshness_yellow_sessions ({self.freshness_yellow_sessions})")


@dataclass(frozen=True)
class AlertsSettings(Table):
    """``[alerts]``: targets are apprise URLs in env ALERT_URLS."""

    TABLE: ClassVar[str] = "alerts"
    max_per_run: int = setting(10, ge=0)              # the rest are recorded as THROTTLED
    # Across runs: at most this many alerts go out in any rolling 24 h
    # ("a night"); a critical alert is never held back by it (it counts).
    max_per_night: int = setting(20, ge=0)
    min_severity: str = setting("warning", choices=ALERT_SEVERITIES)
    dry_run: bool = False                              # or env ALERT_DRY_RUN=1


@dataclass(frozen=True)
class TradingSettings(Table):
    """``[trading]``: every Stage 2 knob (``trading.config.TradingConfig``
    adds the mode and live credentials).  Weights are fractions of equity."""

    TABLE: ClassVar[str] = "trading"
    initial_cash: float = setting(1_000_000.0, gt=0)
    max_symbol_weight: float = setting(0.10, gt=0, le=1)
    max_gross_exposure: float = setting(1.0, gt=0)
    allow_short: bool = False
    slippage_bps: float = setting(5.0, ge=0)
    commission_bps: float = setting(1.0, ge=0)
    min_order_notional: float = setting(10.0, ge=0)
    quantity_decimals: int = setting(4, ge=0)
    # Signals: ARIMA on the last ``forecast_window`` adj_close log returns.
    forecast_window: int = setting(250, ge=1)
    arima_order: tuple[int, int, int] = setting((1, 0, 1), ge=0)
    ewma_halflife: float = setting(20.0, gt=0)
    alpha_weight: float = setting(0.5, ge=0)
    ridge_lambda: float = setting(1.0, ge=0)
    # Risk.
    var_window: int = setting(250, ge=1)
    var_level: float = setting(0.95, gt=0, lt=1)
    safe_mode_error_threshold: int = setting(5, ge=0)    # more than this many consecutive errors -> safe mode
    safe_mode_scale: float = setting(0.1, ge=0, le=1)
    safe_mode_recovery_cycles: int = setting(3, ge=1)    # clean cycles in a row that end safe mode
    max_stale_days: int = setting(6, ge=0)               # a traded symbol this far behind as-of is a critical gap
    # Stage 2 reads the database; a provider request longer than this is a GUARD VIOLATION.
    guard_max_days: int = setting(10, ge=0)
    heartbeat_seconds: float = setting(5.0, gt=0)


@dataclass(frozen=True)
class Settings:
    """Resolved settings: one typed section per table, plus where they came
    from.  Picklable (worker processes receive it)."""

    history: HistorySettings = field(default_factory=HistorySettings)
    providers: ProvidersSettings = field(default_factory=ProvidersSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    cross_check: CrossCheckSettings = field(default_factory=CrossCheckSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    governance: GovernanceSettings = field(default_factory=GovernanceSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    trading: TradingSettings = field(default_factory=TradingSettings)
    source: str = "defaults"

    def with_overrides(self, tables: Mapping[str, Any], *, source: str = "overrides") -> "Settings":
        """These settings with ``tables`` (shaped like the settings file:
        table -> key -> value) merged over them, checked as strictly as the
        file; errors start with ``source``."""
        try:
            changes: dict[str, Any] = {}
            for name, raw in tables.items():
                if name not in _SECTIONS:
                    raise SettingsError(f"unknown setting [{name}]" if isinstance(raw, dict) else
                                        f"unknown setting {name}")
                if not isinstance(raw, dict):
                    raise SettingsError(f"{name} = {show(raw)}: expected a table")
                changes[name] = parse_table(_SECTIONS[name], raw, getattr(self, name))
            return replace(self, source=source, **changes)
        except SettingsError as exc:
            raise SettingsError(f"{source}: {exc}") from None


# Table name -> its class: the fields of Settings, but ``source``.
_SECTIONS: dict[str, type[Table]] = {name: hint for name, hint in typing.get_type_hints(Settings).items()
                                     if name != "source"}


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Load defaults, then the TOML file (``path``, ``SETTINGS_FILE`` or the
    repo's ``configs/settings.toml`` when present), then env overrides."""
    settings = Settings()
    chosen = path or os.environ.get("SETTINGS_FILE")
    file_path = Path(chosen) if chosen else DEFAULT_SETTINGS_PATH
    if chosen and not file_path.exists():
        raise SettingsError(f"{file_path}: settings file not found")
    if file_path.exists():
        try:
            with open(file_path, "rb") as fh:
                tables = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{file_path}: {exc}") from exc
        settings = settings.with_overrides(tables, source=str(file_path))
    env_priority = os.environ.get("PROVIDER_PRIORITY")
    if env_priority:
        priority = tuple(p.strip().lower() for p in env_priority.split(",") if p.strip())
        try:
            settings = replace(settings, providers=replace(settings.providers, priority=priority))
        except SettingsError as exc:
            raise SettingsError(f"PROVIDER_PRIORITY: {exc}") from None
    return settings
