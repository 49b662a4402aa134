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
import difflib
import json
import math
import numbers
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union

import numpy as np

from . import strict_json
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
    aliases: tuple[str, ...] = (),
    metavar: str | None = None,
    cli: bool = True,
    parse: Callable[[str], Any] | None = None,
    group: str | None = None,
) -> Any:
    """A config field: its default, its help text and simple bounds, all in one place.

    ``minimum``/``maximum`` bound numbers (``exclusive_minimum``/``exclusive_maximum`` make a bound strict);
    ``flag`` overrides the generated ``--field-name`` and ``aliases`` are more spellings of it;
    ``cli=False`` keeps a field out of the command line (values that only Python can supply, such as an
    object); ``parse`` turns text into the value, from the command line or Python (e.g. ``"0/4"`` ->
    ``(0, 4)``; raise ``ValueError`` for bad text); ``group`` names the ``--help`` section of the flag.
    """
    metadata = {
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "exclusive_maximum": exclusive_maximum,
        "flag": flag,
        "aliases": tuple(aliases),
        "metavar": metavar,
        "cli": cli,
        "parse": parse,
        "group": group,
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


def nested_config_type(annotation: Any) -> type | None:
    """The dataclass type of a field that holds a nested settings object (``X`` or ``X | None``), else ``None``."""
    kind = base_type(annotation)
    return kind if isinstance(kind, type) and dataclasses.is_dataclass(kind) else None


def check_number(f: dataclasses.Field, kind: type, value: Any) -> int | float:
    """``value`` as ``kind`` (``int`` or ``float``; numpy scalars too), finite and within the field's bounds;
    ``ValueError`` (the problem) if not."""
    whole = _is_integer(value) or (_is_number(value) and math.isfinite(value) and float(value).is_integer())
    if not (whole if kind is int else _is_number(value)):
        raise ValueError(f"must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    try:
        converted = kind(value)
    except OverflowError:
        raise ValueError(f"must be a finite number, got {value!r}") from None
    if kind is float and _is_integer(value) and converted != value:  # float() would round 2**53 + 1
        raise ValueError(f"{value!r} is not exactly representable as a float; write it as a decimal number")
    value = converted
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    low, high = f.metadata.get("minimum"), f.metadata.get("maximum")
    strict_low, strict_high = f.metadata.get("exclusive_minimum"), f.metadata.get("exclusive_maximum")
    if low is not None and (value <= low if strict_low else value < low):
        raise ValueError(f"must be {'>' if strict_low else '>='} {low}, got {value!r}")
    if high is not None and (value >= high if strict_high else value > high):
        raise ValueError(f"must be {'<' if strict_high else '<='} {high}, got {value!r}")
    return value


def check_fields(obj: Any) -> None:
    """Check (and normalise) every field of the dataclass instance ``obj`` from its type and metadata.

    ``Literal`` choices; ``bool``; finite, bounded ``int``/``float`` (stored as that type); ``str`` (a path
    is kept as text); ``tuple[X, ...]`` (a list becomes a tuple, items checked); text given to a field
    with a ``parse`` function is parsed; a mapping given to a nested settings field is built into that
    dataclass (as :meth:`ConfigBase.load` needs). Raises :class:`ConfigError` naming the field. Works on
    frozen dataclasses too, so a settings class that cannot derive from :class:`ConfigBase` can call it.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = _checked(obj, f, hints[f.name], getattr(obj, f.name))
        if value is not getattr(obj, f.name):
            object.__setattr__(obj, f.name, value)


def _checked(obj: Any, f: dataclasses.Field, annotation: Any, value: Any) -> Any:
    """The checked value of one field (raises :class:`ConfigError` naming it)."""
    if value is None and allows_none(annotation):
        return value
    choices = literal_choices(annotation)
    if choices is not None:
        if value not in choices:
            _fail(obj, f.name, f"must be one of {list(choices)}, got {value!r}")
        return value
    if isinstance(value, str) and f.metadata.get("parse"):
        try:
            value = f.metadata["parse"](value)
        except ValueError as err:
            _fail(obj, f.name, str(err))
    kind = base_type(annotation)
    nested = nested_config_type(annotation)
    if nested is not None and isinstance(value, Mapping):
        try:
            return nested.from_dict(value) if issubclass(nested, ConfigBase) else nested(**value)
        except (TypeError, ValueError) as err:
            _fail(obj, f.name, f"is not a valid {nested.__name__} ({err})")
    if kind is bool:
        if not isinstance(value, (bool, np.bool_)):
            _fail(obj, f.name, f"must be true or false, got {value!r}")
        return bool(value)
    if kind in (int, float):
        try:
            return check_number(f, kind, value)
        except ValueError as err:
            _fail(obj, f.name, str(err))
    if kind is str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            _fail(obj, f.name, f"must be a string, got {value!r}")
    elif typing.get_origin(kind) is tuple:
        return _sequence(obj, f, kind, value)
    return value


def _sequence(obj: Any, f: dataclasses.Field, kind: Any, value: Any) -> tuple:
    """A list or tuple as a tuple, its items checked against ``tuple[X, ...]``'s ``X`` (``tuple[X, X, X]``:
    also its length)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        shown = f"the string {value!r}" if isinstance(value, str) else repr(value)
        _fail(obj, f.name, f"must be a sequence, got {shown}")
    args = typing.get_args(kind)
    if args and Ellipsis not in args and len(value) != len(args):
        _fail(obj, f.name, f"must have {len(args)} items, got {len(value)}")
    item = args[0] if args else Any
    checks = {str: lambda v: isinstance(v, str), int: _is_integer, float: _is_number}
    check = checks.get(item)
    if check is not None:
        bad = [v for v in value if not check(v)]
        if bad:
            _fail(obj, f.name, f"items must be {item.__name__}, got {bad[0]!r}")
        if item in (int, float):
            return tuple(item(v) for v in value)
    return tuple(value)


def check_setting(config: type[ConfigBase], name: str, value: Any) -> Any:
    """``value`` checked (and normalised) against the declaration of field ``name`` of ``config``: its type,
    choices and bounds, exactly as the config checks it. For code that takes one setting on its own (such as
    :meth:`ItemLocalizer.localize`'s ``top_f``), so that the rule stays declared once, in the config; a bad
    value is a :class:`ConfigError` naming ``Config.name``."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    return _checked(config, fields[name], typing.get_type_hints(config)[name], value)


def _fail(obj: Any, name: str, problem: str) -> typing.NoReturn:
    is_config = isinstance(obj, ConfigBase) or (isinstance(obj, type) and issubclass(obj, ConfigBase))
    ref = obj.ref(name) if is_config else f"{type(obj).__name__}.{name}"
    raise ConfigError(f"{ref} {problem}", field=name)


def _is_number(value: Any) -> bool:
    """A real number (numpy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    """An integer (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclasses.dataclass
class ConfigBase:
    """Validated, JSON-serialisable settings; subclasses set ``FORMAT`` and may override :meth:`validate`."""

    FORMAT: ClassVar[str] = "config"
    FORMAT_VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        check_fields(self)
        self.validate()

    def validate(self) -> None:
        """Cross-field rules of a subclass; raise :class:`ConfigError` naming the field."""

    def fail(self, name: str, problem: str) -> typing.NoReturn:
        """Raise a :class:`ConfigError` about field ``name`` (``problem`` may mention others with :meth:`ref`)."""
        _fail(self, name, problem)

    @classmethod
    def ref(cls, name: str) -> str:
        """How a message names field ``name``: ``MyConfig.name`` (a command line shows its flag instead)."""
        return f"{cls.__name__}.{name}"

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
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigError(f"{source}: format_version must be a positive integer, got {version!r}")
        if version > cls.FORMAT_VERSION:
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

    def to_payload(self) -> dict[str, Any]:
        """:meth:`to_dict` with the format name and version: what :meth:`save` writes and :meth:`from_dict` reads."""
        return {"format": self.FORMAT, "format_version": self.FORMAT_VERSION, **self.to_dict()}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as JSON (with its format name and version) atomically; returns the path."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_payload(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls: type[C], path: str | os.PathLike) -> C:
        """Read a config written by :meth:`save`."""
        path = Path(path)
        try:
            raw = strict_json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{cls.__name__} file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a JSON object, got {type(raw).__name__}")
        return cls.from_dict(raw, source=str(path))

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with ``changes`` applied (unknown names are an error)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown {type(self).__name__} settings {unknown}{_suggest(unknown, known)}")
        return dataclasses.replace(self, **changes)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _suggest(unknown: list[str], known: set[str]) -> str:
    """``" (did you mean 'top_f'?)"`` for the first unknown name close to a known one, else ``""``."""
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        if close:
            return f" (did you mean {close[0]!r}?)"
    return ""


def _jsonable(value: Any) -> Any:
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
