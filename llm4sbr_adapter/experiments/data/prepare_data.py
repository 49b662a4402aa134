"""Prepare MovieLens, Amazon Beauty or any click log for the LLM4SBR reproduction, in SR-GNN's pickle format.

Subcommands: ``movielens`` (any release: ML-1M/10M ``::``, ML-100K, the ``ratings.csv`` releases),
``beauty``, and ``clicks`` (one click per row, see :mod:`llm4sbr_adapter.experiments.data.clicks_protocol`).

Two protocols (``--protocol``):

* ``paper`` (the default): the authors' own rules, a split **by user** (train and test users cover the
  same period); see :mod:`llm4sbr_adapter.experiments.data.paper_protocol`. Use it to set numbers beside the paper's
  Table 2.
* ``temporal``: a split **by time** (every test target after every training target); see
  :mod:`llm4sbr_adapter.experiments.data.temporal_protocol`. Stricter and closer to deployment; the earlier tables of
  docs/results.md use it.

Outputs in ``--out``: ``train.txt`` / ``valid.txt`` / ``test.txt`` (each ``pickle.dump((sequences, targets))``,
items remapped to ``1..N``, 0 is padding), ``items.tsv`` (``item_id<TAB>title`` with a header, the
catalogue for the intent builder), ``rows_<split>.tsv`` (where each row came from: user, position,
timestamps), ``item_map.tsv`` (new id -> original id) and ``stats.json``. The command prints Table 1
beside the paper's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TypeVar

from llm4sbr_adapter.offline.inputs.columns import add_click_log_flags
from llm4sbr_adapter.offline.inputs.movielens import detect_release

from .clicks_protocol import prepare_clicks
from .dataset_files import SPLITS, write_dataset, write_pickle_split, write_tsv
from .paper_protocol import (
    clock_windows,
    drop_sessions_with_rare_items,
    prepare_beauty_paper,
    prepare_movielens_paper,
    user_split,
)
from .raw_data import (
    DataFormatError,
    Interactions,
    Row,
    Session,
    augmented_rows,
    build_item_map,
    read_beauty,
    read_movielens,
    split_sessions,
)
from .temporal_protocol import (
    chronological_split,
    filter_sessions,
    prepare_beauty,
    prepare_movielens,
    split_rows_by_target_time,
)

__all__ = [
    "SPLITS",
    "DataFormatError",
    "Interactions",
    "Row",
    "Session",
    "augmented_rows",
    "build_item_map",
    "chronological_split",
    "clock_windows",
    "drop_sessions_with_rare_items",
    "filter_sessions",
    "format_stats",
    "main",
    "prepare_beauty",
    "prepare_beauty_paper",
    "prepare_movielens",
    "prepare_movielens_paper",
    "read_beauty",
    "read_movielens",
    "split_rows_by_target_time",
    "split_sessions",
    "user_split",
    "write_dataset",
    "write_pickle_split",
    "write_tsv",
]

T = TypeVar("T")

# The paper's Table 1 (LLM4SBR). Its "train" is all non-test rows (it has no validation split); its
# average length is the mean input length of a row.
PAPER_TABLE1 = {
    "ml-1m": {"clicks": 987_610, "items": 3_416, "avg_input_length": 17.59, "train_plus_valid": 47_808, "test": 5_313},
    "beauty": {
        "clicks": 198_502,
        "items": 12_101,
        "avg_input_length": 8.66,
        "train_plus_valid": 158_139,
        "test": 18_000,
    },
}


def format_stats(stats: dict, paper: str | None = None) -> str:
    """Table 1 as Markdown: our statistics, beside the paper's Table 1 when ``paper`` names it."""
    ref = PAPER_TABLE1.get(paper or "", {})
    sp = stats["splits"]
    lines = [f"| statistic | ours | paper{f' ({paper})' if ref else ''} |", "|---|---:|---:|"]

    def add(name: str, ours: object, key: str | None = None) -> None:
        value = ref.get(key, "") if key else ""
        lines.append(f"| {name} | {ours} | {f'{value:,}' if isinstance(value, int) else value} |")

    add("clicks", f"{stats['clicks']:,}", "clicks")
    add("items", f"{stats['items']:,}", "items")
    for key in ("users", "sessions"):
        if key in stats:
            add(key, f"{stats[key]:,}")
    add("avg session length (clicks/session)", f"{stats['avg_session_length']:.2f}")
    for split in SPLITS:
        add(f"{split} rows", f"{sp[split]['rows']:,}", "test" if split == "test" else None)
    add("train + valid rows (the paper's train)", f"{sp['train']['rows'] + sp['valid']['rows']:,}", "train_plus_valid")
    if "avg_input_length" in stats:
        add("avg input length (all rows)", f"{stats['avg_input_length']:.2f}", "avg_input_length")
    for split in SPLITS:
        add(f"{split} avg input length", f"{sp[split]['avg_input_length']:.2f}")
    add(
        "valid / test targets unseen in train",
        f"{stats['targets_unseen_in_train']['valid']} / {stats['targets_unseen_in_train']['test']}",
    )
    add("items without a title", stats["items_without_title"])
    return "\n".join(lines)


