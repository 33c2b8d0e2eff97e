"""Typed settings: every default once, a strict loader naming key and file.

Real TOML files through ``load_settings`` (and one through a CLI); a
Hypothesis property over the whole schema: a key path the schema does not
have is refused, a valid override of any numeric setting round-trips.
"""
from __future__ import annotations

import dataclasses
import json
import pickle
import tomllib
from pathlib import Path
from typing import Any, Mapping

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings as hsettings, strategies as st

import ingest_history
import verify_backfill
from core.settings import (DEFAULT_SETTINGS_PATH, VENDOR_QUIRK_KEYS, HistorySettings, ProvidersSettings, Settings,
                           SettingsError, TradingSettings, load_settings)
from core.settings_schema import Table
from trading.config import TradingConfig, load_trading_config


@pytest.fixture(autouse=True)
def _no_env_layers(monkeypatch):
    monkeypatch.delenv("SETTINGS_FILE", raising=False)
    monkeypatch.delenv("PROVIDER_PRIORITY", raising=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def refusal(path: Path) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    return str(caught.value)


def plain(value: Any) -> Any:
    """A settings tree as TOML would spell it (tables as dicts, lists)."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# ------------------------------------------------------------ the defaults
def test_settings_file_restates_every_default():
    """configs/settings.toml restates the defaults it documents, all of them;
    a drift between the two would silently change thresholds."""
    with open(DEFAULT_SETTINGS_PATH, "rb") as fh:
        written = tomllib.load(fh)
    defaults = plain(Settings())
    defaults.pop("source")
    assert written == defaults
    assert load_settings() == dataclasses.replace(Settings(), source=str(DEFAULT_SETTINGS_PATH))
    assert load_settings().quality.accept_threshold == 0.6


def test_keys_that_lived_only_at_call_sites_have_their_defaults_here():
    s = Settings()
    assert s.providers.process_workers == 0 and s.providers.fetch_workers == 2
    assert s.ingest.dead_letter_after_failures == 3
    assert s.governance.score_workers == 0 and s.governance.parallel_from_symbols == 300


def test_trading_defaults_live_in_core_settings():
    assert issubclass(TradingConfig, TradingSettings)
    config = load_trading_config(Settings(), "paper")
    assert {f.name: getattr(config, f.name) for f in dataclasses.fields(TradingSettings)} == \
        dataclasses.asdict(TradingSettings())
    assert config.mode == "paper" and config.live_credentials is None


def test_a_file_overrides_key_by_key(tmp_path):
    loaded = load_settings(write(tmp_path, "[quality.spike_threshold]\nstocks = 0.3\n"
                                           "[quality.halts]\nACME = [[\"2024-03-13\", 2024-03-15]]\n"
                                           "[quality.allowed_missing_sessions]\nXNYS = [2031-01-02]\n"
                                           "[trading]\narima_order = [2, 0, 1]\n"))
    assert loaded.quality.spike_threshold == {**Settings().quality.spike_threshold, "stocks": 0.3}
    assert loaded.quality.halts == {"ACME": (("2024-03-13", "2024-03-15"),)}
    assert loaded.quality.allowed_missing_sessions == {"XNYS": ("2031-01-02",)}
    assert loaded.trading.arima_order == (2, 0, 1)
    assert loaded.history == Settings().history and loaded.source == str(tmp_path / "settings.toml")


def test_env_priority_beats_the_file_and_is_checked(tmp_path, monkeypatch):
    path = write(tmp_path, '[providers]\npriority = ["polygon"]\n')
    assert load_settings(path).providers.priority == ("polygon",)
    monkeypatch.setenv("PROVIDER_PRIORITY", "Alpaca, yahoo")
    assert load_settings(path).providers.priority == ("alpaca", "yahoo")
    monkeypatch.setenv("PROVIDER_PRIORITY", "yahoo,nope")
    assert refusal(path) == ('PROVIDER_PRIORITY: [providers] priority = ["yahoo", "nope"]: '
                             'names unknown provider(s) nope')


def test_settings_are_picklable_for_worker_processes(tmp_path):
    loaded = load_settings(write(tmp_path, "[governance]\nscore_workers = 2\n[quality.halts]\n"
                                           'ACME = [["2024-03-13", "2024-03-15"]]\n'))
    assert pickle.loads(pickle.dumps(loaded)) == loaded


# ------------------------------------------------------------- refusals
@pytest.mark.parametrize("text, message", [
    ("[quality]\nacept_threshold = 0.6\n", "unknown setting [quality] acept_threshold"),
    ("[history]\nrequired_sesions = 1260\n", "unknown setting [history] required_sesions"),
    ("[qualty]\naccept_threshold = 0.6\n", "unknown setting [qualty]"),
    ("accept_threshold = 0.6\n", "unknown setting accept_threshold"),
    ("[quality.false_tick]\nwindw = 9\n", "unknown setting [quality.false_tick] windw"),
    ("[quality.weights]\nspike = 0.3\n", "unknown setting [quality.weights] spike"),
    ("[history.calendars]\nbonds = \"XNYS\"\n", "unknown setting [history.calendars] bonds"),
    ("[providers.capabilities.polygn]\nstocks = true\n", "unknown setting [providers.capabilities] polygn"),
    ("[providers.capabilities.alpaca]\nbonds = true\n", "unknown setting [providers.capabilities.alpaca] bonds"),
    ("[providers.kraken]\nworkers = 1\n", "unknown setting [providers] kraken"),
    ("[providers.yahoo]\nbatch_sise = 5\n", "unknown setting [providers.yahoo] batch_sise"),
    ("[providers.polygon]\ncache_dir = \"/tmp/yf\"\n", "unknown setting [providers.polygon] cache_dir"),
    ("[providers.alpaca]\nrate_limit = [[1, 1.0]]\n", "unknown setting [providers.alpaca] rate_limit"),
    ("[trading]\nmode = \"live\"\n", "unknown setting [trading] mode"),
])
def test_unknown_keys_are_refused_naming_key_and_file(tmp_path, text, message):
    path = write(tmp_path, text)
    assert refusal(path) == f"{path}: {message}"


@pytest.mark.parametrize("text, message", [
    ("[history]\nrequired_sessions = \"x\"\n", '[history] required_sessions = "x": expected an integer'),
    ("[history]\nrequired_sessions = 1260.0\n", "[history] required_sessions = 1260.0: expected an integer"),
    ("[history]\nrequired_sessions = true\n", "[history] required_sessions = true: expected an integer"),
    ("[quality]\naccept_threshold = \"0.6\"\n", '[quality] accept_threshold = "0.6": expected a number'),
    ("[quality]\naccept_threshold = nan\n", "[quality] accept_threshold = nan: expected a number"),
    ("[alerts]\ndry_run = \"yes\"\n", '[alerts] dry_run = "yes": expected true or false'),
    ("quality = 1\n", "quality = 1: expected a table"),
    ("[quality]\nweights = 0.3\n", "[quality] weights = 0.3: expected a table"),
    ("[providers]\npriority = \"yahoo\"\n", '[providers] priority = "yahoo": expected a list of strings'),
    ("[trading]\narima_order = [1, 0]\n", "[trading] arima_order = [1, 0]: expected a list of 3 integers"),
    ("[quality.halts]\nACME = [[\"2024-13-01\", \"2024-12-02\"]]\n",
     '[quality.halts] ACME = [["2024-13-01", "2024-12-02"]]: expected a list of lists of 2 dates (YYYY-MM-DD)'),
    ("[providers.capabilities.alpaca]\nmax_history_days = \"730\"\n",
     '[providers.capabilities.alpaca] max_history_days = "730": expected an integer'),
    ("[providers.yahoo]\nworkers = 2.5\n", "[providers.yahoo] workers = 2.5: expected an integer"),
    ("[providers.yahoo]\ntest_days = \"10\"\n", '[providers.yahoo] test_days = "10": expected an integer'),
    ("[providers.polygon]\nbase_url = 8080\n", "[providers.polygon] base_url = 8080: expected a string"),
    ("[providers.alpaca]\nadjusted_close = \"no\"\n",
     '[providers.alpaca] adjusted_close = "no": expected true or false'),
    ("[providers.alpaca]\ndeadline_seconds = \"30\"\n",
     '[providers.alpaca] deadline_seconds = "30": expected a number'),
    ("[providers.polygon]\nrate_limits = [5, 60.0]\n", "[providers.polygon] rate_limits = [5, 60.0]: "
     "expected a list of [requests, seconds] windows (requests >= 1, seconds > 0)"),
    ("[providers.polygon]\nrate_limits = [[0, 60.0]]\n", "[providers.polygon] rate_limits = [[0, 60.0]]: "
     "expected a list of [requests, seconds] windows (requests >= 1, seconds > 0)"),
])
def test_values_of_the_wrong_type_are_refused_naming_key_and_file(tmp_path, text, message):
    path = write(tmp_path, text)
    assert refusal(path) == f"{path}: {message}"


@pytest.mark.parametrize("text, message", [
    ("[history]\nrequired_sessions = 0\n", "[history] required_sessions = 0: must be >= 1"),
    ("[history]\ndegraded_min_rows = 1300\n",
     "[history] degraded_min_rows = 1300: must be <= required_sessions (1260)"),
    ("[history]\nrequired_sessions = 900\n",
     "[history] degraded_min_rows = 1000: must be <= required_sessions (900)"),
    ("[quality]\naccept_threshold = 1.5\n", "[quality] accept_threshold = 1.5: must be <= 1"),
    ("[quality]\naccept_threshold = -0.1\n", "[quality] accept_threshold = -0.1: must be >= 0"),
    ("[quality.weights]\nduplicate_pct = -0.2\n", "[quality.weights] duplicate_pct = -0.2: must be >= 0"),
    ("[quality.spike_threshold]\nfx = 0\n", "[quality.spike_threshold] fx = 0.0: must be > 0"),
    ("[quality]\nstale_error_sessions = 0\n", "[quality] stale_error_sessions = 0: must be >= 1"),
    ("[quality.halts]\nACME = [[\"2024-03-15\", \"2024-03-13\"]]\n",
     '[quality.halts] ACME = [["2024-03-15", "2024-03-13"]]: each range is [start, end] with start <= end'),
    ("[health]\nfreshness_red_sessions = 1\n",
     "[health] freshness_red_sessions = 1: must be >= freshness_yellow_sessions (2)"),
    ("[cross_check]\nerror_pct = 0.5\n", "[cross_check] error_pct = 0.5: must be >= warn_pct (1.0)"),
    ("[alerts]\nmin_severity = \"loud\"\n",
     '[alerts] min_severity = "loud": must be one of info, warning, error, critical'),
    ("[ingest]\nraw_archive_compresslevel = 10\n", "[ingest] raw_archive_compresslevel = 10: must be <= 9"),
    ("[providers]\npriority = [\"yahoo\", \"nope\"]\n",
     '[providers] priority = ["yahoo", "nope"]: names unknown provider(s) nope'),
    ("[trading]\nvar_level = 1.0\n", "[trading] var_level = 1.0: must be < 1"),
    ("[trading]\narima_order = [1, -1, 1]\n", "[trading] arima_order = [1, -1, 1]: must be >= 0"),
])
def test_invalid_numbers_are_refused_naming_key_and_file(tmp_path, text, message):
    path = write(tmp_path, text)
    assert refusal(path) == f"{path}: {message}"


def test_malformed_and_missing_files_are_refused(tmp_path, monkeypatch):
    path = write(tmp_path, "[quality\naccept_threshold = 0.6\n")
    assert refusal(path).startswith(f"{path}: ")
    monkeypatch.setenv("SETTINGS_FILE", str(tmp_path / "nowhere.toml"))
    with pytest.raises(SettingsError, match="nowhere.toml: settings file not found"):
        load_settings()


def test_tables_built_in_code_are_checked_too():
    with pytest.raises(SettingsError, match=r"\[history\] required_sessions = 0: must be >= 1"):
        HistorySettings(required_sessions=0)
    with pytest.raises(SettingsError, match=r"unknown setting \[providers.yahoo\] batch_sise"):
        ProvidersSettings(yahoo={"batch_sise": 5})
    with pytest.raises(SettingsError, match=r"unknown setting \[trading\] colour"):
        load_trading_config(Settings(), "paper", {}, colour="red")
    assert load_trading_config(Settings(), "paper", {}, max_stale_days=2).max_stale_days == 2


def test_a_malformed_settings_file_is_exit_65_at_the_cli(tmp_path, runtime, monkeypatch):
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    path = write(tmp_path, "[quality]\nacept_threshold = 0.5\n")
    monkeypatch.setenv("SETTINGS_FILE", str(path))
    result = CliRunner().invoke(verify_backfill.main, ["--universe", str(universe)])
    assert result.exit_code == 65
    assert f"{path}: unknown setting [quality] acept_threshold" in result.output


def test_a_vendor_quirk_typo_stops_a_run_that_never_builds_the_vendor(tmp_path, runtime, monkeypatch):
    """``[providers.yahoo] batch_sise`` is refused at load, exit 65, naming
    key and file, even for a synthetic run that never builds Yahoo; nothing
    is written."""
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    path = write(tmp_path, "[providers.yahoo]\nbatch_sise = 5\n")
    monkeypatch.setenv("SETTINGS_FILE", str(path))
    db = tmp_path / "store.db"
    result = CliRunner().invoke(ingest_history.main, ["--universe", str(universe), "--provider", "synthetic",
                                                      "--db", str(db)])
    assert result.exit_code == 65
    assert f"{path}: unknown setting [providers.yahoo] batch_sise" in result.output
    assert not db.exists()


def test_vendor_quirk_tables_take_every_key_of_their_vendor(tmp_path):
    """A vendor's table may set a key its default omits (Yahoo's cache
    directory, Alpaca's adjusted closes), typed by the schema."""
    loaded = load_settings(write(tmp_path, '[providers.yahoo]\ncache_dir = "/tmp/yf"\ncircuit_breaker_failures = 3\n'
                                           "[providers.alpaca]\nadjusted_close = false\ndeadline_seconds = 12\n"
                                           "[providers.polygon]\nrate_limits = [[5, 60], [100, 3600.0]]\n"))
    assert loaded.providers.quirks("yahoo")["cache_dir"] == "/tmp/yf"
    assert loaded.providers.quirks("yahoo")["circuit_breaker_failures"] == 3
    assert loaded.providers.quirks("alpaca")["adjusted_close"] is False
    assert loaded.providers.quirks("alpaca")["deadline_seconds"] == 12.0
    assert loaded.providers.quirks("polygon")["rate_limits"] == [[5, 60], [100, 3600.0]]
    assert loaded.providers.quirks("polygon")["batch_size"] == Settings().providers.quirks("polygon")["batch_size"]
    assert set(VENDOR_QUIRK_KEYS) == {"yahoo", "polygon", "alpaca"}


# ------------------------------------------------------ over the schema
def fixed_tables() -> list[tuple[tuple[str, ...], set[str]]]:
    """Every table whose keys are fixed, with its keys (the root's are the tables)."""
    out: list[tuple[tuple[str, ...], set[str]]] = []

    def mapping(path, value):
        out.append((path, set(value)))
        for key, inner in value.items():
            if isinstance(inner, Mapping):
                mapping(path + (key,), inner)

    def table(path, value):
        out.append((path, {f.name for f in dataclasses.fields(value)}))
        for f in dataclasses.fields(value):
            inner = getattr(value, f.name)
            if isinstance(inner, Table):
                table(path + (f.name,), inner)
            elif isinstance(inner, Mapping) and "keys" in f.metadata:
                out.append((path + (f.name,), set(f.metadata["keys"])))
            elif isinstance(inner, Mapping) and not f.metadata.get("open"):
                mapping(path + (f.name,), inner)

    defaults = Settings()
    out.append(((), {f.name for f in dataclasses.fields(defaults)} - {"source"}))
    for f in dataclasses.fields(defaults):
        if f.name != "source":
            table((f.name,), getattr(defaults, f.name))
    return out


def numeric_settings() -> list[tuple[tuple[str, ...], type, Mapping[str, Any]]]:
    """(path, int or float, declared range) of every numeric setting."""
    out = []

    def table(path, value):
        for f in dataclasses.fields(value):
            inner = getattr(value, f.name)
            if isinstance(inner, Table):
                table(path + (f.name,), inner)
            elif type(inner) in (int, float):
                out.append((path + (f.name,), type(inner), f.metadata))
            elif (isinstance(inner, Mapping) and not f.metadata.get("open")
                  and all(type(v) in (int, float) for v in inner.values())):
                out.extend((path + (f.name, k), type(v), f.metadata) for k, v in inner.items())

    for f in dataclasses.fields(Settings):
        if f.name != "source":
            table((f.name,), getattr(Settings(), f.name))
    return out


FIXED = fixed_tables()
NUMERIC = numeric_settings()
# Keys tied to another (``_check_relations``): the drawn value must keep the
# relation with the other key's default.
RELATIONS = {
    ("history", "degraded_min_rows"): ("<=", ("history", "required_sessions")),
    ("history", "required_sessions"): (">=", ("history", "degraded_min_rows")),
    ("quality", "stale_warn_sessions"): ("<=", ("quality", "stale_error_sessions")),
    ("quality", "stale_error_sessions"): (">=", ("quality", "stale_warn_sessions")),
    ("cross_check", "warn_pct"): ("<=", ("cross_check", "error_pct")),
    ("cross_check", "error_pct"): (">=", ("cross_check", "warn_pct")),
    ("health", "freshness_yellow_sessions"): ("<=", ("health", "freshness_red_sessions")),
    ("health", "freshness_red_sessions"): (">=", ("health", "freshness_yellow_sessions")),
}


def value_at(settings: Settings, path: tuple[str, ...]) -> Any:
    node: Any = settings
    for part in path:
        node = node[part] if isinstance(node, Mapping) else getattr(node, part)
    return node


def in_range(kind: type, rules: Mapping[str, Any]) -> st.SearchStrategy:
    if kind is int:
        low = rules["ge"] if "ge" in rules else rules["gt"] + 1
        high = rules["le"] if "le" in rules else rules["lt"] - 1 if "lt" in rules else 10**9
        return st.integers(int(low), int(high))
    low = rules.get("ge", rules.get("gt"))
    high = rules.get("le", rules.get("lt", 1e9))
    return st.floats(low, high, exclude_min="gt" in rules, exclude_max="lt" in rules, allow_nan=False)


unknown_name = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(FIXED), name=unknown_name)
def test_any_key_path_not_in_the_schema_is_refused(tmp_path, table, name):
    path, known = table
    assume(name not in known)
    if path:
        text, message = f"[{'.'.join(path)}]\n{name} = 1\n", f"unknown setting [{'.'.join(path)}] {name}"
    else:
        text, message = f"[{name}]\nx = 1\n", f"unknown setting [{name}]"
    file = write(tmp_path, text)
    assert refusal(file) == f"{file}: {message}"


@st.composite
def numeric_override(draw):
    path, kind, rules = draw(st.sampled_from(NUMERIC))
    return path, draw(in_range(kind, rules))


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(override=numeric_override())
def test_any_valid_numeric_override_round_trips(tmp_path, override):
    path, value = override
    if path in RELATIONS:
        op, other = RELATIONS[path]
        partner = value_at(Settings(), other)
        assume(value <= partner if op == "<=" else value >= partner)
    file = write(tmp_path, f"[{'.'.join(path[:-1])}]\n{path[-1]} = {value!r}\n")
    loaded = load_settings(file)
    assert value_at(loaded, path) == value
    assert type(value_at(loaded, path)) is type(value_at(Settings(), path))
