"""llm4sbr_adapter: LLM-inferred session intents for session-based recommenders.

Stage one (offline): :func:`build_intent_store` / ``python -m llm4sbr_adapter.build_store``
turns sessions and item titles into an intent store. Stage two (training): open the store with
:class:`IntentStore` (bound to one split as an :class:`IntentSource`) and fuse its vectors into a
backbone's session embedding with :class:`IntentEnhancer`, adding :class:`AlignUniformLoss` to the
recommendation loss.

Training never imports stage one: the stage-one names here (:func:`build_intent_store`,
:class:`BuildConfig`, :class:`BuildReport`, :class:`LLMBackend`, :class:`TextEncoder`) are loaded on
first use (module ``__getattr__``), so ``from llm4sbr_adapter import IntentEnhancer`` loads no module of
:mod:`llm4sbr_adapter.offline`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _deprecated_alias
from .enhancer import EnhancerOutput, IntentEnhancer, IntentEnhancerConfig
from .errors import Llm4sbrError
from .intent_source import IntentSource
from .losses import AlignUniformLoss, InfoNCELoss
from .store import IntentStore, StoreError, StoreMetadata, StoreMismatchError, merge_stores, write_store

if TYPE_CHECKING:  # the lazy names below, for type checkers
    from .offline.config import BuildConfig
    from .offline.encode import TextEncoder
    from .offline.llm.base import LLMBackend
    from .offline.pipeline import BuildReport, build_intent_store

_deprecated_alias.install()

# stage one's public names -> the module that defines each (imported on first access)
_LAZY = {
    "BuildConfig": "llm4sbr_adapter.offline.config",
    "BuildReport": "llm4sbr_adapter.offline.pipeline",
    "LLMBackend": "llm4sbr_adapter.offline.llm.base",
    "TextEncoder": "llm4sbr_adapter.offline.encode",
    "build_intent_store": "llm4sbr_adapter.offline.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AlignUniformLoss",
    "BuildConfig",
    "BuildReport",
    "EnhancerOutput",
    "InfoNCELoss",
    "IntentEnhancer",
    "IntentEnhancerConfig",
    "IntentSource",
    "IntentStore",
    "LLMBackend",
    "Llm4sbrError",
    "StoreError",
    "StoreMetadata",
    "StoreMismatchError",
    "TextEncoder",
    "build_intent_store",
    "merge_stores",
    "write_store",
]
__version__ = "0.2.0"