# Flags that only one protocol reads: giving one to the other protocol is an error, not silently ignored.
TEMPORAL_ONLY = {
    "movielens": ("gap", "split", "split_key"),
    "beauty": ("test_rows", "sample_users", "sample_seed"),
    "clicks": ("split", "split_key"),
}
PAPER_ONLY = {
    "movielens": ("window", "test_share", "seed"),
    "beauty": ("test_share", "seed", "tie_seed"),
    "clicks": ("test_share", "seed"),
}


def _add_paper_flags(p: argparse.ArgumentParser, dataset: str) -> None:
    p.add_argument(
        "--seed", type=int, help="paper: seed of the user order (Beauty) and of the validation users (default 0)"
    )
    p.add_argument(
        "--test-share", type=float, help="paper: share of sessions (whole users) in the test split (default 0.1)"
    )
    if dataset == "clicks":
        return
    if dataset == "movielens":
        p.add_argument(
            "--window",
            type=int,
            help="paper: clock window in seconds; a session = one user's ratings "
            "with the same floor(timestamp / window) (default 600)",
        )
    else:
        p.add_argument(
            "--tie-seed",
            type=int,
            help="paper: shuffle each user's same-timestamp reviews with this seed (default: keep the source's order)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Prepare MovieLens (any release), Amazon Beauty or a click log as SR-GNN pickles "
        "(train.txt/valid.txt/test.txt) plus items.tsv, rows_*.tsv and stats.json; prints Table 1.",
    )
    sub = parser.add_subparsers(dest="dataset", required=True)
    ml = sub.add_parser("movielens", help="sessions of one user's ratings, one example per session")
    be = sub.add_parser("beauty", help="one session per user, every prefix predicts the next review")
    cl = sub.add_parser("clicks", help="any one-click-per-row log (CSV/TSV/Parquet) plus an optional catalogue")
    for p in (ml, be, cl):
        p.add_argument(
            "--protocol",
            choices=("paper", "temporal"),
            default="paper",
            help="paper (default): the authors' split by user; temporal: split by time (stricter)",
        )
        p.add_argument("--out", required=True, help="output folder (created); keep it outside the git checkout")
        p.add_argument(
            "--valid-share",
            type=float,
            default=0.1,
            help="paper: share of training users moved to validation; temporal: share of the non-test "
            "sessions (movielens: see --split) or rows (beauty) used for validation (default 0.1)",
        )
        _add_paper_flags(p, {id(ml): "movielens", id(be): "beauty", id(cl): "clicks"}[id(p)])
    ml.add_argument(
        "--src",
        required=True,
        help="folder of any MovieLens release: ratings.dat+movies.dat (ML-1M, ML-10M), u.data+u.item (ML-100K) "
        "or ratings.csv+movies.csv (ml-latest, ml-20m, ml-25m, ml-32m), detected from the files",
    )
    ml.add_argument(
        "--encoding",
        help="text encoding of the files (default: the release's: latin-1 for ML-100K/ML-1M unless the copy is "
        "valid UTF-8, UTF-8 otherwise)",
    )
    ml.add_argument(
        "--min-item-count",
        type=int,
        default=5,
        help="paper: drop sessions holding an item seen fewer times (one pass); temporal: drop such "
        "items, iterated with length >= 2 (default 5)",
    )
    ml.add_argument(
        "--gap", type=int, help="temporal: new session after a gap of more than this many seconds (default 600)"
    )
    ml.add_argument(
        "--split",
        type=float,
        nargs=3,
        metavar=("TRAIN", "VALID", "TEST"),
        help="temporal: chronological shares of sessions (default 0.7 0.1 0.2)",
    )
    ml.add_argument(
        "--split-key",
        choices=("end", "start"),
        help="temporal: order sessions by their last (end, default) or first (start) click",
    )
    be.add_argument("--src", required=True, help="folder with beauty_interactions.tsv and beauty_items.tsv")
    be.add_argument(
        "--test-rows", type=int, help="temporal: the latest this many rows form the test split (default 18000)"
    )
    be.add_argument(
        "--sample-users",
        type=float,
        help="temporal: keep this seeded random share of users (0-1, default 1 = all), test rows scaled; "
        "for cheaper documented runs, never for headline numbers",
    )
    be.add_argument("--sample-seed", type=int, help="temporal: seed of --sample-users (default 0)")
    add_clicks_flags(cl)
    return parser


