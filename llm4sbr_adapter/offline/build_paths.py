"""The paths one build reads and writes, checked before any work (:func:`check_build_paths`).

Inputs: the sessions and catalogue files, a perspectives file and a replay answers file. Outputs: the
store, the answer cache (default ``<output>.answers.sqlite3``), the exported prompts and the catalogue
embedding cache folder. See :mod:`llm4sbr_adapter.output_paths` for what is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import flag_or_name
from ..output_paths import check_output_folder, check_writes
from .config import BuildConfig
from .prompts import is_perspectives_file

__all__ = ["ITEM_CACHE_NAME", "check_build_paths", "item_cache_dir"]

ITEM_CACHE_NAME = "llm4sbr_item_cache"  # the catalogue-embedding cache folder beside the output by default


def item_cache_dir(config: BuildConfig, output: str | os.PathLike) -> Path:
    """The catalogue-embedding cache: ``config.item_cache_dir``, else ``llm4sbr_item_cache`` beside the output."""
    return Path(config.item_cache_dir) if config.item_cache_dir is not None else Path(output).parent / ITEM_CACHE_NAME


def _path_or_none(value: Any) -> str | None:
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else None


def check_build_paths(
    sessions: Any, catalogue: Any, output: str | os.PathLike | None, config: BuildConfig, default_cache: Path | None
) -> None:
    """Refuse a build whose outputs would replace one of its inputs (or each other) or cannot be written;
    ``default_cache`` is the answer cache used when ``config.cache_path`` is not set."""
    inputs: dict[str, str | None] = {
        flag_or_name("sessions", "--sessions"): _path_or_none(sessions),
        flag_or_name("catalogue", "--items"): _path_or_none(catalogue),
    }
    if isinstance(config.perspectives, str) and is_perspectives_file(config.perspectives):
        inputs[flag_or_name("perspectives", "--perspectives")] = config.perspectives
    if isinstance(config.llm, str) and config.llm.startswith("replay:"):
        inputs[flag_or_name("llm", "--llm")] = config.llm[len("replay:") :]
    outputs: dict[str, str | os.PathLike | None] = {
        flag_or_name("export_prompts", "--export-prompts"): config.export_prompts
    }
    if output is not None and not config.dry_run:
        outputs[flag_or_name("output", "--output")] = output
        outputs[flag_or_name("cache_path", "--cache")] = config.cache_path or default_cache
        check_output_folder(flag_or_name("item_cache_dir", "--item-cache-dir"), item_cache_dir(config, output))
    check_writes(outputs, inputs)
