"""From YAML text and ``key=value`` strings to typed config values, rejected by name.

The half of :mod:`dist_train.config.schema` that reads text: every value is checked against the
type annotation of its dataclass field (``int``, ``float``, ``bool``, ``str``,
``list[int]``, ``dict[str, Any]``, ``Literal[...]``, ``X | None``) so ``optim.lr=abc`` or ``train.epochs=1.5``
is one line naming the key, the expected type and the value, never a traceback later.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from partition.errors import InputError

Sections = Mapping[str, type]


class ConfigError(InputError):
    """A config value that fails a check; ``key`` is its dotted name (``sampler.fanouts``)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


def split_key(key: str, sections: Sections) -> tuple[str, str]:
    """``optim.lr`` -> (``optim``, ``lr``), rejecting unknown sections and keys by name."""
    section, _, name = key.partition(".")
    if section not in sections:
        hint = difflib.get_close_matches(section, list(sections), n=1)
        raise InputError(f"{key}: unknown section {section!r}"
                         + (f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(sections)}"))
    known = [f.name for f in fields(sections[section])]
    if name not in known:
        hint = difflib.get_close_matches(name, known, n=1)
        raise InputError(f"{key}: unknown key" + (f" (did you mean {section}.{hint[0]}?)" if hint
                                                  else f"; keys of {section}: {', '.join(known)}"))
    return section, name


def field_type(key: str, sections: Sections) -> Any:
    section, name = split_key(key, sections)
    return get_type_hints(sections[section])[name]


def read_yaml(path: str, sections: Sections) -> list[tuple[str, Any]]:
    """The (dotted key, typed value) pairs of a YAML config file; every error names the file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise InputError(f"{path}: cannot read config file: {err.strerror}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    return mapping_pairs(data, path, sections)


def mapping_pairs(data: Any, where: str, sections: Sections) -> list[tuple[str, Any]]:
    """The (dotted key, typed value) pairs of ``{section: {key: value}}``; errors name ``where``.

    What a YAML file and the Python API's config dict both go through. Raises InputError.
    """
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a mapping of sections ({', '.join(sections)}), "
                         f"got {type(data).__name__}")
    pairs = []
    for section, body in data.items():
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise InputError(f"{where}: {section}: expected a mapping of keys, got {body!r}")
        for name, value in body.items():
            key = f"{section}.{name}"
            try:
                pairs.append((key, coerce(key, value, field_type(key, sections))))
            except InputError as err:
                raise InputError(f"{where}: {err}") from None
    return pairs


def parse_override(item: str, sections: Sections) -> tuple[str, Any]:
    """``sampler.fanouts=[10,5]`` -> (key, typed value); the value is parsed as YAML."""
    key, eq, raw = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise InputError(f"override {item!r}: expected key=value, e.g. optim.lr=0.003")
    tp = field_type(key, sections)
    if tp is str or (get_origin(tp) in (Union, UnionType) and str in get_args(tp)):
        # paths stay verbatim: YAML would turn "on" into True
        nullable = type(None) in get_args(tp)
        return key, None if nullable and raw.strip() in ("", "null", "~") else raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise InputError(f"{key}: cannot parse value {raw!r}") from None
    return key, coerce(key, value, tp)


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class _Mismatch(Exception):
    pass


def coerce(key: str, value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (ints widen to float), else ConfigError naming key and type."""
    try:
        return _convert(value, tp)
    except _Mismatch:
        raise ConfigError(key, f"expected {type_name(tp)}, got {value!r}") from None


def _to_float(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str) and _NUMBER.fullmatch(v.strip()):
        return float(v)  # PyYAML reads "1e-3" (no dot) as a string
    raise _Mismatch


def _exact(*types: type) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        # bool is an int subclass: True must not pass as train.epochs
        if isinstance(v, types) and (bool in types or not isinstance(v, bool)):
            return v
        raise _Mismatch
    return check


_SCALARS: dict[Any, Callable[[Any], Any]] = {
    bool: _exact(bool), int: _exact(int), str: _exact(str), float: _to_float,
}


def _convert(value: Any, tp: Any) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner)
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise _Mismatch
    if origin is list:
        if not isinstance(value, list):
            raise _Mismatch
        return [_convert(v, args[0]) for v in value]
    if origin is dict:  # keyword arguments passed through to a user's class: any YAML value
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _Mismatch
        return {k: _convert(v, args[1]) for k, v in value.items()}
    if tp is Any:
        return value
    if tp in _SCALARS:
        return _SCALARS[tp](value)
    raise TypeError(f"config field type {tp!r} is not supported by the loader")


def type_name(tp: Any) -> str:
    """Readable name of a field type for messages: ``int or null``, ``a list of int``."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, UnionType):
        return " or ".join("null" if a is type(None) else type_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is list:
        return f"a list of {type_name(args[0])}"
    if origin is dict:
        return "a mapping of names to values, e.g. {heads: 8}"
    return getattr(tp, "__name__", str(tp))
