"""Every setting of ``prepare_data``, declared once per subcommand; its flags are generated from these fields.

A field left at ``None`` takes its protocol's default (said in its help); giving it to the other
protocol is an error (see ``TEMPORAL_ONLY`` / ``PAPER_ONLY`` in :mod:`.prepare_data`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from llm4sbr_adapter.config import ConfigBase, setting
from llm4sbr_adapter.offline.inputs.columns import ClickLogConfig

from .exports import EXPORTS

__all__ = ["BeautyConfig", "ClicksConfig", "MovieLensConfig", "PrepareConfig"]

_SPLIT_HELP = "temporal: chronological shares of sessions (default 0.7 0.1 0.2)"
_SPLIT_KEY_HELP = "temporal: order sessions by their last (end, default) or first (start) click"


@dataclasses.dataclass(kw_only=True)
class PrepareConfig(ConfigBase):
    """The settings every dataset has: the protocol, the output and the shares of the splits."""

    FORMAT: ClassVar[str] = "llm4sbr_prepare_config"
    DATASET: ClassVar[str] = ""

    protocol: Literal["paper", "temporal"] = setting(
        "paper", "paper: the authors' split by user; temporal: split by time (stricter)"
    )
    out: str = setting(help="output folder (created); keep it outside the git checkout")
    valid_share: float = setting(
        0.1,
        "paper: share of training users moved to validation; temporal: share of the non-test "
        "sessions (movielens: see --split) or rows (beauty) used for validation",
    )
    seed: int | None = setting(None, "paper: seed of the user order (Beauty) and of the validation users (default 0)")
    test_share: float | None = setting(None, "paper: share of sessions (whole users) in the test split (default 0.1)")
    export: tuple[str, ...] = setting(
        (),
        "also write side files for other codebases (one or more): graph = all_train_seq.txt, each "
        "training session once (graph SBR codebases such as GCE-GNN); recbole = RecBole atomic files in "
        "<out>/recbole/<name>/ (.inter per click with session ids, .train/.valid/.test.inter with this "
        "split's rows, .item with titles)",
        metavar="KIND",
    )

    def validate(self) -> None:
        """Each ``export`` is one of :data:`.exports.EXPORTS`, named once."""
        for kind in self.export:
            if kind not in EXPORTS:
                self.fail("export", f"takes {' or '.join(EXPORTS)}, got {kind!r}")
        if len(set(self.export)) != len(self.export):
            self.fail("export", f"names a kind twice: {list(self.export)}")


@dataclasses.dataclass(kw_only=True)
class MovieLensConfig(PrepareConfig):
    """``prepare_data movielens``: sessions of one user's ratings, one example per session."""

    DATASET: ClassVar[str] = "movielens"

    window: int | None = setting(
        None,
        "paper: clock window in seconds; a session = one user's ratings "
        "with the same floor(timestamp / window) (default 600)",
    )
    src: str = setting(
        help="folder of any MovieLens release: ratings.dat+movies.dat (ML-1M, ML-10M), u.data+u.item (ML-100K) "
        "or ratings.csv+movies.csv (ml-latest, ml-20m, ml-25m, ml-32m), detected from the files"
    )
    encoding: str | None = setting(
        None,
        "text encoding of the files (default: the release's: latin-1 for ML-100K/ML-1M unless the copy is "
        "valid UTF-8, UTF-8 otherwise)",
    )
    min_item_count: int = setting(
        5,
        "paper: drop sessions holding an item seen fewer times (one pass); temporal: drop such "
        "items, iterated with length >= 2",
    )
    gap: int | None = setting(None, "temporal: new session after a gap of more than this many seconds (default 600)")
    split: tuple[float, float, float] | None = setting(None, _SPLIT_HELP, metavar="TRAIN VALID TEST")
    split_key: Literal["end", "start"] | None = setting(None, _SPLIT_KEY_HELP)
    train_rows: Literal["last", "prefixes"] | None = setting(
        None,
        "paper: last = one row per training session, the authors' (default); prefixes = every prefix of "
        "each training session is a row (a b c d: a->b, a b->c, a b c->d); valid and test keep one per session",
    )


@dataclasses.dataclass(kw_only=True)
class BeautyConfig(PrepareConfig):
    """``prepare_data beauty``: one session per user, every prefix predicts the next review."""

    DATASET: ClassVar[str] = "beauty"

    tie_seed: int | None = setting(
        None,
        "paper: shuffle each user's same-timestamp reviews with this seed (default: keep the source's order)",
    )
    src: str = setting(help="folder with beauty_interactions.tsv and beauty_items.tsv")
    test_rows: int | None = setting(None, "temporal: the latest this many rows form the test split (default 18000)")
    sample_users: float | None = setting(
        None,
        "temporal: keep this seeded random share of users (0-1, default 1 = all), test rows scaled; "
        "for cheaper documented runs, never for headline numbers",
    )
    sample_seed: int | None = setting(None, "temporal: seed of --sample-users (default 0)")


@dataclasses.dataclass(kw_only=True)
class ClicksConfig(PrepareConfig):
    """``prepare_data clicks``: any one-click-per-row log (CSV/TSV/Parquet) plus an optional catalogue."""

    DATASET: ClassVar[str] = "clicks"
    # --encoding reads both files: it is what a build calls sessions_encoding and items_encoding.
    HINT_ALIASES: ClassVar[dict[str, str]] = {"sessions_encoding": "encoding", "items_encoding": "encoding"}

    src: str = setting(help="click log: CSV, TSV or Parquet, one click per row, with a header")
    items: str | None = setting(
        None, "catalogue 'item_id<sep>title' (header detected); items.tsv titles stay empty without"
    )
    click_log: ClickLogConfig = setting(default_factory=ClickLogConfig, help="the log's columns and its cut")
    encoding: str = setting("utf-8", "text encoding of --src and --items")
    items_header: Literal["auto", "yes", "no"] = setting("auto", "does --items start with a header row")
    rows: Literal["prefixes", "last"] = setting(
        "prefixes", "prefixes: every prefix predicts its next click; last: one row per session"
    )
    min_item_count: int = setting(5, "drop items (or sessions) rarer than this")
    split: tuple[float, float, float] | None = setting(None, "temporal: shares", metavar="TRAIN VALID TEST")
    split_key: Literal["end", "start"] | None = setting(None, "temporal: order sessions by last or first click")
