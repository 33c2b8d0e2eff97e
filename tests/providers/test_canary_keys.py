"""Keys never appear in logs, exception text (with its causes), raw
payloads, health numbers or the runbook's test line: canary keys are
planted, the fake vendors echo them back in their 401/403 bodies, and every
output is searched for them."""
from __future__ import annotations

import gzip
import json
import logging
import traceback

import pytest

from data.collectors.data_router import DataRouter
from data.collectors.ingestion import fetch_symbols
from data.providers.alpaca import AlpacaDataProvider
from data.providers.base import FetchRequest
from data.providers.polygon import PolygonDataProvider
from data.providers.yahoo import YahooDataProvider
from tests.providers.vendor_setup import CANARIES, WINDOW, by_symbol, failed_tries, fast_settings, plans_for

pytestmark = pytest.mark.filterwarnings("ignore:.*inplace keyword")


def test_canary_keys_appear_in_no_output(vendor_runtime, server, point_env_at, caplog, capfd, tmp_path):
    caplog.set_level(logging.DEBUG)
    point_env_at(server)
    outputs: list[str] = []

    # 1. Fallback runs with every kind of failure, the keys echoed back.
    faults = {"polygon": {"AAPL": "401", "MSFT": "500", "BRK-B": "truncated_json"},
              "alpaca": {"AAPL": "403", "JPM": "html_200"},
              "yahoo": {"AAPL": "503", "MSFT": "500", "BRK-B": "wrong_symbol", "JPM": "502"}}
    for vendor, symbol_faults in faults.items():
        for symbol, fault in symbol_faults.items():
            server.fault(vendor, symbol, fault, times=None)
    archives = 0
    for priority in (["polygon", "alpaca", "yahoo"], ["alpaca", "polygon", "yahoo"], ["yahoo", "polygon", "alpaca"]):
        router = DataRouter(fast_settings(priority=priority), provider_options={})
        # EURUSD=X is never faulted: some payload is served and archived every time.
        requests = [FetchRequest(s, "stocks", *WINDOW) for s in ("AAPL", "MSFT", "BRK-B", "JPM")] \
            + [FetchRequest("EURUSD=X", "fx", *WINDOW)]
        raw_dir = tmp_path / "raw" / priority[0]
        results = by_symbol(fetch_symbols(router, plans_for(requests), settings=router.settings, raw_dir=raw_dir,
                                          trail=None), requests)
        for fetched in results.values():
            outcome, tried = fetched.outcome, failed_tries(fetched)
            outputs.append(repr(tried))
            outputs.append(json.dumps(fetched.audit, default=str))
            if outcome.error is not None:
                outputs.append(str(outcome.error))
                outputs.append("".join(traceback.format_exception(outcome.error)))
            else:
                # As in a run: the payload went to the archive, not kept in memory.
                assert outcome.result.raw_payload is None
                outputs.extend(outcome.result.notes)
        # The raw archive is what an operator keeps: it must hold no key either.
        for path in sorted(raw_dir.glob("*.gz")):
            outputs.append(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
            archives += 1
        for name in priority:
            outputs.append(json.dumps(router.provider(name).health.summary(), default=str))
        outputs.append(json.dumps(router.not_entitled))
        router.close()
    assert any("unknown API key ***" in text for text in outputs), "the fake must echo the key for this test to bite"
    assert archives >= 3, "every ordering serves EURUSD=X: its payload must be archived and searched"

    # 2. The runbook's test line, entitled and refused.
    server.clear_faults()
    for cls in (YahooDataProvider, PolygonDataProvider, AlpacaDataProvider):
        outputs.append(cls(settings=fast_settings()).test())
    server.fault("polygon", "SPY", "401")
    server.fault("alpaca", "SPY", "403")
    outputs.append(PolygonDataProvider(settings=fast_settings()).test())
    outputs.append(AlpacaDataProvider(settings=fast_settings()).test())
    assert "HTTP 401" in outputs[-2] and "HTTP 403" in outputs[-1]

    # 3. Logs (every logger at DEBUG, exceptions formatted) and the process streams.
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    outputs.extend(formatter.format(record) for record in caplog.records)
    captured = capfd.readouterr()
    outputs += [captured.out, captured.err]

    text = "\n".join(outputs)
    assert len(caplog.records) > 10 and len(text) > 10_000
    for canary in CANARIES:
        assert canary not in text
