"""Prompt perspectives, rendering and answer cleaning for stage one.

A :class:`Perspective` is one view of a session the LLM is asked about: a name (used in the store's
tensor names), a qualifier inserted into the request ("long term", "short term") and a template with
two placeholders, ``{items}`` (the session's items, one ``Title_ItemID`` per line, numbered, oldest
first) and ``{qualifier}``. ``last_n`` limits a perspective to the session's most recent items.

Defaults (:data:`DEFAULT_PERSPECTIVES`), the paper's (LLM4SBR Section 3.2, and the authors' released
scripts): both views show the same item listing and differ only in the qualifier,

* ``long``  -- qualifier "long term", the whole session (after truncation to ``max_items``);
* ``short`` -- qualifier "short term", the same listing.

The qualifier comes after the listing, so the two prompts of a session share everything up to it: a
backend that reuses a prompt prefix (llama.cpp, vLLM, the transformers backend) reads the listing once.
:data:`PERSPECTIVE_PRESETS` also names ``short_last5``, our earlier short view (stored as ``short``)
that shows only the last :data:`SHORT_TERM_ITEMS` (= 5) items; choose it with
``named_perspectives("long,short_last5")`` (CLI ``--perspectives long,short_last5``).

Very long sessions are truncated to their most recent ``max_items`` items (default
:data:`DEFAULT_MAX_ITEMS` = 50) before any perspective's ``last_n`` applies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from .. import strict_json
from ..errors import Llm4sbrError, setting_hint
from .inputs.catalogue import Catalogue
from .inputs.ids import ItemId, item_key
from .inputs.text import InputFormatError

__all__ = [
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_PERSPECTIVES",
    "DEFAULT_TEMPLATE",
    "Perspective",
    "PromptError",
    "SHORT_TERM_ITEMS",
    "CANDIDATES_TEMPLATE",
    "UNSEEN_TEMPLATE",
    "uses_candidates",
    "clean_answer",
    "item_lines",
    "load_perspectives",
    "is_perspectives_file",
    "named_perspectives",
    "resolve_perspectives",
    "PERSPECTIVE_PRESETS",
    "prompt_sha256",
    "render_prompt",
    "visible_items",
]

T = TypeVar("T")

DEFAULT_MAX_ITEMS = 50
SHORT_TERM_ITEMS = 5
PLACEHOLDERS = frozenset({"items", "qualifier", "candidates"})
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")

# Our wording of the LLM4SBR prompt: the clicked items in order, then a request qualified by the
# perspective, then "name only".
DEFAULT_TEMPLATE = (
    "A user clicked the following items in this order (each line is Title_ItemID):\n"
    "{items}\n"
    "Judging from the user's {qualifier} interests, name one item this user would be interested in. "
    "Output only the item's name, with no explanation."
)

# The same listing presented as items the user already has, and a request for another one: the paper's
# wording lets a small model answer with an item of the listing (on ML-100K the default 0.5B model did so
# in about 95 % of answers), which can never be the next item where users do not repeat items.
UNSEEN_TEMPLATE = (
    "A user has already seen the following items, in this order (each line is Title_ItemID):\n"
    "{items}\n"
    "Judging from the user's {qualifier} interests, name one other item, not in the list above, that this "
    "user would want next. Output only the item's name, with no explanation."
)

# The listing plus a short list of candidates that followed the same items in other (training) sessions;
# the model picks one. The candidates come from BuildConfig.candidate_sessions (offline/candidates.py).
CANDIDATES_TEMPLATE = (
    "A user has already seen the following items, in this order (each line is Title_ItemID):\n"
    "{items}\n"
    "Other users who saw these items often went on to one of these:\n"
    "{candidates}\n"
    "Judging from the user's {qualifier} interests, which one of these candidates will this user want next? "
    "Output only the item's name, with no explanation."
)


class PromptError(Llm4sbrError, ValueError):
    """A perspective or template is invalid (unknown placeholder, bad name, bad file)."""


@dataclass(frozen=True)
class Perspective:
    """One prompt view of a session.

    Attributes:
        name: identifier (letters, digits, ``_``, ``-``); becomes ``intent.<name>`` in the store.
        qualifier: words filled into ``{qualifier}``, e.g. ``"long term"``.
        template: prompt text with ``{items}`` (required) and optionally ``{qualifier}``;
            write literal braces as ``{{`` and ``}}``.
        last_n: keep only the session's last ``last_n`` items (``None`` = all, after ``max_items``).
    """

    name: str
    qualifier: str
    template: str = DEFAULT_TEMPLATE
    last_n: int | None = None

    def __post_init__(self) -> None:
        validate_perspective(self)


def _template_fields(template: str, where: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise PromptError(
            f"{where}: template is not a valid format string ({err}); write literal braces as {{{{ }}}}"
        ) from None
    fields = set()
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise PromptError(
                f"{where}: template has a positional placeholder '{{{name}}}'; use {{items}} and {{qualifier}}"
            )
        if spec or conv:
            raise PromptError(f"{where}: placeholder {{{name}}} must not have a format spec or conversion")
        fields.add(name)
    return fields


def validate_perspective(p: Perspective, where: str | None = None) -> None:
    """Raise :class:`PromptError` for a bad name, unknown placeholders, a missing ``{items}`` or a bad last_n."""
    where = where or f"perspective {p.name!r}"
    if not isinstance(p.name, str) or not _NAME_RE.match(p.name):
        raise PromptError(f"{where}: name must be letters, digits, '_' or '-', got {p.name!r}")
    if not isinstance(p.template, str) or not isinstance(p.qualifier, str):
        raise PromptError(f"{where}: template and qualifier must be strings")
    fields = _template_fields(p.template, where)
    unknown = fields - PLACEHOLDERS
    if unknown:
        raise PromptError(
            f"{where}: unknown placeholder(s) {sorted('{' + u + '}' for u in unknown)} in template; "
            f"allowed: {{items}}, {{qualifier}}, {{candidates}}"
        )
    if "items" not in fields:
        raise PromptError(f"{where}: template must contain {{items}}")
    if p.last_n is not None and (not isinstance(p.last_n, int) or isinstance(p.last_n, bool) or p.last_n < 1):
        raise PromptError(f"{where}: last_n must be a positive integer or null, got {p.last_n!r}")


#: Built-in perspectives by preset name. ``short_last5`` is stored under the name ``short``: it is
#: another way to build the short view, not another view.
PERSPECTIVE_PRESETS: dict[str, Perspective] = {
    "long": Perspective("long", "long term", DEFAULT_TEMPLATE, None),
    "short": Perspective("short", "short term", DEFAULT_TEMPLATE, None),
    "short_last5": Perspective("short", "short term", DEFAULT_TEMPLATE, SHORT_TERM_ITEMS),
    "long_unseen": Perspective("long", "long term", UNSEEN_TEMPLATE, None),
    "short_unseen": Perspective("short", "short term", UNSEEN_TEMPLATE, None),
    "long_candidates": Perspective("long", "long term", CANDIDATES_TEMPLATE, None),
    "short_candidates": Perspective("short", "short term", CANDIDATES_TEMPLATE, None),
}
DEFAULT_PERSPECTIVES: tuple[Perspective, ...] = (PERSPECTIVE_PRESETS["long"], PERSPECTIVE_PRESETS["short"])


def named_perspectives(spec: str) -> list[Perspective]:
    """Perspectives from comma-separated preset names, e.g. ``"long,short_last5"``.

    Raises :class:`PromptError` for an unknown name or two presets stored under the same name.
    """
    names = [part.strip() for part in str(spec).split(",") if part.strip()]
    unknown = [n for n in names if n not in PERSPECTIVE_PRESETS]
    if not names or unknown:
        raise PromptError(
            f"perspectives {spec!r}: unknown preset(s) {unknown or ['(none given)']}; "
            f"choose from {', '.join(PERSPECTIVE_PRESETS)}, comma-separated"
        )
    out = [PERSPECTIVE_PRESETS[n] for n in names]
    stored = [p.name for p in out]
    dups = sorted({n for n in stored if stored.count(n) > 1})
    if dups:
        raise PromptError(f"perspectives {spec!r}: more than one preset is stored as {dups}; keep one of them")
    return out


def is_perspectives_file(spec: str) -> bool:
    """Whether a perspectives setting names a JSON file (``.json``, a folder in it, or an existing file)
    rather than preset names such as ``"long,short_last5"``."""
    return spec.endswith(".json") or os.sep in spec or Path(spec).is_file()


def resolve_perspectives(spec: str | Sequence[Perspective]) -> list[Perspective]:
    """The perspectives a setting names: preset names (:func:`named_perspectives`), a JSON file
    (:func:`load_perspectives`), or a list of :class:`Perspective` (kept as given)."""
    if isinstance(spec, str):
        return load_perspectives(spec) if is_perspectives_file(spec) else named_perspectives(spec)
    return list(spec)


def load_perspectives(path: str | os.PathLike) -> list[Perspective]:
    """Read perspectives from a JSON file: a list of ``{name, qualifier, template?, last_n?}`` objects.

    ``template`` defaults to :data:`DEFAULT_TEMPLATE`, ``last_n`` to ``null`` (whole session).
    Errors name the file and the entry (index and name).
    """
    path = Path(path)
    try:
        raw = strict_json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"perspectives file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise PromptError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(raw, list) or not raw:
        raise PromptError(f"{path}: expected a non-empty JSON list of perspective objects")
    out: list[Perspective] = []
    allowed = {"name", "qualifier", "template", "last_n"}
    for i, entry in enumerate(raw):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict):
            raise PromptError(f"{where}: expected an object, got {type(entry).__name__}")
        where = f"{path}: entry {i} ({entry.get('name', '?')!r})"
        extra = set(entry) - allowed
        if extra:
            raise PromptError(f"{where}: unknown key(s) {sorted(extra)}; allowed: {sorted(allowed)}")
        if "name" not in entry or "qualifier" not in entry:
            raise PromptError(f"{where}: 'name' and 'qualifier' are required")
        try:
            p = Perspective(
                entry["name"], entry["qualifier"], entry.get("template", DEFAULT_TEMPLATE), entry.get("last_n")
            )
        except PromptError as err:
            raise PromptError(f"{where}: {err}") from None
        out.append(p)
    names = [p.name for p in out]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise PromptError(f"{path}: duplicate perspective name(s) {dups}")
    return out


def prompt_sha256(perspectives: Sequence[Perspective], max_items: int = DEFAULT_MAX_ITEMS) -> str:
    """sha256 of what shapes the prompts: each perspective (name, qualifier, template, last_n) and max_items."""
    blob = json.dumps(
        {"perspectives": [asdict(p) for p in perspectives], "max_items": int(max_items)},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def item_lines(
    items: Sequence[ItemId],
    catalogue: Catalogue,
    *,
    on_missing_title: str = "error",
    session_id: Any = None,
    source: str = "<sessions>",
    catalogue_source: str | None = None,
    with_ids: bool = True,
) -> list[str]:
    """``Title_ItemID`` strings for a session's items (``Title`` alone when ``with_ids`` is false).

    ``on_missing_title`` for an item the catalogue has no title for: ``"error"`` (raise, naming the
    sessions file, session id, item id and catalogue), ``"skip_item"`` (leave it out) or ``"id_only"``
    (render the bare id).
    """
    if on_missing_title not in ("error", "skip_item", "id_only"):
        raise ValueError(f"on_missing_title must be 'error', 'skip_item' or 'id_only', got {on_missing_title!r}")
    out = []
    for item in items:
        key = item_key(item)
        title = catalogue.lookup(key)
        if title is None:
            if on_missing_title == "error":
                raise InputFormatError(
                    f"{source}: session {session_id!r}: item {key!r} has no title in catalogue "
                    f"{catalogue_source or catalogue.source} (use {_missing_title_hint('skip_item')} or "
                    f"{_missing_title_hint('id_only')})"
                )
            if on_missing_title == "skip_item":
                continue
            out.append(key)
        else:
            out.append(f"{title}_{key}" if with_ids else title)
    return out


def _missing_title_hint(policy: str) -> str:
    """The ``on_missing_title`` setting in the caller's spelling (Python keyword or CLI flag)."""
    return setting_hint("on_missing_title", policy)


