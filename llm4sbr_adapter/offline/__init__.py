"""Stage one of LLM4SBR: turn sessions and item titles into an intent store.

``build_intent_store`` runs the whole pipeline (see :mod:`llm4sbr_adapter.offline.pipeline`); the
readers, prompt rendering and answer cleaning are importable on their own. The extension points are
exported here: :class:`LLMBackend` (subclass it for another model server; the backends live in
:mod:`llm4sbr_adapter.offline.llm`), :class:`TextEncoder` (the sentence encoder, honouring its folder's
pooling) and the readers (:func:`read_sessions`, :func:`read_click_log`, :func:`read_movielens`,
:func:`read_catalogue`). See docs/architecture.md, "Where to add things".
"""

from .config import DEFAULT_TOP_F, BuildConfig, parse_shard
from .encode import TextEncoder
from .inputs.catalogue import Catalogue, read_catalogue
from .inputs.clicks import ClickLog, read_click_log
from .inputs.movielens import read_movielens
from .inputs.sessions import SessionSet, read_sessions
from .inputs.text import InputFormatError
from .llm.base import GenerationConfig, LLMBackend
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
    "ClickLog",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_PERSPECTIVES",
    "DEFAULT_TEMPLATE",
    "DEFAULT_TOP_F",
    "GenerationConfig",
    "InputFormatError",
    "LLMBackend",
    "Perspective",
    "PromptError",
    "SessionSet",
    "TextEncoder",
    "build_intent_store",
    "clean_answer",
    "default_cache_path",
    "load_perspectives",
    "parse_shard",
    "prompt_sha256",
    "read_catalogue",
    "read_click_log",
    "read_movielens",
    "read_sessions",
    "render_prompt",
    "run_build",
    "visible_items",
]
