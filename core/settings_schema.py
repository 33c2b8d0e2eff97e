"""How a settings table is declared, parsed from TOML and checked.

A table is a frozen dataclass deriving :class:`Table`; each field is a
:func:`setting` with its default and its valid range.  :func:`parse_table`
reads one TOML table over a table's current values with the types the
fields declare; every problem is a :class:`SettingsError` of one line
naming the table and key.  ``core.settings`` declares the tables.
"""
from __future__ import annotations

import collections.abc
import copy
import datetime as dt
import json
import math
import typing
from dataclasses import field, fields, replace
from functools import lru_cache
from typing import Any, ClassVar, Mapping, NewType

from core.errors import MalformedInputError

IsoDate = NewType("IsoDate", str)          # a calendar date, "YYYY-MM-DD"
# Request windows a vendor enforces, [[requests, seconds], ...]; every
# window holds at once (see :func:`is_rate_limits`).
RateLimits = NewType("RateLimits", list)


def is_rate_limits(value: Any) -> bool:
    """Whether ``value`` is a list of ``[requests, seconds]`` windows, each
    with requests >= 1 and seconds > 0."""
    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    return isinstance(value, (list, tuple)) and all(
        isinstance(w, (list, tuple)) and len(w) == 2 and number(w[0]) and number(w[1]) and w[0] >= 1 and w[1] > 0
        for w in value)


class SettingsError(MalformedInputError):
    """The settings file cannot be read, or holds an unknown key, a value of
    the wrong type or an invalid number (one line naming the key and file):
    fix the file."""


def setting(default: Any, **rules: Any) -> Any:
    """A field with its default and its valid range: ``ge``/``gt``/``le``/``lt``
    bound a number (or each value of a table, each item of a list);
    ``choices`` lists the allowed strings; ``open=True`` lets a table take
    keys its default does not have (otherwise its keys are fixed);
    ``keys`` (name -> type) gives a table's every key and the type of its
    value, whether its default has the key or not."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=rules)
    return field(default=default, metadata=rules)


class Table:
    """Base of every table: checks each field's declared range and the
    table's relations whenever it is built (from a file or in code)."""

    TABLE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_range(self.TABLE, f.name, getattr(self, f.name), f.metadata)
        self._check_relations()

    def _check_relations(self) -> None:
        """Rules that tie two keys of the table together."""

    def _require(self, ok: bool, key: str, rule: str) -> None:
        if not ok:
            raise SettingsError(f"[{self.TABLE}] {key} = {show(getattr(self, key))}: {rule}")


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def parse_table(cls: type[Table], raw: Mapping[str, Any], current: Table) -> Table:
    """``current`` with the keys of ``raw`` parsed over it."""
    known = {f.name: f for f in fields(cls)}
    changes = {}
    for key, value in raw.items():
        if key not in known:
            raise SettingsError(f"unknown setting [{cls.TABLE}] {key}")
        changes[key] = _parse(value, _hints(cls)[key], getattr(current, key), cls.TABLE, key,
                              known[key].metadata)
    return replace(current, **changes)


def _parse(raw: Any, hint: Any, current: Any, table: str, key: str, rules: Mapping[str, Any]) -> Any:
    """``raw`` (from TOML) as ``hint``, merged over ``current`` for tables."""
    if isinstance(hint, type) and issubclass(hint, Table):
        if not isinstance(raw, dict):
            raise _wrong_type(table, key, raw, hint)
        return parse_table(hint, raw, current)
    origin = typing.get_origin(hint)
    if origin is collections.abc.Mapping:
        if not isinstance(raw, dict):
            raise _wrong_type(table, key, raw, hint)
        value_hint = typing.get_args(hint)[1]
        keys = rules.get("keys")
        merged = copy.deepcopy(dict(current))
        for name, value in raw.items():
            known = name in keys if keys is not None else name in merged or rules.get("open")
            if not known:
                raise SettingsError(f"unknown setting [{table}.{key}] {name}")
            merged[name] = _parse(value, value_hint if keys is None else keys[name], merged.get(name),
                                  f"{table}.{key}", name, {})
        return merged
    if hint is Any:    # an open table's value: typed by the default it replaces, if any
        if current is None:
            return copy.deepcopy(raw)
        hint = type(current) if isinstance(current, (bool, int, float, str)) else list
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(raw, (list, tuple)):
            raise _wrong_type(table, key, raw, hint)
        items = args[:1] * len(raw) if len(args) == 2 and args[1] is Ellipsis else args
        if len(raw) != len(items):
            raise _wrong_type(table, key, raw, hint)
        try:
            return tuple(_parse(v, h, None, table, key, {}) for v, h in zip(raw, items))
        except SettingsError:
            raise _wrong_type(table, key, raw, hint) from None
    return _scalar(raw, hint, table, key)


