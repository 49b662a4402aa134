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
from pathlib import Path
from typing import TypeVar

from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args, hint_flags
from llm4sbr_adapter.errors import flag_spelling, interruptible, one_line, setting_hint, setting_name
from llm4sbr_adapter.offline.inputs.movielens import detect_release
from llm4sbr_adapter.output_paths import check_output_folder, check_writes, folder_files, folder_outputs

from .clicks_protocol import prepare_clicks
from .dataset_files import SPLITS, write_dataset, write_pickle_split, write_tsv
from .exports import export_dataset
from .paper_protocol import (
    clock_windows,
    drop_sessions_with_rare_items,
    prepare_beauty_paper,
    prepare_movielens_paper,
    user_split,
)
from .prepare_config import BeautyConfig, ClicksConfig, MovieLensConfig, PrepareConfig
from .prepared_files import DATA_FILES
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
    "prepare",
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


def format_stats(stats: dict, paper: str | None = None, name: str = "ours") -> str:
    """Table 1 as Markdown: the statistics under the column ``name`` (the dataset), beside the paper's
    Table 1 when ``paper`` names one of its datasets; without one the table has no paper column."""
    ref = PAPER_TABLE1.get(paper or "", {})
    sp = stats["splits"]
    lines = [f"| statistic | {name} | paper ({paper}) |", "|---|---:|---:|"] if ref else []
    lines = lines or [f"| statistic | {name} |", "|---|---:|"]

    def add(label: str, ours: object, key: str | None = None) -> None:
        if key == "train_plus_valid" and not ref:
            label = "train + valid rows"
        if not ref:
            lines.append(f"| {label} | {ours} |")
            return
        value = ref.get(key, "") if key else ""
        lines.append(f"| {label} | {ours} | {f'{value:,}' if isinstance(value, int) else value} |")

    add("clicks", f"{stats['clicks']:,}", "clicks")
    add("items", f"{stats['items']:,}", "items")
    for key in ("users", "sessions"):
        if key in stats:
            add(key, f"{stats[key]:,}")
    add("avg session length (clicks/session)", f"{stats['avg_session_length']:.2f}")
    prefixes = stats.get("protocol", {}).get("train_rows") == "every prefix of each session"
    for split in SPLITS:
        label = "train rows (every prefix of each session)" if split == "train" and prefixes else f"{split} rows"
        add(label, f"{sp[split]['rows']:,}", "test" if split == "test" else None)
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


def table_name(dataset: str, config: PrepareConfig) -> str:
    """What heads Table 1's column: the MovieLens release (ml-1m, ml-100k, ml-10m or ml-csv), ``beauty``, or
    the click log's file name."""
    src = str(vars(config).get("src", ""))
    if dataset == "clicks":
        return Path(src).name
    return detect_release(src)[0] if dataset == "movielens" else dataset


# Settings that only one protocol reads: giving one to the other protocol is an error, not silently ignored.
TEMPORAL_ONLY = {
    "movielens": ("gap", "split", "split_key"),
    "beauty": ("test_rows", "sample_users", "sample_seed"),
    "clicks": ("split", "split_key"),
}
PAPER_ONLY = {
    "movielens": ("window", "test_share", "seed", "train_rows"),
    "beauty": ("test_share", "seed", "tie_seed"),
    "clicks": ("test_share", "seed"),
}
CONFIGS: dict[str, type[PrepareConfig]] = {c.DATASET: c for c in (MovieLensConfig, BeautyConfig, ClicksConfig)}


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per dataset, its flags generated from its config (:mod:`.prepare_config`)."""
    parser = argparse.ArgumentParser(
        description="Prepare MovieLens (any release), Amazon Beauty or a click log as SR-GNN pickles "
        "(train.txt/valid.txt/test.txt) plus items.tsv, rows_*.tsv and stats.json; prints Table 1.",
    )
    sub = parser.add_subparsers(dest="dataset", required=True)
    for name, cls in CONFIGS.items():
        add_config_arguments(sub.add_parser(name, help=(cls.__doc__ or "").split(": ", 1)[-1].rstrip(".")), cls)
    return parser


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def prepare(config: PrepareConfig) -> tuple[dict, str | None]:
    """Run the config's dataset and protocol; returns the statistics and the paper column to print."""
    dataset = config.DATASET
    check_output_folder(setting_name("out"), config.out)
    src, items = vars(config).get("src"), vars(config).get("items")  # every dataset's config has src
    inputs = {setting_name("src"): folder_files(src), setting_name("items"): items}
    check_writes(folder_outputs(setting_name("out"), config.out, DATA_FILES), inputs)
    wrong = TEMPORAL_ONLY if config.protocol == "paper" else PAPER_ONLY
    misplaced = [setting_name(n) for n in wrong[dataset] if getattr(config, n) is not None]
    if misplaced:
        raise ValueError(
            f"{', '.join(misplaced)} only apply to the other protocol; this run uses "
            f"{setting_hint('protocol', config.protocol)}"
        )
    if isinstance(config, ClicksConfig):
        return _prepare_clicks(config), None
    is_ml1m = isinstance(config, MovieLensConfig) and detect_release(config.src)[0] == "ml-1m"
    paper = "beauty" if dataset == "beauty" else ("ml-1m" if is_ml1m else None)
    if isinstance(config, MovieLensConfig):
        return _prepare_movielens(config), paper
    assert isinstance(config, BeautyConfig)
    return _prepare_beauty(config), paper


