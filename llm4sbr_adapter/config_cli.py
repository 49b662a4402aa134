"""Command lines generated from a :class:`~llm4sbr_adapter.config.ConfigBase` subclass.

Each field with ``cli=True`` becomes ``--field-name`` (or the field's ``flag``): ``Literal`` fields get
``choices``, ``bool`` fields ``--x/--no-x``, ``tuple[...]``/``list[...]`` fields ``nargs="+"``, and the help
text, default and choices come from the field. The parsed value sits where argparse would put that
flag (``--aux-weight`` -> ``args.aux_weight``), so configs whose fields share a name but not a flag can
share one parser. Only flags the user typed override the config the command starts from, and a bad
value is reported with the flag's spelling, not the field's name (other fields a message mentions too).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

from .config import ConfigBase, ConfigError, allows_none, base_type, literal_choices

C = TypeVar("C", bound=ConfigBase)


def flag_of(f: dataclasses.Field) -> str:
    """The command-line spelling of a field."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def dest_of(f: dataclasses.Field) -> str:
    """The ``argparse.Namespace`` attribute of a field's flag (what argparse itself derives from the flag)."""
    return flag_of(f).lstrip("-").replace("-", "_")


def cli_fields(cls: type[ConfigBase], skip: Iterable[str] = ()) -> list[dataclasses.Field]:
    """The fields of ``cls`` that have a flag."""
    skipped = set(skip)
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True) and f.name not in skipped]


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type[ConfigBase],
    *,
    skip: Iterable[str] = (),
    defaults: ConfigBase | None = None,
) -> None:
    """Add one flag per field of ``cls`` to ``parser`` (its default shown from ``defaults`` or the field)."""
    hints = typing.get_type_hints(cls)
    for f in cli_fields(cls, skip):
        default = getattr(defaults, f.name) if defaults is not None else _field_default(f)
        parser.add_argument(
            flag_of(f), dest=dest_of(f), default=argparse.SUPPRESS, **_argument(f, hints[f.name], default)
        )


def config_from_args(cls: type[C], args: argparse.Namespace, *, base: C | None = None, **extra: Any) -> C:
    """The config ``base`` (or the defaults) with every flag the user typed, and ``extra``, applied.

    A :class:`ConfigError` is re-raised with flag spellings instead of field names, e.g.
    ``--top-f must be >= 1, got 0`` or ``--contrastive needs --neighbours``.
    """
    given = {f.name: getattr(args, dest_of(f)) for f in cli_fields(cls) if hasattr(args, dest_of(f))}
    given.update(extra)
    try:
        return base.replace(**given) if base is not None else cls(**given)
    except ConfigError as err:
        if err.field is None:
            raise
        raise ConfigError(flag_spelled(cls, str(err)), field=err.field) from None


def flag_spelled(cls: type[ConfigBase], message: str) -> str:
    """``message`` with each ``Cls.field`` of a field that has a flag written as that flag."""
    flags = {f.name: flag_of(f) for f in cli_fields(cls)}

    def spell(match: re.Match) -> str:
        return flags.get(match.group(1), match.group(0))

    return re.sub(rf"\b{re.escape(cls.__name__)}\.(\w+)", spell, message)


def flag_settings(
    source: ConfigBase | type[ConfigBase], args: argparse.Namespace | None = None, *, skip: Iterable[str] = ()
) -> dict[str, Any]:
    """``{namespace attribute: value}`` of every flag of a config: a record of the settings a command ran with.

    ``source`` a config: its (validated) values. ``source`` a config class: the values typed in ``args``, else
    the fields' defaults (for a part of a command that was not built, e.g. an enhancer that is switched off).
    """
    cls = source if isinstance(source, type) else type(source)
    out = {}
    for f in cli_fields(cls, skip):
        if not isinstance(source, type):
            value = getattr(source, f.name)
        else:
            value = getattr(args, dest_of(f)) if args is not None and hasattr(args, dest_of(f)) else _field_default(f)
        out[dest_of(f)] = list(value) if isinstance(value, tuple) else value
    return out


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _argument(f: dataclasses.Field, annotation: Any, default: Any) -> dict[str, Any]:
    """The ``add_argument`` keywords of one field."""
    help_text = f.metadata.get("help", "")
    choices = literal_choices(annotation)
    kind = base_type(annotation)
    shown = "" if default is None or kind is bool else f" (default: {_show(default)})"
    kwargs: dict[str, Any] = {"help": help_text + shown}
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        kwargs["required"] = True
    if f.metadata.get("metavar"):
        kwargs["metavar"] = f.metadata["metavar"]
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
        kwargs["help"] = help_text + (" (default: on)" if default else " (default: off)")
        return kwargs
    if choices is not None:
        kwargs["choices"] = list(choices)
        kwargs["type"] = type(choices[0])
        return kwargs
    origin = typing.get_origin(kind)
    if origin in (tuple, list):
        item = typing.get_args(kind)[0] if typing.get_args(kind) else str
        kwargs["nargs"] = "+"
        kwargs["type"] = item if item in (int, float, str) else str
        return kwargs
    if kind in (int, float):
        kwargs["type"] = kind
    elif allows_none(annotation) and kind is str:
        kwargs["type"] = str
    return kwargs


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value)
    return str(value)
