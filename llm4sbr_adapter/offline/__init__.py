"""Stage one of LLM4SBR: turn sessions and item titles into an intent store.

``build_intent_store`` runs the whole pipeline (see :mod:`llm4sbr_adapter.offline.pipeline`); the
readers, prompt rendering and answer cleaning are importable on their own. The LLM backends live in
:mod:`llm4sbr_adapter.offline.llm`, the text encoder and localizer in ``build.encode`` / ``build.localize``.
"""

from .config import DEFAULT_TOP_F, BuildConfig, parse_shard
from .inputs.sessions import Catalogue, InputFormatError, SessionSet, read_catalogue, read_sessions
from .pipeline import BuildReport, build_intent_store, default_cache_path, run_build
from .prompts import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_PERSPECTIVES,
    DEFAULT_TEMPLATE,
    Perspective,
    PromptError,
    clean_answer,
    load_perspectives,
    prompt_sha256,
    render_prompt,
    visible_items,
)

__all__ = [
    "BuildConfig",
    "BuildReport",
    "Catalogue",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_PERSPECTIVES",
    "DEFAULT_TEMPLATE",
    "DEFAULT_TOP_F",
    "InputFormatError",
    "Perspective",
    "PromptError",
    "SessionSet",
    "build_intent_store",
    "clean_answer",
    "default_cache_path",
    "load_perspectives",
    "parse_shard",
    "prompt_sha256",
    "read_catalogue",
    "read_sessions",
    "render_prompt",
    "run_build",
    "visible_items",
]
