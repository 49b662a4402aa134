"""``scipy.sparse`` for the baselines, or a one-line error naming the extra that installs it."""

from __future__ import annotations

from llm4sbr_adapter.optional_deps import missing_extra

try:
    import scipy.sparse as sp
except ImportError as err:
    raise missing_extra("scipy", "the simple baselines") from err

__all__ = ["sp"]
