"""The daily ticket: named by session, no wall-clock time, byte-identical reruns."""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil

from click.testing import CliRunner

from database.manager import Database
from tests.trading.market_frames import SEEDED_AS_OF, random_walk_bars, seed_store, write_bars
from tests import store_reads

import main as main_cli


def run_once(*extra):
    result = CliRunner().invoke(main_cli.main, ["--run-once", "--mode=paper", "--as-of", SEEDED_AS_OF, *extra])
    assert result.exit_code == 0, result.output
    return result


def _seed(desk):
    seed_store(desk.paths.db, desk.symbols, rows=300, drifts={s: 0.004 for s in desk.symbols}, vol=0.006)


def test_two_runs_on_the_same_database_write_identical_tickets(desk):
    _seed(desk)
    run_once()
    files = sorted(desk.paths.tickets_dir.iterdir())
    assert [p.suffix for p in files] == [".json", ".md"]
    first = {p.name: p.read_bytes() for p in files}
    with Database(desk.paths.db) as db:
        orders_after_first = len(store_reads.orders(db))
    assert orders_after_first > 0
    run_once()
    second = {p.name: p.read_bytes() for p in sorted(desk.paths.tickets_dir.iterdir())}
    assert second == first
    with Database(desk.paths.db) as db:
        assert len(store_reads.orders(db)) == orders_after_first, "a rerun of the session sends nothing twice"


def test_a_copy_of_the_database_yields_the_same_ticket(desk, tmp_path, monkeypatch):
    _seed(desk)
    pristine = tmp_path / "copy.db"
    shutil.copy(desk.paths.db, pristine)
    run_once()
    first = {p.name: p.read_bytes() for p in desk.paths.tickets_dir.iterdir()}
    shutil.rmtree(desk.paths.tickets_dir)
    run_once("--db", str(pristine))
    assert {p.name: p.read_bytes() for p in desk.paths.tickets_dir.iterdir()} == first


def test_ticket_content_and_name(desk):
    _seed(desk)
    run_once()
    with Database(desk.paths.db) as db:
        last_bar = db.bars.history_summary()["AAA"]["last_date"]
        orders = store_reads.orders(db)
    ticket_json = desk.paths.tickets_dir / f"{last_bar}.json"
    ticket = json.loads(ticket_json.read_text())
    assert ticket["session"] == last_bar and ticket["data"]["as_of"] == last_bar
    assert re.fullmatch(r"[0-9a-f]{64}", ticket["data"]["price_data_sha256"])
    assert {(i["symbol"], i["side"], i["quantity"]) for i in ticket["instructions"]} == \
        {(o["symbol"], o["side"], round(o["quantity"], 6)) for o in orders}
    for i in ticket["instructions"]:
        assert i["model"] == "arima(1,0,1)" and i["target_weight"] > 0 and i["forecast"] is not None
    assert [e["symbol"] for e in ticket["evidence"]] == ["AAA", "BBB", "CCC"]
    for e in ticket["evidence"]:
        assert e["governance_state"] == "ACTIVE" and e["quality_score"] == 0.95 and e["last_bar"] == last_bar
    p = ticket["portfolio"]
    assert p["var_1d_95"] > 0 and p["cvar_1d_95"] >= p["var_1d_95"] and 0 < p["gross_exposure"] <= 1
    md = (desk.paths.tickets_dir / f"{last_bar}.md").read_text()
    assert "VaR 95%" in md and "CVaR 95%" in md and ticket["data"]["price_data_sha256"] in md
    # No wall-clock time: neither today's date nor a timestamp.
    for text in (md, ticket_json.read_text()):
        assert dt.date.today().isoformat() not in text
        assert not re.search(r"\d{2}:\d{2}:\d{2}", text)


def test_new_data_makes_a_new_ticket_with_a_new_hash(desk):
    _seed(desk)
    run_once()
    with Database(desk.paths.db) as db:
        last = db.bars.history_summary()["AAA"]["last_date"]
        extra = random_walk_bars(301, seed=sum(map(ord, "AAA")), drift=0.004, vol=0.006,
                                 price=50.0 + sum(map(ord, "AAA")) % 100).tail(1)
        write_bars(db, {"AAA": extra}, run_id="next-day")
        new_last = db.bars.history_summary()["AAA"]["last_date"]
    assert new_last > last
    run_once()
    old = json.loads((desk.paths.tickets_dir / f"{last}.json").read_text())
    new = json.loads((desk.paths.tickets_dir / f"{new_last}.json").read_text())
    assert new["data"]["price_data_sha256"] != old["data"]["price_data_sha256"]
    assert new["session"] == new_last
