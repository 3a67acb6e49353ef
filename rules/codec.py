"""JSON-ready conversion of the rules' frozen dataclasses, driven by their type hints.

Only the shapes the rules use are supported: None, bool, int, float, str, enums, date, time,
datetime (ISO 8601), tuples, frozensets, string-keyed mappings, unions with None and nested
dataclasses. Anything else is a programming error and raises `TypeError`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime, time
from functools import cache
from typing import Any, TypeVar, cast

T = TypeVar("T")
_SCALARS = (bool, int, float, str)


def encode(value: object) -> Any:  # noqa: PLR0911 - one branch per supported shape
    """Turn a rules value into JSON-compatible lists, dicts and scalars."""
    if value is None or (isinstance(value, _SCALARS) and not isinstance(value, enum.Enum)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, frozenset):
        return sorted((encode(v) for v in value), key=repr)  # sorted: stable JSON
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__}")


def decode(kind: type[T], data: Any) -> T:
    """Rebuild a value of type `kind` from what `encode` produced.

    Raises:
        TypeError: `kind` uses a shape this codec does not support.
        ValueError: `data` does not fit `kind`.
    """
    return cast(T, _decode(kind, data))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(kind: Any, data: Any) -> Any:  # noqa: PLR0911 - one branch per supported shape
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        return None if data is None else _decode(next(a for a in args if a is not type(None)), data)
    if origin is not None:
        return _decode_generic(origin, args, data)
    if kind is Any or kind in _SCALARS:
        return data
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(data)
    if kind is datetime:
        return datetime.fromisoformat(data)
    if kind is date:
        return date.fromisoformat(data)
    if kind is time:
        return time.fromisoformat(data)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{name: _decode(hints[name], value) for name, value in data.items()})
    raise TypeError(f"cannot decode {kind!r}")


def _decode_generic(origin: Any, args: tuple[Any, ...], data: Any) -> Any:
    if origin in (Mapping, dict, typing.Mapping):
        return {k: _decode(args[1], v) for k, v in data.items()}
    if origin is frozenset:
        return frozenset(_decode(args[0], v) for v in data)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in data)
        if len(args) != len(data):
            raise ValueError(f"expected {len(args)} items, got {len(data)}")
        return tuple(_decode(a, v) for a, v in zip(args, data, strict=True))
    raise TypeError(f"cannot decode {origin!r}")