def visible_items(items: Sequence[T], perspective: Perspective, max_items: int = DEFAULT_MAX_ITEMS) -> list[T]:
    """The part of a session a perspective's prompt shows (oldest first): the most recent ``max_items``
    entries, then the last ``perspective.last_n`` of those.

    The one rule for "which items a perspective sees": :func:`render_prompt` applies it to the item
    lines, and the builder to the catalogue rows aligned with them (for the session-mean fallback).
    """
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    kept = list(items)[-max_items:]
    if perspective.last_n is not None:
        kept = kept[-perspective.last_n :]
    return kept


def uses_candidates(perspective: Perspective) -> bool:
    """Whether the perspective's template lists candidate items (``{candidates}``)."""
    return "candidates" in _template_fields(perspective.template, f"perspective {perspective.name!r}")


def render_prompt(
    perspective: Perspective,
    lines: Sequence[str],
    max_items: int = DEFAULT_MAX_ITEMS,
    candidates: Sequence[str] | None = None,
) -> str:
    """Fill a perspective's template with a session's item lines (oldest first).

    Keeps the lines :func:`visible_items` selects and numbers them ``1. Title_ItemID``; ``candidates``
    (``Title_ItemID`` lines) fill ``{candidates}`` as a bulleted list, required when the template has it.
    """
    kept = visible_items(lines, perspective, max_items)
    listing = "\n".join(f"{i}. {line}" for i, line in enumerate(kept, 1))
    if candidates is None:
        if uses_candidates(perspective):
            raise PromptError(f"perspective {perspective.name!r}: its template lists {{candidates}}; none were given")
        return perspective.template.format(items=listing, qualifier=perspective.qualifier)
    shown = "\n".join(f"- {line}" for line in candidates)
    return perspective.template.format(items=listing, qualifier=perspective.qualifier, candidates=shown)


