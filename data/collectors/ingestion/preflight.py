"""Refusing a run no provider can serve *because of how it was invoked*,
before any state changes (docs/decisions.md D-E4, D-E5).

``NO_VALID_PROVIDER`` is a governance decision: the symbol is QUARANTINED.
It is the right answer when the desk's configuration leaves a symbol
without a provider, never when the command line asked for something the
chosen provider cannot do.  So:

- with ``--provider`` (the operator's explicit choice), a provider that is
  not entitled, does not serve a symbol's asset class, or cannot serve the
  window (``max_history_days``) is a :class:`ProviderChoiceError` (exit
  64): one line naming the provider, why, and what to do;
- without it, a ``--start`` (or ``--from``) so early that the window is
  longer than *every* provider's ``max_history_days`` is a
  :class:`ProviderChoiceError` naming the flag.

Only the capability matrix and the environment are read: nothing is sent,
nothing is written.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from core.errors import UsageError
from data.collectors.data_router import DataRouter
from data.providers.base import FetchRequest
from data.providers.policy import REQUIRED_KEYS, capability_refusal, provider_entitled

_LISTED = 5


class ProviderChoiceError(UsageError):
    """The invocation asks for what no provider (or the chosen one) can
    serve: change the command line; nothing was fetched or written."""


def _names(requests: Sequence[FetchRequest]) -> str:
    symbols = [r.symbol for r in requests]
    more = f" and {len(symbols) - _LISTED} more" if len(symbols) > _LISTED else ""
    return ", ".join(symbols[:_LISTED]) + more


def check_servable(router: DataRouter, requests: Iterable[FetchRequest | None], *, provider: str | None,
                   range_flag: str | None = None) -> None:
    """ProviderChoiceError when the explicit ``provider`` cannot serve every
    request, or (no ``provider``) when ``range_flag`` was given and some
    window is longer than any provider of the priority serves."""
    requests = [r for r in requests if r is not None]
    if not requests:
        return
    if provider:
        _check_chosen(router, provider, requests)
    elif range_flag:
        _check_range(router, requests, range_flag)


def _check_chosen(router: DataRouter, name: str, requests: list[FetchRequest]) -> None:
    caps = router.capabilities.get(name)
    if caps is None:    # the router refuses an unknown name when built; kept for library callers
        raise ProviderChoiceError(f"--provider {name!r}: unknown; known: {', '.join(sorted(router.capabilities))}")
    entitled, why = provider_entitled(name, router.capabilities, router.env)
    if not entitled:
        keys = " and ".join(REQUIRED_KEYS.get(name, ()))
        needs = f"{name.upper()}_ENABLED=true" + (f" and {keys}" if keys else "")
        raise ProviderChoiceError(f"--provider {name}: not entitled ({why}); set {needs}, or leave --provider "
                                  f"out to use the entitled providers (nothing was fetched or written)")
    by_class = [r for r in requests if not caps.get(r.asset_class, False)]
    if by_class:
        classes = ", ".join(sorted({r.asset_class for r in by_class}))
        raise ProviderChoiceError(f"--provider {name}: does not serve {classes} ({_names(by_class)}); narrow "
                                  f"--tickers to what it serves, or leave --provider out "
                                  f"(nothing was fetched or written)")
    too_long = [r for r in requests if capability_refusal(caps, r)]
    if too_long:
        longest = max(too_long, key=lambda r: r.span_days)
        raise ProviderChoiceError(f"--provider {name}: serves at most {caps.get('max_history_days')} days of "
                                  f"history, the window of {longest.symbol} is {longest.span_days} days "
                                  f"({longest.start}..{longest.end}; {len(too_long)} symbol(s)); ask for a "
                                  f"shorter range (--start/--end, --mode=incremental) or leave --provider out "
                                  f"(nothing was fetched or written)")


def _check_range(router: DataRouter, requests: list[FetchRequest], flag: str) -> None:
    for request in requests:
        serving = {n: router.capabilities[n] for n in router.priority
                   if n in router.capabilities and router.capabilities[n].get(request.asset_class, False)}
        if serving and all(capability_refusal(caps, request) for caps in serving.values()):
            limits = ", ".join(f"{n} {caps.get('max_history_days')}" for n, caps in serving.items())
            raise ProviderChoiceError(f"{flag} {request.start}: the window of {request.span_days} days "
                                      f"({request.symbol}, {request.start}..{request.end}) is longer than any "
                                      f"provider serves (max_history_days: {limits}); give a later {flag} "
                                      f"(nothing was fetched or written)")
