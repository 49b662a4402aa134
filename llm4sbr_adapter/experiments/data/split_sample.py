"""A seeded sample of a prepared split, written as a split of its own (for screening LLM variants cheaply).

    python -m llm4sbr_adapter.experiments.data.split_sample --data DIR --split valid --rows 300 --seed 0 --name valid300

writes ``DIR/valid300.txt`` (an SR-GNN pickle holding the sampled rows in their original order) and
``DIR/rows_valid300.tsv`` (each new row's ``source_row`` in ``valid.txt`` and, where ``rows_valid.tsv``
exists, its user and target columns, so user-clustered intervals still work). A store built on the new
file is bound to it by ``sessions_sha256`` like any other split; the sample is drawn without looking at
targets.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm4sbr_adapter.config import ConfigBase, setting
from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args
from llm4sbr_adapter.errors import CliParser, add_log_level, flag_or_name, run_cli
from llm4sbr_adapter.output_paths import check_writes

from .dataset_files import write_pickle_split, write_tsv
from .prepared_files import data_inputs
from .splits import SplitData, load_split

__all__ = ["SplitSampleConfig", "main", "sample_rows", "write_sample"]


@dataclasses.dataclass
class SplitSampleConfig(ConfigBase):
    """What to sample and where to write it."""

    FORMAT = "llm4sbr_split_sample_config"

    data: str = setting(help="prepared data folder (prepare_data's output)", metavar="DIR")
    name: str = setting(help="name of the new split: writes DIR/NAME.txt and DIR/rows_NAME.tsv", metavar="NAME")
    split: str = setting("valid", "split to sample from (DIR/SPLIT.txt)")
    rows: int = setting(300, "rows to draw (all rows when the split has fewer)", minimum=1)
    seed: int = setting(0, "seed of the draw", minimum=0)

    def validate(self) -> None:
        if self.name == self.split or self.name in ("train", "valid", "test"):
            self.fail("name", f"must differ from the prepared splits (train, valid, test), got {self.name!r}")
        if not self.name or any(c in self.name for c in "/\\"):
            self.fail("name", f"must be a plain file stem, got {self.name!r}")


def sample_rows(num_rows: int, rows: int, seed: int) -> np.ndarray:
    """``int64 [min(rows, num_rows)]`` distinct row indices, drawn with ``seed``, in increasing order.

    The rows are the first ones of one seeded permutation, so with the same seed a smaller sample is part
    of a larger one (LLM answers for 150 rows serve the 300-row sample too)."""
    picked = np.random.default_rng(seed).permutation(num_rows)[:rows]
    return np.sort(picked).astype(np.int64)


def _row_columns(path: Path) -> tuple[list[str], dict[int, list[str]]]:
    """Header (without ``row``) and the other columns of each row of a ``rows_<split>.tsv``."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, [])
        if not header or header[0] != "row":
            raise ValueError(f"{path}: line 1: expected a header starting with 'row', got {header!r}")
        return header[1:], {int(rec[0]): rec[1:] for rec in reader if rec}


def write_sample(config: SplitSampleConfig) -> tuple[Path, int]:
    """Draw and write the sample; returns the new pickle's path and its row count."""
    data_dir = Path(config.data)
    outputs = {flag_or_name("name", "--name"): [data_dir / f"{config.name}.txt", data_dir / f"rows_{config.name}.tsv"]}
    inputs: dict[str, Path | list[Path]] = dict(data_inputs(data_dir, flag_or_name("data", "--data")))
    inputs[flag_or_name("split", "--split")] = [data_dir / f"{config.split}.txt", data_dir / f"rows_{config.split}.tsv"]
    check_writes(outputs, inputs)
    data: SplitData = load_split(data_dir / f"{config.split}.txt")
    picked = sample_rows(len(data), config.rows, config.seed)
    out = data_dir / f"{config.name}.txt"
    write_pickle_split(out, [data.sequence(int(r)) for r in picked], [int(data.targets[r]) for r in picked])
    rows_in = data_dir / f"rows_{config.split}.tsv"
    columns, extra = _row_columns(rows_in) if rows_in.is_file() else ([], {})
    table: list[Sequence[object]] = [[k, int(r), *extra.get(int(r), [""] * len(columns))] for k, r in enumerate(picked)]
    write_tsv(data_dir / f"rows_{config.name}.tsv", ["row", "source_row", *columns], table)
    return out, len(picked)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(description="Write a seeded sample of a prepared split as a split of its own.")
    add_config_arguments(parser, SplitSampleConfig)
    add_log_level(parser, "warning")
    args = parser.parse_args(argv)

    def work() -> int:
        out, n = write_sample(config_from_args(SplitSampleConfig, args))
        print(f"wrote {out} ({n} rows) and {out.with_name(f'rows_{out.stem}.tsv').name}")
        return 0

    return run_cli(work, args.log_level)


if __name__ == "__main__":
    raise SystemExit(main())