def _scalar(raw: Any, hint: Any, table: str, key: str) -> Any:
    if hint is bool and isinstance(raw, bool):
        return raw
    if hint is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if (hint is float and isinstance(raw, (int, float)) and not isinstance(raw, bool)
            and math.isfinite(raw)):
        return float(raw)
    if hint is str and isinstance(raw, str):
        return raw
    if hint is list and isinstance(raw, list):
        return copy.deepcopy(raw)
    if hint is RateLimits and isinstance(raw, list) and is_rate_limits(raw):
        return copy.deepcopy(raw)
    if hint is IsoDate:
        if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
            return raw.isoformat()
        if isinstance(raw, str):
            try:
                return dt.date.fromisoformat(raw).isoformat()
            except ValueError:
                pass
    raise _wrong_type(table, key, raw, hint)


_WORDS = {bool: ("true or false", "booleans"), int: ("an integer", "integers"), float: ("a number", "numbers"),
          str: ("a string", "strings"), list: ("a list", "lists"),
          IsoDate: ("a date (YYYY-MM-DD)", "dates (YYYY-MM-DD)"),
          RateLimits: ("a list of [requests, seconds] windows (requests >= 1, seconds > 0)",
                       "lists of [requests, seconds] windows (requests >= 1, seconds > 0)")}


def _describe(hint: Any, plural: bool = False) -> str:
    if hint in _WORDS:
        return _WORDS[hint][plural]
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        items = (_describe(args[0], True) if len(args) == 2 and args[1] is Ellipsis
                 else f"{len(args)} {_describe(args[0], True)}")
        return f"{'lists' if plural else 'a list'} of {items}"
    return "tables" if plural else "a table"


def _wrong_type(table: str, key: str, raw: Any, hint: Any) -> SettingsError:
    return SettingsError(f"[{table}] {key} = {show(raw)}: expected {_describe(hint)}")


def _check_range(table: str, key: str, value: Any, rules: Mapping[str, Any]) -> None:
    """Raise when ``value`` (each value of a table, each item of a list)
    breaks a declared rule."""
    if isinstance(value, Mapping):
        unknown = [name for name in value if name not in rules.get("keys", value)]
        if unknown:
            raise SettingsError(f"unknown setting [{table}.{key}] {unknown[0]}")
        inner = {k: v for k, v in rules.items() if k not in ("open", "keys")}
        for name, item in value.items():
            _check_range(f"{table}.{key}", name, item, inner)
        return
    for item in (value if isinstance(value, tuple) else (value,)):
        for rule, text in _RULES:
            if rule in rules and not _holds(rule, item, rules[rule]):
                bound = ", ".join(rules[rule]) if rule == "choices" else show(rules[rule])
                raise SettingsError(f"[{table}] {key} = {show(value)}: {text.format(bound)}")


_RULES = (("ge", "must be >= {}"), ("gt", "must be > {}"), ("le", "must be <= {}"), ("lt", "must be < {}"),
          ("choices", "must be one of {}"))


def _holds(rule: str, value: Any, bound: Any) -> bool:
    if rule == "choices":
        return value in bound
    return bool({"ge": value >= bound, "gt": value > bound, "le": value <= bound, "lt": value < bound}[rule])


def show(value: Any) -> str:
    """A value as the settings file would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {show(v)}" for k, v in value.items()) + " }"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