def _paper_shares(config: PrepareConfig) -> dict:
    return {"test_share": _or(config.test_share, 0.1), "valid_share": config.valid_share, "seed": _or(config.seed, 0)}


def _prepare_movielens(config: MovieLensConfig) -> dict:
    if config.protocol == "paper":
        return prepare_movielens_paper(
            config.src,
            config.out,
            window=_or(config.window, 600),
            min_item_count=config.min_item_count,
            encoding=config.encoding,
            train_rows=_or(config.train_rows, "last"),
            **_paper_shares(config),
        )
    return prepare_movielens(
        config.src,
        config.out,
        gap=_or(config.gap, 600),
        min_item_count=config.min_item_count,
        shares=_or(config.split, (0.7, 0.1, 0.2)),
        split_key=_or(config.split_key, "end"),
        encoding=config.encoding,
    )


def _prepare_beauty(config: BeautyConfig) -> dict:
    if config.protocol == "paper":
        return prepare_beauty_paper(config.src, config.out, tie_seed=config.tie_seed, **_paper_shares(config))
    return prepare_beauty(
        config.src,
        config.out,
        test_rows=_or(config.test_rows, 18_000),
        valid_share=config.valid_share,
        sample_users=_or(config.sample_users, 1.0),
        sample_seed=_or(config.sample_seed, 0),
    )


def _prepare_clicks(config: ClicksConfig) -> dict:
    return prepare_clicks(
        config.src,
        config.out,
        items=config.items,
        columns=config.click_log.columns(),
        encoding=config.encoding,
        items_header={"auto": None, "yes": True, "no": False}[config.items_header],
        gap=config.click_log.gap,
        window=config.click_log.window,
        protocol=config.protocol,
        rows=config.rows,
        min_item_count=config.min_item_count,
        test_share=_or(config.test_share, 0.1),
        valid_share=config.valid_share,
        seed=_or(config.seed, 0),
        shares=_or(config.split, (0.7, 0.1, 0.2)),
        split_key=_or(config.split_key, "end"),
    )


@interruptible
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cls = CONFIGS[args.dataset]
    try:
        config = config_from_args(cls, args)
        with flag_spelling(hint_flags(cls)):
            stats, paper = prepare(config)
            exported = export_dataset(config.out, config.export)
    except (DataFormatError, FileNotFoundError, ValueError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    name = table_name(args.dataset, config)
    print(
        f"Table 1, {name} ({args.dataset}), --protocol {config.protocol}"
        + ("" if paper or config.protocol == "temporal" else " (the paper's Table 1 has ML-1M and Beauty only)")
    )
    print(format_stats(stats, paper if config.protocol == "paper" else None, name))
    print(f"\nwrote {config.out}: train.txt valid.txt test.txt items.tsv item_map.tsv rows_*.tsv stats.json")
    for path in exported:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
