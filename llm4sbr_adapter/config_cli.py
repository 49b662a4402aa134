"""Command lines generated from a :class:`~llm4sbr_adapter.config.ConfigBase` subclass.

Each field with ``cli=True`` becomes ``--field-name`` (or the field's ``flag``): ``Literal`` fields get
``choices``, ``bool`` fields ``--x/--no-x``, ``tuple[...]``/``list[...]`` fields ``nargs="+"``, and the help
text, default and choices come from the field; a nested settings dataclass contributes its own fields'
flags. The parsed value sits where argparse would put that flag (``--aux-weight`` -> ``args.aux_weight``),
so configs whose fields share a name but not a flag can share one parser. Only flags the user typed
override the config the command starts from, and a bad value is reported with the flag's spelling, not
the field's name (other fields a message mentions too).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

from .config import ConfigBase, ConfigError, allows_none, base_type, check_number, literal_choices, nested_config_type

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


class Flag(NamedTuple):
    """One flag of a config: the field's path (``outer.inner`` inside a nested settings dataclass), the
    field, its annotation, its ``--help`` group and the class that declares it."""

    path: str
    field: dataclasses.Field
    annotation: Any
    group: str | None
    owner: type


def flag_fields(cls: type, skip: Iterable[str] = ()) -> list[Flag]:
    """Every flag of ``cls``. A nested settings dataclass (e.g. a generation config inside a build config)
    contributes its own fields, listed in the outer field's group unless they name their own."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in cli_fields(cls, skip):
        group = f.metadata.get("group")
        nested = nested_config_type(hints[f.name])
        if nested is not None:
            out += [x._replace(path=f"{f.name}.{x.path}", group=x.group or group) for x in flag_fields(nested)]
        else:
            out.append(Flag(f.name, f, hints[f.name], group, cls))
    return out


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type[ConfigBase],
    *,
    skip: Iterable[str] = (),
    defaults: ConfigBase | None = None,
) -> None:
    """Add one flag per field of ``cls`` to ``parser`` (its default shown from ``defaults`` or the field).

    Fields with a ``group`` are listed under that heading of ``--help`` (a parser only; into a group,
    every flag goes there). Bounds and ``parse`` are applied while parsing, so a bad value is a usage
    error naming the flag.
    """
    for flag in flag_fields(cls, skip):
        default = _lookup(defaults, flag.path) if defaults is not None else _dotted_default(cls, flag.path)
        target = parser
        if flag.group and isinstance(parser, argparse.ArgumentParser):
            target = argument_group(parser, flag.group)
        kwargs = _argument(flag.field, flag.annotation, default)
        spellings = (flag_of(flag.field), *flag.field.metadata.get("aliases", ()))
        target.add_argument(*spellings, dest=dest_of(flag.field), default=argparse.SUPPRESS, **kwargs)


def argument_group(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """The ``--help`` section ``title`` of ``parser``, made if it has none yet (hand-written flags can join it)."""
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title)


def config_from_args(cls: type[C], args: argparse.Namespace, *, base: C | None = None, **extra: Any) -> C:
    """The config ``base`` (or the defaults) with every flag the user typed, and ``extra``, applied.

    A :class:`ConfigError` is re-raised with flag spellings instead of field names, e.g.
    ``--top-f must be >= 1, got 0`` or ``--contrastive needs --neighbours``.
    """
    given: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for flag in flag_fields(cls):
        if hasattr(args, dest_of(flag.field)):
            outer, _, inner = flag.path.partition(".")
            value = getattr(args, dest_of(flag.field))
            if inner:
                nested.setdefault(outer, {})[inner] = value
            else:
                given[outer] = value
    try:
        for outer, values in nested.items():  # inside the try: a nested config's own rule names the flag too
            start = getattr(base, outer) if base is not None else _dotted_default(cls, outer)
            given[outer] = dataclasses.replace(start, **values)
        given.update(extra)
        return base.replace(**given) if base is not None else cls(**given)
    except ConfigError as err:
        if err.field is None:
            raise
        raise ConfigError(flag_spelled(cls, str(err)), field=err.field) from None


