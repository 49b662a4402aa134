"""Readers of stage one's inputs and of the experiments' raw data (see docs/your-data.md).

* :mod:`.sessions`: session-per-row files (TSV/CSV/JSONL), SR-GNN pickles and item catalogues.
"""

from .sessions import Catalogue, InputFormatError, SessionSet, read_catalogue, read_sessions

__all__ = ["Catalogue", "InputFormatError", "SessionSet", "read_catalogue", "read_sessions"]