# --------------------------------------------------------------------------- answers
_BULLET = re.compile(r"^\s*(?:[-*+\u2022\u25cf>]+|\d{1,3}[.)]|\(\d{1,3}\))\s+")
_PREFIX = re.compile(
    r"^\s*(?:the\s+)?(?:final\s+)?(?:answer|item(?:\s+name)?|recommended\s+item|recommendation|output|"
    r"title|guess|prediction|predicted\s+item)\s*(?:is)?\s*[:\uff1a=]\s*",
    re.IGNORECASE,
)
_TRAILING_ID = re.compile(r"_(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]+$")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"


def clean_answer(raw: str) -> str:
    """Reduce a raw completion to an item name.

    Takes the first non-empty line, strips list bullets / numbering, ``Answer:``-style prefixes,
    markdown emphasis and surrounding quotes, and a trailing ``_<ItemID>`` (an id containing a digit,
    e.g. ``"Toy Story (1995)_1"`` -> ``"Toy Story (1995)"``). Returns ``""`` when nothing is left.
    """
    if not raw:
        return ""
    line = next((ln.strip() for ln in str(raw).splitlines() if ln.strip()), "")
    for _ in range(3):  # prefixes and bullets can nest ("1. Answer: **X**")
        before = line
        line = _BULLET.sub("", line)
        line = _PREFIX.sub("", line)
        line = line.strip().strip("*_").strip()
        if len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
            line = line[1:-1].strip()
        if line == before:
            break
    line = _TRAILING_ID.sub("", line).strip()
    line = line.strip(_QUOTES).strip()
    return line
