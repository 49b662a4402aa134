"""llm4sbr_adapter: LLM-inferred session intents for session-based recommenders.

Stage one (offline): :func:`build_intent_store` / ``python -m llm4sbr_adapter.build_store``
turns sessions and item titles into an intent store. Stage two (training): open the store with
:class:`IntentStore` (bound to one split as an :class:`IntentSource`) and fuse its vectors into a
backbone's session embedding with :class:`IntentEnhancer`, adding :class:`AlignUniformLoss` to the recommendation loss.
"""

from .enhancer import EnhancerOutput, IntentEnhancer, IntentEnhancerConfig
from .errors import Llm4sbrError
from .intent_source import IntentSource
from .losses import AlignUniformLoss, InfoNCELoss
from .offline import BuildConfig, BuildReport, LLMBackend, TextEncoder, build_intent_store
from .store import IntentStore, StoreError, StoreMetadata, StoreMismatchError, merge_stores, write_store

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
