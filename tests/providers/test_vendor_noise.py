"""Issue 9, failures 7 and 9: machine output stays machine-readable and a
vendor outage reads as one line per provider, not as noise.

The commands run as the operator runs them (subprocesses of the root
scripts) with the real clients against the loopback vendor server or a
closed port; no network.
"""
from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import ingest_history
from data.collectors.data_router import DataRouter
from data.collectors.ingestion import fetch_symbols
from data.providers.base import FetchRequest
from tests.providers.vendor_setup import FAST, WINDOW, fast_settings, plans_for

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("AAPL", "MSFT", "JPM")
OFFLINE_HINT = "check the network, or run offline with --provider synthetic or --provider file --data-dir DIR"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def operator_env(vendor_runtime, tmp_path):
    """The environment a subprocess command gets: the test's runtime, fast
    vendor quirks in a settings file, a three-symbol universe."""
    lines = []
    for vendor in ("yahoo", "polygon", "alpaca"):
        lines.append(f"[providers.{vendor}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in FAST.items()]
    (tmp_path / "settings.toml").write_text("\n".join(lines) + "\n")
    (tmp_path / "universe.json").write_text(json.dumps({"symbols": [{"symbol": s} for s in SYMBOLS]}))
    env = dict(os.environ, SETTINGS_FILE=str(tmp_path / "settings.toml"), UNIVERSE_FILE=str(tmp_path / "universe.json"),
               PYTHONPATH=str(ROOT), COLUMNS="200")
    for name in ("FORCE_COLOR", "PYTEST_CURRENT_TEST"):
        env.pop(name, None)
    return env


def vendors_down(env: dict) -> dict:
    down = f"http://127.0.0.1:{closed_port()}"
    return dict(env, YAHOO_BASE_URL=down, POLYGON_BASE_URL=down, ALPACA_DATA_URL=down), down


RANGE = ["--start", str(WINDOW[0]), "--end", str(WINDOW[1])]


def run(script: str, args: list[str], env: dict, *, prelude: str | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(ROOT / script), *args] if prelude is None else \
        [sys.executable, "-c", prelude, str(ROOT / script), *args]
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------ failure 7
def test_json_stdout_is_one_document_when_polygon_answers_truncated_and_html(operator_env, server):
    """Truncated JSON and an HTML page from Polygon (Yahoo and Alpaca down):
    polygon-api-client logs ``RESTClient ERROR`` to its own stdout handler;
    under --json stdout is still exactly one parseable document and the
    client's noise is on stderr."""
    server.fault("polygon", "AAPL", "truncated_json", times=None)
    server.fault("polygon", "MSFT", "html_200", times=None)
    env, _ = vendors_down(operator_env)
    env["POLYGON_BASE_URL"] = server.url
    proc = run("ingest_history.py", ["--json", *RANGE], env)
    document = json.loads(proc.stdout)               # the whole of stdout, nothing before or after
    assert document["exit_code"] == proc.returncode == 1
    assert "RESTClient" not in proc.stdout
    assert "RESTClient ERROR: Error decoding json response" in proc.stderr
    by_symbol = {s["symbol"]: s for s in document["symbols"]}
    assert by_symbol["AAPL"]["tried"][1]["error_code"] == "MALFORMED_DATA"
    assert by_symbol["MSFT"]["tried"][1]["error_code"] == "PROVIDER_UNAVAILABLE"
    assert by_symbol["JPM"]["outcome"] == "SUCCESS"
    assert {p["provider"]: p["status"] for p in document["providers"]}["yahoo"] == "unreachable"


# A "library" (its code runs under the module name somelib) that, while the
# command runs (at its first database connection), prints, logs through a
# handler it attached to stdout at import, and writes to file descriptor 1.
NOISY_LIBRARY = '''
import os, runpy, sys
sys.path.insert(0, os.getcwd())
library = {"__name__": "somelib"}
exec(compile("""
import logging, os, sys
log = logging.getLogger("somelib")
log.addHandler(logging.StreamHandler(sys.stdout))
fired = []
def hook(event, args):
    if event == "sqlite3.connect" and not fired:
        fired.append(1)
        print("somelib: print noise")
        log.warning("somelib: handler noise")
        os.write(1, b"somelib: fd noise\\\\n")
""", "somelib.py", "exec"), library)
sys.addaudithook(library["hook"])
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
'''


@pytest.mark.parametrize("script,args", [
    ("ingest_history.py", ["--provider", "synthetic", "--tickers", "AAPL"]),
    ("verify_backfill.py", []),
    ("verify_db_status.py", []),
    ("repair_db.py", ["--symbol", "AAPL", "--from", "2026-11-02", "--to", "2026-11-06", "--provider", "synthetic",
                      "--dry-run"]),
])
def test_json_stdout_takes_only_the_document_whatever_a_library_writes(operator_env, script, args):
    """Every Stage 1 command: a library's print, its own stdout handler and
    a raw write to fd 1 during the command all land on stderr."""
    seeded = CliRunner(env={k: operator_env[k] for k in ("SETTINGS_FILE", "UNIVERSE_FILE")}).invoke(
        ingest_history.main, ["--provider", "synthetic", "--as-of", "2026-11-20", "--json"])
    assert seeded.exit_code in (0, 2), seeded.output
    proc = run(script, [*args, "--json"], operator_env, prelude=NOISY_LIBRARY)
    assert proc.returncode in (0, 1, 2), proc.stderr
    json.loads(proc.stdout)
    assert "somelib" not in proc.stdout
    for noise in ("print noise", "handler noise", "fd noise"):
        assert f"somelib: {noise}" in proc.stderr


# ------------------------------------------------------------ failure 9
def test_vendors_down_prints_one_line_per_provider_with_cause_and_hint(operator_env):
    env, down = vendors_down(operator_env)
    proc = run("ingest_history.py", RANGE, env)
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    host = down.removeprefix("http://")
    for vendor in ("yahoo", "polygon", "alpaca"):
        lines = [line for line in out if line.startswith(f"{vendor}:")]
        assert lines == [f"{vendor}: unreachable (connection refused by {host}) - {OFFLINE_HINT}"], out
    # The failure list once: one line per symbol, not again among the problems.
    assert not any("failed to fetch" in line for line in out)
    for symbol in SYMBOLS:
        assert len([line for line in out if line.startswith(f"  {symbol}  FAILED")]) == 1
    # yfinance's cookie/crumb warning: once, then a count.
    crumbs = [line for line in proc.stderr.splitlines() if "Cookie/crumb" in line]
    assert len([line for line in crumbs if "times in all]" not in line]) <= 1, proc.stderr
    assert len(crumbs) <= 2 and (len(crumbs) < 2 or re.search(r"\[seen \d+ times in all\]", crumbs[-1]))


def test_repair_with_vendors_down_names_each_provider_and_the_offline_flags(operator_env):
    seeded = CliRunner(env={k: operator_env[k] for k in ("SETTINGS_FILE", "UNIVERSE_FILE")}).invoke(
        ingest_history.main, ["--provider", "synthetic", "--tickers", "AAPL", "--as-of", "2026-11-20", "--json"])
    assert seeded.exit_code in (0, 2), seeded.output
    env, _ = vendors_down(operator_env)
    proc = run("repair_db.py", ["--symbol", "AAPL", "--from", "2026-11-02", "--to", "2026-11-06", "--dry-run"], env)
    assert proc.returncode == 1
    assert "fetch failed" in proc.stdout
    assert [line.split(":")[0] for line in proc.stdout.splitlines() if OFFLINE_HINT in line] == \
        ["yahoo", "polygon", "alpaca"]


def test_progress_counts_attempts_from_a_known_total(vendor_runtime, server, monkeypatch):
    """AAPL is served by Yahoo at once (its two other candidates are not
    needed); MSFT fails at Yahoo and at Polygon, then Alpaca serves it."""
    monkeypatch.setenv("YAHOO_BASE_URL", server.url)
    monkeypatch.setenv("POLYGON_BASE_URL", server.url)
    monkeypatch.setenv("ALPACA_DATA_URL", server.url)
    server.fault("yahoo", "MSFT", "500", times=None)
    server.fault("polygon", "MSFT", "html_200", times=None)
    requests = [FetchRequest(s, "stocks", *WINDOW, "XNYS") for s in ("AAPL", "MSFT")]
    calls = []
    router = DataRouter(fast_settings())
    try:
        list(fetch_symbols(router, plans_for(requests), settings=router.settings, raw_dir=None, trail=None,
                           progress=lambda label, done, total: calls.append((label, done, total))))
    finally:
        router.close()
    assert calls[0] == ("0/2 symbols", 0, 6)               # known before the first request
    assert {total for _, _, total in calls} == {6}
    dones = [done for _, done, _ in calls]
    assert dones == sorted(dones) and dones[-1] == 6
    assert any("MSFT: yahoo PROVIDER_UNAVAILABLE, trying polygon" in label for label, _, _ in calls)
    assert calls[-1][0].startswith("2/2 symbols")


def test_progress_bar_in_a_terminal_never_shows_an_unknown_total(operator_env):
    """The rendered bar, in a pseudo-terminal, with every vendor down: the
    total (3 symbols x 3 providers) from the first frame, never ``0/?``."""
    import pty

    env, _ = vendors_down(operator_env)
    env["TERM"] = "xterm"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on the terminal
        try:
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, str(ROOT / "ingest_history.py"), *RANGE], env)
        finally:
            os._exit(127)
    chunks, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:   # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "range" in screen and "9/9" in screen, screen[-2000:]
    assert "/?" not in screen
    assert "unreachable (connection refused" in screen


def test_cause_of_a_refused_or_unresolvable_host():
    """The cause each client's failure names, from its real exception."""
    import requests
    import urllib3

    from data.providers.http_vendor import transport_cause

    port = closed_port()
    with pytest.raises(requests.ConnectionError) as refused:
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert transport_cause(refused.value, f"127.0.0.1:{port}") == f"connection refused by 127.0.0.1:{port}"
    with pytest.raises(urllib3.exceptions.HTTPError) as refused_u3:
        urllib3.PoolManager(retries=False).request("GET", f"http://127.0.0.1:{port}/")
    assert transport_cause(refused_u3.value, "h") == "connection refused by h"
    # No lookup is made (no network in tests): the error as requests chains it.
    unresolved = requests.ConnectionError("Max retries exceeded")
    unresolved.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert transport_cause(unresolved, "vendor.example:443") == "DNS lookup failed for vendor.example:443"
    assert transport_cause(urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"), "h") is None
