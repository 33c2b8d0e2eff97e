"""What the three network vendors share: quirks, pacing, retries, circuit
breaker, health numbers, secrets and timestamps.

A vendor module (``yahoo``, ``polygon``, ``alpaca``) subclasses
:class:`HttpVendorProvider` and implements ``_fetch_unit``: one vendor call
for a *unit* of requests (one symbol for Yahoo and Polygon, many symbols for
Alpaca) that returns a result or a typed error per symbol, or raises a typed
error for the whole unit.  Everything around that call lives here, one
module per job:

* **quirks** (``quirks``) - a per-vendor dict (rate limits, batch size,
  workers, deadline, retry budgets, base URL) merged ``BASE_QUIRKS`` <- the
  module's wire facts <- settings ``[providers.<name>]`` <- ``<NAME>_BASE_URL``
  env <- keyword arguments of the constructor;
* **pacing** (``pacing``) - one pyrate-limiter ``Limiter`` per provider
  instance, every window of the vendor's published limits enforced (sliding
  window), plus a provider-wide pause after a 429 so the other workers do not
  keep knocking;
* **retries** (``retry``) - tenacity: 429 retried up to ``rate_limit_retries``
  honouring Retry-After, 5xx/timeouts up to ``unavailable_retries`` with
  exponential backoff, nothing else retried (400/401/403 never); a 429 storm
  ends within the run's rate-limit budget (``rate_limit_budget_seconds`` /
  ``rate_limit_budget_429s``), after which the provider is unavailable for
  the rest of the run;
* **entitlement, capability, circuit breaker, health** - the one provider
  policy of ``data.providers.policy``, also used by the router: keys read from
  env at construction; a 400/401/403 marks the provider not entitled for the
  rest of the run and every later request fails without being sent (until
  the first answer arrives, units go out one at a time, so a bad key costs
  exactly one request); after ``circuit_breaker_failures`` consecutive failed
  units (429s do not count) the remaining requests fail fast; requests sent,
  failures by code, latency p50/p95, retries, 429 waits, circuit state
  (``provider.health.summary()``, one ``provider_health`` row per run);
* **secrets** (``secret_set``) - key values masked in every error, payload
  and line;
* **answers** (``answers``) - HTTP statuses and bodies as typed errors,
  midnight-stamped bars as session dates, suspicious content as notes;
* the base class itself (``provider``).
"""
from __future__ import annotations

from data.providers.http_vendor.answers import (CapturedResponse, connection_error, decode_json, frame_notes,
                                                http_status_error, nearest_midnight_dates, payload_error,
                                                reference_tz, result_frame, transport_cause)
from data.providers.http_vendor.pacing import RequestPacer, parse_retry_after
from data.providers.http_vendor.provider import HttpVendorProvider
from data.providers.http_vendor.quirks import BASE_QUIRKS, BASE_URL_ENV, QuirksError, resolve_quirks
from data.providers.http_vendor.secret_set import SecretSet
from data.providers.policy import ProviderHealth

__all__ = ["BASE_QUIRKS", "BASE_URL_ENV", "CapturedResponse", "HttpVendorProvider", "connection_error", "ProviderHealth",
           "QuirksError", "RequestPacer", "SecretSet", "decode_json", "frame_notes", "http_status_error",
           "nearest_midnight_dates", "parse_retry_after", "payload_error", "reference_tz", "resolve_quirks",
           "result_frame", "transport_cause"]
