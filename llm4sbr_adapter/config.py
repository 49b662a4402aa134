"""The one config base: every setting of a stage is a field of a dataclass derived from :class:`ConfigBase`.

A field is declared once, with :func:`setting` (default + help text in the field metadata, as PEFT's
``LoraConfig`` does); choices are ``Literal`` types and are checked on construction; ``save``/``load``
write JSON with a format name and version, and an unknown key is a clear error. The command line of a
stage is generated from the same fields (:mod:`llm4sbr_adapter.config_cli`), so a flag, its default, its
choices and its help cannot drift from the Python API.

    @dataclass
    class MyConfig(ConfigBase):
        FORMAT: ClassVar[str] = "my_config"
        width: int = setting(64, "hidden width", minimum=1)
        mode: Literal["fast", "exact"] = setting("exact", "how to search")
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union

import numpy as np

from .atomic_files import atomic_write_text
from .errors import Llm4sbrError

C = TypeVar("C", bound="ConfigBase")

_MISSING: Any = dataclasses.MISSING


class ConfigError(Llm4sbrError, ValueError):
    """A setting has a bad value; ``field`` names it (the CLI turns it into the flag the user typed)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def setting(
    default: Any = _MISSING,
    help: str = "",
    *,
    default_factory: Any = _MISSING,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    flag: str | None = None,
    metavar: str | None = None,
    cli: bool = True,
) -> Any:
    """A config field: its default, its help text and simple bounds, all in one place.

    ``minimum``/``maximum`` bound numbers (``exclusive_minimum``/``exclusive_maximum`` make a bound strict);
    ``flag`` overrides the generated ``--field-name``; ``cli=False`` keeps a field out of the command line
    (values that only Python can supply, such as an object).
    """
    metadata = {
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "exclusive_maximum": exclusive_maximum,
        "flag": flag,
        "metavar": metavar,
        "cli": cli,
    }
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal[...]`` (also inside ``Optional``), or ``None``."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = literal_choices(arg)
            if found is not None:
                return found
    return None


def allows_none(annotation: Any) -> bool:
    """Whether ``None`` is a valid value of ``annotation`` (``X | None``)."""
    return typing.get_origin(annotation) in (Union, types.UnionType) and type(None) in typing.get_args(annotation)


def base_type(annotation: Any) -> Any:
    """``int`` for ``int | None``; the annotation itself otherwise."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


@dataclasses.dataclass
class ConfigBase:
    """Validated, JSON-serialisable settings; subclasses set ``FORMAT`` and may override :meth:`validate`."""

    FORMAT: ClassVar[str] = "config"
    FORMAT_VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            self._check_field(f, hints[f.name])
        self.validate()

    def validate(self) -> None:
        """Cross-field rules of a subclass; raise :class:`ConfigError` naming the field."""

    # ---- field checks -------------------------------------------------------------------
    def fail(self, name: str, problem: str) -> typing.NoReturn:
        """Raise a :class:`ConfigError` about field ``name`` (``problem`` may mention others with :meth:`ref`)."""
        raise ConfigError(f"{self.ref(name)} {problem}", field=name)

    @classmethod
    def ref(cls, name: str) -> str:
        """How a message names field ``name``: ``MyConfig.name`` (a command line shows its flag instead)."""
        return f"{cls.__name__}.{name}"

    def _check_field(self, f: dataclasses.Field, annotation: Any) -> None:
        value = getattr(self, f.name)
        if value is None and allows_none(annotation):
            return
        choices = literal_choices(annotation)
        if choices is not None:
            if value not in choices:
                self.fail(f.name, f"must be one of {list(choices)}, got {value!r}")
            return
        kind = base_type(annotation)
        if kind is bool:
            if not isinstance(value, (bool, np.bool_)):
                self.fail(f.name, f"must be true or false, got {value!r}")
            setattr(self, f.name, bool(value))
        elif kind in (int, float):
            setattr(self, f.name, self._number(f, kind, value))
        elif kind is str:
            if not isinstance(value, str):
                self.fail(f.name, f"must be a string, got {value!r}")
        elif typing.get_origin(kind) is tuple:
            setattr(self, f.name, self._sequence(f, kind, value))

    def _sequence(self, f: dataclasses.Field, kind: Any, value: Any) -> tuple:
        """A list or tuple as a tuple, its items checked against ``tuple[X, ...]``'s ``X``."""
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            shown = f"the string {value!r}" if isinstance(value, str) else repr(value)
            self.fail(f.name, f"must be a sequence, got {shown}")
        item = typing.get_args(kind)[0] if typing.get_args(kind) else Any
        checks = {str: lambda v: isinstance(v, str), int: _is_integer, float: _is_number}
        check = checks.get(item)
        if check is not None:
            bad = [v for v in value if not check(v)]
            if bad:
                self.fail(f.name, f"items must be {item.__name__}, got {bad[0]!r}")
            if item in (int, float):
                return tuple(item(v) for v in value)
        return tuple(value)

    def _number(self, f: dataclasses.Field, kind: type, value: Any) -> int | float:
        whole = _is_integer(value) or (_is_number(value) and float(value).is_integer())
        ok = whole if kind is int else _is_number(value)
        if not ok:
            self.fail(f.name, f"must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        value = kind(value)
        if not math.isfinite(value):
            self.fail(f.name, f"must be a finite number, got {value!r}")
        low, high = f.metadata.get("minimum"), f.metadata.get("maximum")
        if low is not None and (value <= low if f.metadata.get("exclusive_minimum") else value < low):
            self.fail(f.name, f"must be {'>' if f.metadata.get('exclusive_minimum') else '>='} {low}, got {value!r}")
        if high is not None and (value >= high if f.metadata.get("exclusive_maximum") else value > high):
            self.fail(f.name, f"must be {'<' if f.metadata.get('exclusive_maximum') else '<='} {high}, got {value!r}")
        return value

    # ---- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists, paths strings)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any], *, source: str = "<dict>") -> C:
        """Inverse of :meth:`to_dict`; accepts and checks the file keys ``format``/``format_version``."""
        data = dict(data)
        fmt = data.pop("format", cls.FORMAT)
        version = data.pop("format_version", cls.FORMAT_VERSION)
        if fmt != cls.FORMAT:
            raise ConfigError(f"{source}: not a {cls.FORMAT} file (format={fmt!r})")
        if int(version) > cls.FORMAT_VERSION:
            raise ConfigError(
                f"{source}: {cls.FORMAT} format_version {version} is newer than this library reads "
                f"({cls.FORMAT_VERSION})"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown {cls.__name__} fields {unknown} (known: {sorted(known)})")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data and _required(f)]
        if missing:
            raise ConfigError(f"{source}: {cls.__name__} field {missing[0]!r} is missing", field=missing[0])
        try:
            return cls(**data)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}", field=err.field) from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as JSON (with its format name and version) atomically; returns the path."""
        payload = {"format": self.FORMAT, "format_version": self.FORMAT_VERSION, **self.to_dict()}
        path = Path(path)
        atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls: type[C], path: str | os.PathLike) -> C:
        """Read a config written by :meth:`save`."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{cls.__name__} file not found: {path}") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a JSON object, got {type(raw).__name__}")
        return cls.from_dict(raw, source=str(path))

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with ``changes`` applied (unknown names are an error)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown {type(self).__name__} settings {unknown}")
        return dataclasses.replace(self, **changes)


def _is_number(value: Any) -> bool:
    """A real number (numpy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    """An integer (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
