"""The two verify commands: compute (``reports.health``), print, exit code.

Human output is a rich report on a terminal and plain aligned text
otherwise (pipes, CI logs); ``--json`` prints only the JSON document on
stdout.  The CLI files ``verify_backfill.py`` / ``verify_db_status.py`` call
:func:`verify_backfill` / :func:`verify_db_status` and exit with their result.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, Iterable, Mapping, Sequence

import click
from rich.console import Console
from rich.table import Table

from cli import exit_codes
from core.inputs import load_inputs
from reports import health

_HUMAN_LIMIT = 25   # rows per table in human output (JSON carries them all)
_STATUS_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "GREEN": "green",
                 "YELLOW": "yellow", "RED": "bold red"}


def verify_backfill(db_path: str | None, universe_path: str | None, *, show_symbols: bool = False,
                    strict: bool = False, as_of: dt.date | None = None, as_json: bool = False) -> int:
    """``verify_backfill.py``: print compliance at ``as_of`` (default: now);
    with ``strict`` exit 2 unless every enabled universe symbol complies."""
    universe, settings = load_inputs(universe_path)
    with health.open_for_report(db_path) as db:
        result = health.backfill_compliance(db, universe, settings, as_of=as_of)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        _Printer().compliance(result, show_symbols)
    if strict and not result["passed"]:
        return exit_codes.GATE_FAILED
    return exit_codes.OK


def verify_db_status(db_path: str | None, universe_path: str | None, *, sections: Sequence[str] = (),
                     as_of: dt.date | None = None, as_json: bool = False) -> int:
    """``verify_db_status.py``: the chosen sections (all by default); exit 0
    when every check passes, 2 when one fails, 1 when integrity fails."""
    universe, settings = load_inputs(universe_path)
    with health.open_for_report(db_path) as db:
        status = health.db_status(db, universe, settings, as_of=as_of, sections=sections or None)
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str))
    else:
        _Printer().status(status)
    return status_exit_code(status)


def status_exit_code(status: Mapping[str, Any]) -> int:
    """0 when every check passes; 1 when the database itself is damaged
    (integrity); 2 when a history/quality/governance/freshness/ingest check fails."""
    checks = status.get("checks", {})
    if checks.get("integrity") == health.FAIL:
        return exit_codes.FAILURE
    return exit_codes.OK if status.get("passed") else exit_codes.GATE_FAILED


class _Printer:
    """Rich tables on a terminal, aligned plain text otherwise."""

    def __init__(self) -> None:
        self.rich = sys.stdout.isatty()
        self.console = Console() if self.rich else None

    # -------------------------------------------------------------- output
    def line(self, text: str = "", style: str | None = None) -> None:
        if self.rich:
            self.console.print(text, style=style, highlight=False, markup=False)
        else:
            click.echo(text)

    def heading(self, title: str, status: str | None = None) -> None:
        self.line()
        if self.rich:
            label = f"[bold]{title}[/bold]" + (f"  [{_STATUS_STYLE.get(status, '')}]{status}[/]" if status else "")
            self.console.rule(label, align="left")
        else:
            self.line(f"== {title}" + (f": {status}" if status else "") + " ==")

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], total: int | None = None) -> None:
        rows = [[_cell(v) for v in r] for r in rows]
        shown = rows[:_HUMAN_LIMIT]
        if self.rich:
            table = Table(show_edge=False, header_style="bold")
            for i, column in enumerate(columns):
                # Room for the widest value (headers may wrap): a reason code
                # cut short or folded is hard to read and easy to misquote.
                widest = min(24, max((len(r[i]) for r in shown), default=0))
                table.add_column(column, overflow="fold", min_width=widest)
            for r in shown:
                table.add_row(*r)
            self.console.print(table)
        else:
            widths = [max(len(c), *(len(r[i]) for r in shown)) if shown else len(c) for i, c in enumerate(columns)]
            self.line("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
            for r in shown:
                self.line("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
        hidden = (total if total is not None else len(rows)) - len(shown)
        if hidden > 0:
            self.line(f"... and {hidden} more (see --json)")

    def pairs(self, items: Iterable[tuple[str, Any]]) -> None:
        items = list(items)
        width = max(len(k) for k, _ in items)
        for key, value in items:
            self.line(f"{key.ljust(width)}  {_cell(value)}")

    # ------------------------------------------------------------ reports
    def compliance(self, r: dict[str, Any], show_symbols: bool) -> None:
        self.heading("Backfill compliance", "PASS" if r["passed"] else "FAIL")
        self.pairs([("database", r["database"]), ("universe", r["universe"]), ("as-of", r["as_of"]),
                    ("compliant", f"{r['compliant']}/{r['symbols']} symbols ({r['compliance_pct']:.2f}%) "
                                  f"ACTIVE, fresh, with >= {r['required_rows']} rows"),
                    ("states", ", ".join(f"{k} {v}" for k, v in r["states"].items())),
                    ("last complete session", ", ".join(f"{c} {d}" for c, d in r["expected_last_session"].items())),
                    ("stale", f"{r['stale']} symbol(s)")])
        if show_symbols and r["failing"]:
            self.heading("Failing symbols")
            self.table(("symbol", "state", "reason", "rows", "window", "score", "last bar", "behind"),
                       [(f["symbol"], f["state"], f["reason"], f["rows"], f["window_rows"], f["quality_score"],
                         f["last_date"], f["age_sessions"]) for f in r["failing"]])
        elif r["failing"]:
            self.line(f"{len(r['failing'])} symbol(s) do not comply: run verify_backfill.py --symbols")
        if r["fix"]:
            self.line(f"Action required: {r['fix']}")
        self.line("Result: " + ("100% compliant" if r["passed"] else "NOT compliant"),
                  "green" if r["passed"] else "bold red")

    def status(self, s: dict[str, Any]) -> None:
        self.pairs([("database", s["database"]), ("universe", f"{s['universe']} ({s['symbols']} symbols)"),
                    ("as-of", s["as_of"])])
        for name in s["checks"]:
            getattr(self, f"_{name}")(s[name])
        failed = [n for n, st in s["checks"].items() if st == "FAIL"]
        warned = [n for n, st in s["checks"].items() if st == "WARN"]
        self.line()
        # "All checks passed" only when every check did: a WARN is named.
        if failed:
            self.line(f"FAILED: {', '.join(failed)}", "bold red")
        elif warned:
            self.line(f"No check failed; warnings: {', '.join(warned)}", "yellow")
        else:
            self.line("All checks passed", "green")

    def _history(self, h: dict[str, Any]) -> None:
        self.heading("History", h["status"])
        self.pairs([("required rows", h["required_rows"]),
                    ("complete", f"{h['complete']}/{h['symbols']}"), ("short", h["short"]),
                    ("no data", h["no_data"]), ("rows min/max", f"{h['min_rows']}/{h['max_rows']}"),
                    ("total rows", h["total_rows"])])
        if h["short_symbols"]:
            self.table(("symbol", "rows", "first", "last"),
                       [(x["symbol"], x["rows"], x["first_date"], x["last_date"]) for x in h["short_symbols"]])

    def _quality(self, q: dict[str, Any]) -> None:
        self.heading("Quality", q["status"])
        score = q["score"] or {}
        self.pairs([("threshold", q["threshold"]), ("scored", q["scored"]), ("unscored", len(q["unscored"])),
                    ("score min/p05/median/mean/max",
                     "/".join(_cell(score.get(k)) for k in ("min", "p05", "median", "mean", "max"))),
                    ("distribution", ", ".join(f"{k}: {v}" for k, v in q["distribution"].items()))])
        self.table(("component", "mean", "max", "symbols affected"),
                   [(k, v["mean"], v["max"], v["symbols_affected"]) for k, v in q["components"].items()])
        if q["findings"]:
            self.table(("finding", "severity", "symbols"),
                       [(k, v["severity"], v["symbols"]) for k, v in q["findings"].items()])
        if q["below_threshold"]:
            self.table(("symbol", "score", "reason"),
                       [(x["symbol"], x["quality_score"], x["reason"]) for x in q["below_threshold"]])

    def _governance(self, g: dict[str, Any]) -> None:
        self.heading("Governance", g["status"])
        self.pairs([("states", ", ".join(f"{k} {v}" for k, v in g["counts"].items()))])
        if g["not_active"]:
            self.table(("symbol", "state", "reason", "rows", "score"),
                       [(x["symbol"], x["state"], x["reason"], x["rows"], x["quality_score"]) for x in g["not_active"]])
        if g["recent_events"]:
            self.line("recent events:")
            self.table(("when (UTC)", "event", "symbol", "change", "reason"),
                       [((e["ts"] or "")[5:16].replace("T", " "), e["event"], e["symbol"],
                         f"{e['before_state'] or '-'} -> {e['after_state']}" if e["after_state"] else "",
                         e["reason"]) for e in g["recent_events"]][:10])

    def _freshness(self, f: dict[str, Any]) -> None:
        self.heading("Freshness", f["status"])
        self.pairs([("price health", f["price_health"]),
                    ("rule", f"age in sessions: GREEN < {f['yellow_from_sessions']}, "
                             f"YELLOW <= {f['red_beyond_sessions']}, RED beyond"),
                    ("symbols", ", ".join(f"{k} {v}" for k, v in f["counts"].items()))])
        if f["stale_symbols"]:
            self.table(("symbol", "last bar", "expected", "age (sessions)", "health"),
                       [(x["symbol"], x["last_date"], x["expected_last_session"], x["age_sessions"], x["health"])
                        for x in f["stale_symbols"]])

    def _integrity(self, i: dict[str, Any]) -> None:
        self.heading("Integrity", i["status"])
        self.pairs([("quick_check", i["quick_check"]),
                    ("schema version", f"{i['schema_version']} (code {i['code_schema_version']})"),
                    ("data origin", i["data_origin"])])

    def _last_ingest(self, r: dict[str, Any]) -> None:
        self.heading("Last ingest", r["status"])
        if r.get("run_id") is None:
            self.line(r["message"])
            return
        shown = r["run_status"] if r["run_status"] == r["recorded_status"] else \
            f"{r['run_status']}; recorded {r['recorded_status']}"
        items = [("run", f"{r['run_id']} ({r['mode']}, {shown})"),
                 ("finished", r["finished_at"]), ("as-of", r["as_of"]),
                 ("symbols updated", f"{r['symbols_updated']} of {r['symbols_requested']} "
                                     f"({r['symbols_failed']} failed)"),
                 ("rows written", r["rows_written"]),
                 ("providers used", ", ".join(f"{k} {v}" for k, v in r["providers_used"].items()) or "-"),
                 ("verification", r["verification"] or "not verified")]
        if r.get("error"):
            items.append(("error", r["error"]))
        if r["run_status"] == "RUNNING" and r.get("owner"):
            items.append(("running in", r["owner"]))
        for live in r.get("running_now") or []:
            items.append(("running now", f"{live['run_id']} ({live['mode']}, {live['owner']}, "
                                         f"since {live['started_at']})"))
        if r.get("fix"):
            items.append(("fix", r["fix"]))
        fetch = r.get("last_fetch_run")
        if fetch and fetch["run_id"] != r["run_id"]:
            items.append(("last fetch run", f"{fetch['run_id']} ({fetch['mode']}, {fetch['status']}; "
                                            + (", ".join(f"{k} {v}" for k, v in fetch["providers_used"].items())
                                               or "-") + ")"))
        self.pairs(items)


    def _providers(self, p: dict[str, Any]) -> None:
        self.heading("Providers", p["status"])
        if p["health"]:
            self.table(("provider", "requests", "served", "failures", "p50 ms", "p95 ms", "circuit", "entitled"),
                       [(h["provider"], h["requests"], h["successes"],
                         ", ".join(f"{k} {v}" for k, v in h["failures"].items()) or "-", h["p50_ms"], h["p95_ms"],
                         "OPEN" if h["circuit_open"] else "closed",
                         {1: "yes", 0: "NO"}.get(h["entitled"], "-")) for h in p["health"]])
        if p["dead_letters"]:
            self.line(f"dead-lettered symbols (skipped by incremental runs; revive: {p['revive_with']}):")
            self.table(("symbol", "failures", "last error", "last bar", "since"),
                       [(d["symbol"], d["consecutive_failures"], d["last_error_code"], d["last_date"],
                         d["dead_letter_since"]) for d in p["dead_letters"]])
        else:
            self.line("no dead-lettered symbols")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    return str(value)

