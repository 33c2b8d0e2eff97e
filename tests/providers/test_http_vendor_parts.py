"""The pure parts of the vendor machinery: Retry-After, session dates,
HTTP status -> typed error, secrets, and the router's NO_VALID_PROVIDER."""
from __future__ import annotations

import email.utils

import pandas as pd
import pytest

from data.collectors.data_router import NO_VALID_PROVIDER, DataRouter
from data.collectors.ingestion import fetch_symbols
from data.providers.base import (EntitlementError, FetchRequest, NoDataError, ProviderUnavailable,
                                 RateLimitError)
from data.providers.http_vendor import (SecretSet, http_status_error, nearest_midnight_dates, parse_retry_after,
                                        payload_error)
from tests.providers.vendor_setup import WINDOW, by_symbol, failed_tries, fast_settings, plans_for


def test_retry_after_reads_seconds_decimals_and_http_dates():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    in_90s = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after(in_90s, now=now) == pytest.approx(90.0)
    assert parse_retry_after(email.utils.formatdate(now - 5, usegmt=True), now=now) == 0.0


def test_session_dates_round_to_the_nearest_local_midnight():
    # New York midnight (05:00Z in winter), UTC midnight (19:00 the day before
    # in New York) and a DST-season stamp all land on their session date.
    stamps = pd.DatetimeIndex(["2024-01-02T05:00Z", "2024-01-03T00:00Z", "2024-07-01T04:00Z",
                               "2024-07-01T22:00Z"])
    dates = nearest_midnight_dates(stamps, "America/New_York")
    assert [str(d)[:10] for d in dates] == ["2024-01-02", "2024-01-03", "2024-07-01", "2024-07-02"]


@pytest.mark.parametrize("status, cls, retryable", [
    (400, EntitlementError, False), (401, EntitlementError, False), (403, EntitlementError, False),
    (429, RateLimitError, True), (404, NoDataError, False), (500, ProviderUnavailable, True),
    (503, ProviderUnavailable, True), (408, ProviderUnavailable, True), (422, ProviderUnavailable, False),
])
def test_http_status_maps_to_what_the_router_should_do(status, cls, retryable):
    err = http_status_error(status, provider="p", symbol="S", detail="x", retry_after=3.0)
    assert type(err) is cls and err.retryable is retryable
    if cls is RateLimitError:
        assert err.retry_after == 3.0


def test_non_json_bodies_are_typed_never_empty():
    assert isinstance(payload_error(b"<!DOCTYPE html><html>captcha", provider="p", symbol="S", url="/u"),
                      ProviderUnavailable)
    err = payload_error(b'{"results": [1, 2', provider="p", symbol="S", url="/u")
    assert err.code == "MALFORMED_DATA" and "/u" in str(err)


def test_secret_set_scrubs_messages_attributes_and_causes():
    secrets = SecretSet(["k3y-value-123", None, "ab"])
    try:
        try:
            raise ValueError("body echoes k3y-value-123")
        except ValueError as inner:
            raise RuntimeError("outer k3y-value-123") from inner
    except RuntimeError as exc:
        exc.body = b"raw k3y-value-123"
        secrets.scrub(exc)
        assert "k3y" not in str(exc) and "k3y" not in str(exc.__cause__) and b"k3y" not in exc.body
    assert secrets.redact("ab stays: short values are not secrets") == "ab stays: short values are not secrets"


def test_no_candidate_provider_is_no_valid_provider_and_sends_nothing(vendor_runtime, server, point_env_at,
                                                                      monkeypatch):
    point_env_at(server)
    monkeypatch.setenv("YAHOO_ENABLED", "false")
    router = DataRouter(fast_settings())
    request = FetchRequest("GC=F", "commodities", *WINDOW)
    fetched, = by_symbol(fetch_symbols(router, plans_for([request]), settings=router.settings, raw_dir=None,
                                       trail=None), [request]).values()
    router.close()
    outcome, tried = fetched.outcome, failed_tries(fetched)
    assert outcome.error.code == NO_VALID_PROVIDER and tried == []
    assert "yahoo: not entitled (YAHOO_ENABLED=false)" in str(outcome.error)
    assert "polygon: does not serve commodities" in str(outcome.error)
    assert server.count() == 0
