"""Provider selection: capability matrix, priority, entitlement, fallback.

Providers are registered by name (``PROVIDER_REGISTRY``: name -> "module:Class")
and imported on first use, so a vendor is one module added.  For each symbol
the router answers the ordered list of providers that may serve its window,
and why each other provider was passed over; the ingestion run
(``data.collectors.ingestion.fetch_symbols``) walks that list, falling back
on failure.  No candidate -> ``NO_VALID_PROVIDER``.  The rules themselves
(entitlement, capability, not entitled for the run, circuit breaker) are the
provider policy of ``data.providers.policy``; the router keeps one run state
per provider name.

A router built with a ``guard`` (``data.providers.guard.FetchGuard``; Stage 2
passes its history guard) hands it to every provider it builds, including
the specs that rebuild providers in worker processes, and reports every
violation that comes back as an outcome to the guard.
"""
from __future__ import annotations

import importlib
import inspect
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.errors import UsageError
from data.providers.base import FetchRequest, Provider, ProviderError
from data.providers.guard import FetchGuard, GuardedProvider, GuardViolation
from data.providers.policy import ProviderRunState, capability_refusal, provider_entitled
from core.settings import Settings
from data.governance.rules import NO_VALID_PROVIDER



PROVIDER_REGISTRY: dict[str, str] = {
    "yahoo": "data.providers.yahoo:YahooDataProvider",
    "polygon": "data.providers.polygon:PolygonDataProvider",
    "alpaca": "data.providers.alpaca:AlpacaDataProvider",
    "file": "data.providers.file:FileDataProvider",
    "synthetic": "data.providers.synthetic:SyntheticDataProvider",
}


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
                 exclude: tuple[str, ...] = (), guard: FetchGuard | None = None):
        self.settings = settings
        self.guard = guard
        self.env = dict(os.environ if env is None else env)
        self.capabilities = settings.providers.capabilities
        self.data_dir = data_dir or self.env.get("FILE_PROVIDER_DIR") or None
        priority = list(settings.providers.priority)
        if self.data_dir and settings.providers.file_fallback and "file" not in priority:
            priority.append("file")
        priority = [p for p in priority if p not in exclude]
        if only:
            if only not in self.capabilities:
                raise UsageError(f"unknown provider {only!r}; known: {', '.join(sorted(self.capabilities))}")
            priority = [only]
        self.priority = priority
        if "file" in priority and (self.data_dir or only == "file"):
            # The operator's data directory is an input: missing, it stops the
            # command before any state changes (exit 66), never a provider
            # failure per symbol or a governance decision.
            from data.providers.file.directory import require_data_directory

            require_data_directory(self.data_dir)
        self.only = only
        self._factories = dict(factories or {})
        self._options = {k: dict(v) for k, v in (provider_options or {}).items()}
        self._instances: dict[str, Provider] = {}
        self._lock = threading.Lock()
        # Per-run state of each provider (not entitled, circuit breaker).
        self.circuit_threshold = settings.providers.circuit_breaker_failures
        self._states: dict[str, ProviderRunState] = {}
        self._states_lock = threading.Lock()

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
        why = capability_refusal(caps, request)
        if why:
            return why
        if name == "file" and not self.data_dir:
            return "no data directory (--data-dir or FILE_PROVIDER_DIR)"
        if name == "synthetic" and self.only != "synthetic":
            return "synthetic is used only when asked for (--provider synthetic)"
        ok, why = provider_entitled(name, self.capabilities, self.env)
        if not ok:
            return f"not entitled ({why})"
        why = self.run_state(name).refusal()
        if why:
            return why
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
            return self._guarded(self._factories[name]())
        target = PROVIDER_REGISTRY[name]
        module_name, _, cls_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                raise ProviderNotInstalled(f"provider {name!r}: module {module_name} is not available") from exc
            raise
        cls = getattr(module, cls_name)
        options = self._constructor_options(name, cls)
        if "settings" in inspect.signature(cls).parameters:
            # The vendors read their quirks ([providers.<name>]) from the
            # router's settings, not from a second load of the file.
            options.setdefault("settings", self.settings)
        inst = cls(**options)
        return inst if "guard" in options else self._guarded(inst)

    def _constructor_options(self, name: str, cls: type) -> dict[str, Any]:
        """Options for ``cls(...)``: the caller's, the data directory for
        ``file``, and the guard where the constructor takes one."""
        options = dict(self._options.get(name, {}))
        if name == "file":
            options.setdefault("directory", self.data_dir)
        if self.guard is not None and "guard" in inspect.signature(cls).parameters:
            options["guard"] = self.guard
        return options

    def _guarded(self, inst: Provider) -> Provider:
        return inst if self.guard is None else GuardedProvider(inst, self.guard)

    def second_opinion(self, primary: str) -> "DataRouter":
        """A router over the same configuration that never picks ``primary``
        and ignores ``--provider`` (the cross-source check's second vendor)."""
        return DataRouter(self.settings, env=self.env, data_dir=self.data_dir, factories=self._factories,
                          provider_options=self._options, exclude=(primary,), guard=self.guard)

    def process_spec(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """("module:Class", constructor options) when ``name`` declares
        ``parallelism = "process"`` and can be rebuilt in a worker process
        (registered by name, not injected as a factory); else None.  Under a
        guard only a provider that takes the guard itself may leave the
        process (the guard is then one of its options)."""
        if name in self._factories or name not in PROVIDER_REGISTRY:
            return None
        module_name, _, cls_name = PROVIDER_REGISTRY[name].partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ModuleNotFoundError, AttributeError):
            return None
        if getattr(cls, "parallelism", "thread") != "process":
            return None
        options = self._constructor_options(name, cls)
        if self.guard is not None and "guard" not in options:
            return None
        return PROVIDER_REGISTRY[name], options

    # ------------------------------------------------------------ run state
    def run_state(self, name: str) -> ProviderRunState:
        """``name``'s state for this run (created on first use)."""
        with self._states_lock:
            state = self._states.get(name)
            if state is None:
                state = self._states[name] = ProviderRunState(self.circuit_threshold)
            return state

    @property
    def not_entitled(self) -> dict[str, str]:
        """Providers marked not entitled in this run, and why."""
        return {name: s.not_entitled for name, s in list(self._states.items()) if s.not_entitled}

    @property
    def circuit_open(self) -> set[str]:
        """Providers whose circuit opened in this run."""
        return {name for name, s in list(self._states.items()) if s.circuit_open}

    def mark_not_entitled(self, name: str, why: str) -> None:
        self.run_state(name).mark_not_entitled(why)

    def record_outcome(self, name: str, error: ProviderError | None) -> None:
        """What one outcome does to ``name``'s state for the rest of the run:
        the provider policy's one rule (``ProviderRunState.record``), which
        every fallback loop uses.  A guard violation is also reported to the
        guard, wherever the provider ran."""
        self.run_state(name).record(error)
        if self.guard is not None and isinstance(error, GuardViolation):
            self.guard.record(error)

    def health_summary(self, name: str) -> dict[str, Any]:
        """The provider's own health numbers (vendors keep HTTP-level ones)
        with this run's state folded in (circuit open, not entitled); {} when
        it keeps none or was never built in this process."""
        inst = self._instances.get(name)
        health = getattr(inst, "health", None)
        summary = getattr(health, "summary", None)
        if not callable(summary):
            return {}
        out = dict(summary())
        state = self._states.get(name)
        if state is not None:
            out["circuit_open"] = bool(out.get("circuit_open")) or state.circuit_open
            if state.rate_limit_exhausted:
                out["rate_limit_exhausted"] = out.get("rate_limit_exhausted") or state.rate_limit_exhausted
            if state.not_entitled:
                out["entitled"] = False
        return out

    def close(self) -> None:
        for inst in self._instances.values():
            closer = getattr(inst, "close", None)
            if callable(closer):
                closer()


class ProviderNotInstalled(ProviderError):
    """The provider's module is missing from this installation: the symbol's
    outcome, and the next provider is tried."""

    code = "PROVIDER_NOT_INSTALLED"


# ---------------------------------------------------------------- fallback
class NoValidProviderError(ProviderError):
    """No provider may serve the request (capability, entitlement, circuit)."""

    code = NO_VALID_PROVIDER