def add_clicks_flags(p: argparse.ArgumentParser) -> None:
    """The ``clicks`` subcommand's flags: the log, its columns, the catalogue, sessionisation, filters, split."""
    p.add_argument("--src", required=True, help="click log: CSV, TSV or Parquet, one click per row, with a header")
    p.add_argument(
        "--items", help="catalogue 'item_id<sep>title' (header detected); items.tsv titles stay empty without"
    )
    add_click_log_flags(p)
    p.add_argument("--encoding", default="utf-8", help="text encoding of --src and --items (default utf-8)")
    p.add_argument(
        "--items-header", choices=("auto", "yes", "no"), default="auto", help="does --items start with a header row"
    )
    p.add_argument(
        "--rows",
        choices=("prefixes", "last"),
        default="prefixes",
        help="prefixes (default): every prefix predicts its next click; last: one row per session",
    )
    p.add_argument("--min-item-count", type=int, default=5, help="drop items (or sessions) rarer than this")
    p.add_argument("--split", type=float, nargs=3, metavar=("TRAIN", "VALID", "TEST"), help="temporal: shares")
    p.add_argument("--split-key", choices=("end", "start"), help="temporal: order sessions by last or first click")


def _given(args: argparse.Namespace, names: Sequence[str]) -> list[str]:
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n) is not None]


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def prepare(args: argparse.Namespace) -> tuple[dict, str | None]:
    """Run the chosen dataset and protocol; returns the statistics and the paper column to print."""
    wrong = TEMPORAL_ONLY if args.protocol == "paper" else PAPER_ONLY
    misplaced = _given(args, wrong[args.dataset])
    if misplaced:
        raise ValueError(
            f"{', '.join(misplaced)} only apply to the other protocol; this run uses --protocol {args.protocol}"
        )
    if args.dataset == "clicks":
        return _prepare_clicks(args), None
    is_ml1m = args.dataset == "movielens" and detect_release(args.src)[0] == "ml-1m"
    paper = "beauty" if args.dataset == "beauty" else ("ml-1m" if is_ml1m else None)
    if args.protocol == "paper":
        common = {"test_share": _or(args.test_share, 0.1), "valid_share": args.valid_share, "seed": _or(args.seed, 0)}
        if args.dataset == "movielens":
            return prepare_movielens_paper(
                args.src,
                args.out,
                window=_or(args.window, 600),
                min_item_count=args.min_item_count,
                encoding=args.encoding,
                **common,
            ), paper
        return prepare_beauty_paper(args.src, args.out, tie_seed=args.tie_seed, **common), paper
    if args.dataset == "movielens":
        return prepare_movielens(
            args.src,
            args.out,
            gap=_or(args.gap, 600),
            min_item_count=args.min_item_count,
            shares=_or(args.split, (0.7, 0.1, 0.2)),
            split_key=_or(args.split_key, "end"),
            encoding=args.encoding,
        ), None
    sample = _or(args.sample_users, 1.0)
    return prepare_beauty(
        args.src,
        args.out,
        test_rows=_or(args.test_rows, 18_000),
        valid_share=args.valid_share,
        sample_users=sample,
        sample_seed=_or(args.sample_seed, 0),
    ), None


def _prepare_clicks(args: argparse.Namespace) -> dict:
    columns = {role: getattr(args, f"{role}_column") for role in ("session", "item", "time", "user")}
    columns["names"] = args.log_columns
    return prepare_clicks(
        args.src,
        args.out,
        items=args.items,
        columns=columns,
        encoding=args.encoding,
        items_header={"auto": None, "yes": True, "no": False}[args.items_header],
        gap=args.gap,
        window=args.window,
        protocol=args.protocol,
        rows=args.rows,
        min_item_count=args.min_item_count,
        test_share=_or(args.test_share, 0.1),
        valid_share=args.valid_share,
        seed=_or(args.seed, 0),
        shares=_or(args.split, (0.7, 0.1, 0.2)),
        split_key=_or(args.split_key, "end"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        stats, paper = prepare(args)
    except (DataFormatError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"Table 1, {args.dataset}, --protocol {args.protocol}"
        + ("" if paper or args.protocol == "temporal" else " (the paper reports ML-1M only; no paper column)")
    )
    print(format_stats(stats, paper if args.protocol == "paper" else None))
    print(f"\nwrote {args.out}: train.txt valid.txt test.txt items.tsv item_map.tsv rows_*.tsv stats.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
