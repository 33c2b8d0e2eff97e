"""Provider selection: capability matrix, priority, entitlement, fallback.

Providers are registered by name (``PROVIDER_REGISTRY``: name -> "module:Class")
and imported on first use, so a vendor is one module added.  For each symbol
the router answers the ordered list of providers that may serve its window,
and why each other provider was passed over; the ingestion run
(``data.collectors.ingestion.fetch_symbols``) walks that list, falling back
on failure.  No candidate -> ``NO_VALID_PROVIDER``.
"""
from __future__ import annotations

import importlib
import inspect
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from data.providers.base import (EntitlementError, FetchRequest, MalformedDataError, Provider, ProviderError,
                                 ProviderUnavailable, SchemaError)
from core.settings import Settings

NO_VALID_PROVIDER = "NO_VALID_PROVIDER"


PROVIDER_REGISTRY: dict[str, str] = {
    "yahoo": "data.providers.yahoo:YahooDataProvider",
    "polygon": "data.providers.polygon:PolygonDataProvider",
    "alpaca": "data.providers.alpaca:AlpacaDataProvider",
    "file": "data.providers.file:FileDataProvider",
    "synthetic": "data.providers.synthetic:SyntheticDataProvider",
}

# Keys each entitled vendor needs besides ``<NAME>_ENABLED``.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "polygon": ("POLYGON_API_KEY",),
    "alpaca": ("ALPACA_API_KEY", "ALPACA_SECRET_KEY"),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def provider_entitled(name: str, capabilities: Mapping[str, Mapping[str, Any]],
                      env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether ``name`` may be used, and why (one phrase).

    ``<NAME>_ENABLED=false`` disables any provider.  A provider that
    ``requires_entitlement`` also needs ``<NAME>_ENABLED=true`` and its keys.
    """
    env = os.environ if env is None else env
    flag = env.get(f"{name.upper()}_ENABLED", "").strip().lower()
    if flag in _FALSE:
        return False, f"{name.upper()}_ENABLED={flag}"
    caps = capabilities.get(name, {})
    if caps.get("requires_entitlement"):
        if flag not in _TRUE:
            return False, f"{name.upper()}_ENABLED not set to true"
        missing = [k for k in REQUIRED_KEYS.get(name, ()) if not env.get(k)]
        if missing:
            return False, f"missing {', '.join(missing)}"
    return True, "entitled"


@dataclass
class Candidates:
    """Providers for one request, in the order to try, plus skip reasons."""

    providers: list[str]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def decision(self) -> str:
        return "; ".join(f"{p}: {why}" for p, why in self.skipped.items())


class DataRouter:
    """Chooses providers per request and tracks their state for one run."""

    def __init__(self, settings: Settings, *, env: Mapping[str, str] | None = None,
                 only: str | None = None, data_dir: str | None = None,
                 factories: Mapping[str, Callable[[], Provider]] | None = None,
                 provider_options: Mapping[str, Mapping[str, Any]] | None = None,
                 exclude: tuple[str, ...] = ()):
        self.settings = settings
        self.env = dict(os.environ if env is None else env)
        self.capabilities = settings.capabilities
        self.data_dir = data_dir or self.env.get("FILE_PROVIDER_DIR") or None
        priority = list(settings.priority)
        if self.data_dir and settings.get("providers.file_fallback", True) and "file" not in priority:
            priority.append("file")
        priority = [p for p in priority if p not in exclude]
        if only:
            if only not in self.capabilities:
                raise ValueError(f"unknown provider {only!r}; known: {', '.join(sorted(self.capabilities))}")
            priority = [only]
        self.priority = priority
        self.only = only
        self._factories = dict(factories or {})
        self._options = {k: dict(v) for k, v in (provider_options or {}).items()}
        self._instances: dict[str, Provider] = {}
        self._lock = threading.Lock()
        # Per-run state: providers that answered 401/403, open circuits.
        self.not_entitled: dict[str, str] = {}
        self.consecutive_failures: dict[str, int] = {}
        self.circuit_open: set[str] = set()
        self.circuit_threshold = int(settings.get("providers.circuit_breaker_failures", 5))

    # ------------------------------------------------------------ selection
    def candidates(self, request: FetchRequest) -> Candidates:
        out = Candidates(providers=[])
        for name in self.priority:
            why = self._refusal(name, request)
            if why:
                out.skipped[name] = why
            else:
                out.providers.append(name)
        return out

    def _refusal(self, name: str, request: FetchRequest) -> str | None:
        caps = self.capabilities.get(name)
        if caps is None:
            return "not in the capability matrix"
        if not caps.get(request.asset_class, False):
            return f"does not serve {request.asset_class}"
        if request.span_days > int(caps.get("max_history_days", 0)):
            return f"window of {request.span_days} days exceeds max_history_days {caps['max_history_days']}"
        if name == "file" and not self.data_dir:
            return "no data directory (--data-dir or FILE_PROVIDER_DIR)"
        if name == "synthetic" and self.only != "synthetic":
            return "synthetic is used only when asked for (--provider synthetic)"
        ok, why = provider_entitled(name, self.capabilities, self.env)
        if not ok:
            return f"not entitled ({why})"
        if name in self.not_entitled:
            return f"not entitled this run ({self.not_entitled[name]})"
        if name in self.circuit_open:
            return "circuit open after consecutive failures"
        if name not in PROVIDER_REGISTRY and name not in self._factories:
            return "no provider module registered"
        return None

    def still_usable(self, name: str, request: FetchRequest) -> bool:
        return self._refusal(name, request) is None

    # ------------------------------------------------------------ instances
    def provider(self, name: str) -> Provider:
        with self._lock:
            inst = self._instances.get(name)
            if inst is None:
                inst = self._build(name)
                self._instances[name] = inst
            return inst

    def _build(self, name: str) -> Provider:
        if name in self._factories:
            return self._factories[name]()
        target = PROVIDER_REGISTRY[name]
        module_name, _, cls_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                raise ProviderNotInstalled(f"provider {name!r}: module {module_name} is not available") from exc
            raise
        cls = getattr(module, cls_name)
        options = dict(self._options.get(name, {}))
        if name == "file":
            options.setdefault("directory", self.data_dir)
        if "settings" in inspect.signature(cls).parameters:
            # The vendors read their quirks ([providers.<name>]) from the
            # router's settings, not from a second load of the file.
            options.setdefault("settings", self.settings)
        return cls(**options)

    def second_opinion(self, primary: str) -> "DataRouter":
        """A router over the same configuration that never picks ``primary``
        and ignores ``--provider`` (the cross-source check's second vendor)."""
        return DataRouter(self.settings, env=self.env, data_dir=self.data_dir, factories=self._factories,
                          provider_options=self._options, exclude=(primary,))

    def process_spec(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """("module:Class", constructor options) when ``name`` declares
        ``parallelism = "process"`` and can be rebuilt in a worker process
        (registered by name, not injected as a factory); else None."""
        if name in self._factories or name not in PROVIDER_REGISTRY:
            return None
        module_name, _, cls_name = PROVIDER_REGISTRY[name].partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ModuleNotFoundError, AttributeError):
            return None
        if getattr(cls, "parallelism", "thread") != "process":
            return None
        options = dict(self._options.get(name, {}))
        if name == "file":
            options.setdefault("directory", self.data_dir)
        return PROVIDER_REGISTRY[name], options

    # ------------------------------------------------------------ run state
    def mark_not_entitled(self, name: str, why: str) -> None:
        with self._lock:
            self.not_entitled[name] = why

    def record_outcome(self, name: str, error: ProviderError | None) -> None:
        """What one outcome does to ``name``'s state for the rest of the run
        (the single rule every fallback loop uses): a success resets the
        circuit breaker; 400/401/403 mark the provider not entitled;
        unavailability, schema drift, unparseable payloads and crashes count
        toward the breaker.  A 429 (slow down, not broken), no data and a
        wrong-symbol payload (about the symbol, not the provider) do not."""
        if error is None:
            self.record_result(name, True)
        elif isinstance(error, EntitlementError):
            self.mark_not_entitled(name, f"{error.code}: {error}")
        elif isinstance(error, _BREAKER_FAILURES) or type(error) is MalformedDataError \
                or getattr(error, "code", None) == "PROVIDER_CRASH":
            self.record_result(name, False)

    def record_result(self, name: str, ok: bool) -> None:
        """Feed the circuit breaker: N consecutive failures open it for the run."""
        with self._lock:
            if ok:
                self.consecutive_failures[name] = 0
                return
            n = self.consecutive_failures.get(name, 0) + 1
            self.consecutive_failures[name] = n
            if n >= self.circuit_threshold:
                self.circuit_open.add(name)

    def health_summary(self, name: str) -> dict[str, Any]:
        """The provider's own health numbers (vendors keep HTTP-level ones);
        {} when it keeps none or was never built in this process."""
        inst = self._instances.get(name)
        health = getattr(inst, "health", None)
        summary = getattr(health, "summary", None)
        return dict(summary()) if callable(summary) else {}

    def close(self) -> None:
        for inst in self._instances.values():
            closer = getattr(inst, "close", None)
            if callable(closer):
                closer()


class ProviderNotInstalled(RuntimeError):
    """The provider's module is missing from this installation."""


# ---------------------------------------------------------------- fallback
class NoValidProviderError(ProviderError):
    """No provider may serve the request (capability, entitlement, circuit)."""

    code = NO_VALID_PROVIDER


# Failures that say the provider is unwell (they feed the circuit breaker).
# A 429 that outlived its retries only slows the run; NO_DATA, WRONG_SYMBOL
# and CAPABILITY are about the symbol, not the provider.
_BREAKER_FAILURES = (ProviderUnavailable, SchemaError)
