"""Every reader of input data, shared by ``build_store`` and ``experiments.data.prepare_data`` (see docs/your-data.md).

* :mod:`.sessions`: session-per-row files (TSV/CSV/JSONL), SR-GNN pickles (trusted input only) and item
  catalogues (headers in common spellings, HTML entities unescaped).
* :mod:`.clicks`: one-click-per-row logs (CSV/TSV/Parquet), grouped into sessions in time order or cut
  from users' clicks by a gap or a clock window.
* :mod:`.movielens`: every MovieLens release, detected from its folder, in its own encoding.
* :mod:`.columns`: column names by flag or common spelling; :mod:`.text`: strict decoding and line splitting.
"""

from .catalogue import Catalogue, read_catalogue
from .clicks import ClickLog, Session, click_sessions, read_click_log, read_click_sessions
from .movielens import detect_release, read_movielens
from .sessions import SessionSet, read_sessions
from .text import InputFormatError

__all__ = [
    "Catalogue",
    "ClickLog",
    "InputFormatError",
    "Session",
    "SessionSet",
    "click_sessions",
    "detect_release",
    "read_catalogue",
    "read_click_log",
    "read_click_sessions",
    "read_movielens",
    "read_sessions",
]
