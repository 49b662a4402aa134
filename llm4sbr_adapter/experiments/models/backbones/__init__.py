"""Session-based recommender backbones written for the reproduction harness.

Every backbone is a :class:`~llm4sbr_adapter.experiments.models.backbones.base.SessionBackbone`: it turns a padded
batch into a
local and a global session embedding (``[batch, d]`` each), fuses them its own way when no
:class:`~llm4sbr_adapter.enhancer.IntentEnhancer` is used, and scores all items by a dot product with
its item embedding table.
"""

from .base import SessionBackbone
from .narm import NARM
from .srgnn import SRGNN
from .stamp import STAMP

BACKBONES = {"srgnn": SRGNN, "narm": NARM, "stamp": STAMP}

__all__ = ["BACKBONES", "NARM", "SRGNN", "STAMP", "SessionBackbone"]