def hint_flags(cls: type[ConfigBase]) -> dict[str, str]:
    """``{field name: flag}`` of every flag of ``cls`` (a nested field by its own name), for
    :func:`~llm4sbr_adapter.errors.flag_spelling`; plus the config's ``HINT_ALIASES`` ``{setting: field}``:
    a library setting that one of this command's flags sets under another name (prepare_data's
    ``--encoding`` sets what a build calls ``sessions_encoding``)."""
    flags = {x.field.name: flag_of(x.field) for x in flag_fields(cls)}
    for name, field_name in getattr(cls, "HINT_ALIASES", {}).items():
        flags[name] = flags[field_name]
    return flags


def flag_spelled(cls: type[ConfigBase], message: str) -> str:
    """``message`` with each ``Cls.field`` of a field that has a flag (nested ones too) written as that flag."""
    flags = {f"{x.owner.__name__}.{x.field.name}": flag_of(x.field) for x in flag_fields(cls)}
    return re.sub(r"\b\w+\.\w+\b", lambda m: flags.get(m.group(0), m.group(0)), message)


def flag_settings(
    source: ConfigBase | type[ConfigBase], args: argparse.Namespace | None = None, *, skip: Iterable[str] = ()
) -> dict[str, Any]:
    """``{namespace attribute: value}`` of every flag of a config: a record of the settings a command ran with.

    ``source`` a config: its (validated) values. ``source`` a config class: the values typed in ``args``, else
    the fields' defaults (for a part of a command that was not built, e.g. an enhancer that is switched off).
    """
    cls = source if isinstance(source, type) else type(source)
    out = {}
    for flag in flag_fields(cls, skip):
        dest = dest_of(flag.field)
        if not isinstance(source, type):
            value = _lookup(source, flag.path)
        elif args is not None and hasattr(args, dest):
            value = getattr(args, dest)
        else:
            value = _dotted_default(cls, flag.path)
        out[dest] = list(value) if isinstance(value, tuple) else value
    return out


def _lookup(obj: Any, dest: str) -> Any:
    for part in dest.split("."):
        obj = getattr(obj, part)
    return obj


def _dotted_default(cls: type, dest: str) -> Any:
    """The declared default of field ``dest`` (``outer.inner`` for a nested field)."""
    outer, _, inner = dest.partition(".")
    f = next(f for f in dataclasses.fields(cls) if f.name == outer)
    value = _field_default(f)
    return _lookup(value, inner) if inner else value


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
    kwargs["metavar"] = f.metadata.get("metavar") or (None if choices or kind is bool else f.name.upper())
    if kwargs["metavar"] is None:
        del kwargs["metavar"]
    if f.metadata.get("parse"):
        kwargs["type"] = _argparse_type(f.metadata["parse"], f.name)
        return kwargs
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
        args = typing.get_args(kind)
        item = args[0] if args else str
        fixed = origin is tuple and bool(args) and Ellipsis not in args  # tuple[float, float, float]: 3 values
        kwargs["nargs"] = len(args) if fixed else "+"
        if fixed and " " in kwargs.get("metavar", ""):
            kwargs["metavar"] = tuple(kwargs["metavar"].split())  # one name per value
        if not fixed:
            kwargs["action"] = "extend"  # a repeated flag adds to the list: --store A --store B == --store A B
        kwargs["type"] = item if item in (int, float, str) else str
        return kwargs
    if kind in (int, float):
        kwargs["type"] = _argparse_type(lambda text: check_number(f, kind, kind(text)), kind.__name__)
    elif allows_none(annotation) and kind is str:
        kwargs["type"] = str
    return kwargs


def _argparse_type(parse: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """``parse`` as an argparse ``type``: its ``ValueError`` message becomes the usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            message = str(err)
            if name in ("int", "float") and message.startswith(("invalid literal", "could not convert")):
                message = f"expected {'an integer' if name == 'int' else 'a number'}, got {text!r}"
            raise argparse.ArgumentTypeError(message) from None

    convert.__name__ = name
    return convert


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value)
    return str(value)
