"""HIPHOP parts for session-based recommenders; each composes with any backbone that exposes
item embeddings, item states ``[B, L, d]`` + mask ``[B, L]`` and a session embedding ``[B, d]``.

* :mod:`.semantic_items` -- title-text semantics in the item embedding (``"init"`` / ``"add"``).
* :mod:`.multi_intent` -- K learnable intent queries, pooled into a target intent.
* :mod:`.neighbours` -- FAISS bank of training sessions + intent-guided sparse neighbour attention.
* :mod:`.sparse_attention` -- sparsemax, 1.5-entmax, top-k softmax.
* :mod:`.contrastive` -- InfoNCE between a session and its neighbour view, hard negatives.
* :mod:`.head` -- :class:`HiphopHead`, all of the above in one thin module.

See ``docs/hiphop.md``.
"""

from .contrastive import NeighbourContrastiveLoss, bank_hard_negatives, in_batch_hard_negatives
from .head import BackboneBatch, HiphopConfig, HiphopHead, HiphopOutput
from .multi_intent import MultiIntentCapture, MultiIntentOutput, intent_diversity_loss, last_item_state
from .neighbours import (
    BankRows,
    IntentGuidedNeighbourAggregator,
    NeighbourHits,
    NeighbourView,
    SessionNeighbourBank,
    last_items_mean,
)
from .semantic_items import SemanticInitError, SemanticItemEmbedding, align_text_to_rows, fit_text_projection
from .sparse_attention import entmax15, sparse_normalise, sparsemax, topk_softmax

__all__ = [
    "BackboneBatch",
    "BankRows",
    "HiphopConfig",
    "HiphopHead",
    "HiphopOutput",
    "IntentGuidedNeighbourAggregator",
    "MultiIntentCapture",
    "MultiIntentOutput",
    "NeighbourContrastiveLoss",
    "NeighbourHits",
    "NeighbourView",
    "SemanticInitError",
    "SemanticItemEmbedding",
    "SessionNeighbourBank",
    "align_text_to_rows",
    "bank_hard_negatives",
    "entmax15",
    "fit_text_projection",
    "in_batch_hard_negatives",
    "intent_diversity_loss",
    "last_item_state",
    "last_items_mean",
    "sparse_normalise",
    "sparsemax",
    "topk_softmax",
]
