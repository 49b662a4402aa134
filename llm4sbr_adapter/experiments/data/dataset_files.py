"""Writing a prepared dataset: SR-GNN pickles, the catalogue, row provenance and ``stats.json``."""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm4sbr_adapter.atomic_files import atomic_open, atomic_write_text

SPLITS = ("train", "valid", "test")


def write_pickle_split(path: Path, sequences: list[list[int]], targets: list[int]) -> None:
    """SR-GNN's format: ``pickle.dump((sequences, targets))`` with plain Python ints (protocol 4)."""
    if len(sequences) != len(targets):
        raise ValueError(f"{path}: {len(sequences)} sequences but {len(targets)} targets")
    with atomic_open(path, "wb") as handle:
        pickle.dump((sequences, targets), handle, protocol=4)


def write_tsv(path: Path, header: Sequence[str], rows: list[Sequence]) -> None:
    def clean(v: object) -> str:
        return str(v).replace("\t", " ").replace("\n", " ")

    with atomic_open(path, "w") as handle:
        handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(clean(v) for v in row) + "\n")


def shared_stats(examples: dict, item_map: dict, titles: dict) -> dict:
    """The statistics both protocols report: per split, targets never seen in training, items without a title."""
    train_items = {i for s in examples["train"][0] for i in s} | set(examples["train"][1])
    return {
        "splits": {split: _split_stats(*examples[split]) for split in SPLITS},
        "targets_unseen_in_train": {
            split: int(sum(t not in train_items for t in examples[split][1])) for split in ("valid", "test")
        },
        "items_without_title": int(sum(not titles.get(orig) for orig in item_map)),
    }


def _split_stats(seqs: list[list[int]], targets: list[int]) -> dict:
    lengths = np.asarray([len(s) for s in seqs], dtype=np.float64)
    return {
        "rows": len(seqs),
        "avg_input_length": round(float(lengths.mean()), 4) if len(seqs) else 0.0,
        "max_input_length": int(lengths.max()) if len(seqs) else 0,
        "items": len({i for s in seqs for i in s} | set(targets)),
    }


def write_dataset(
    out: Path,
    examples: dict[str, tuple[list[list[int]], list[int]]],
    item_map: dict,
    titles: dict,
    row_meta: dict[str, tuple[list[str], list[Sequence]]],
    stats: dict,
) -> None:
    """Write the three pickles, the catalogue, the item map, per-row provenance and ``stats.json``."""
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        seqs, targets = examples[split]
        write_pickle_split(out / f"{split}.txt", seqs, targets)
        header, rows = row_meta[split]
        write_tsv(out / f"rows_{split}.tsv", header, rows)
    inverse = sorted(item_map.items(), key=lambda kv: kv[1])
    write_tsv(out / "items.tsv", ["item_id", "title"], [(new, titles.get(orig, "")) for orig, new in inverse])
    write_tsv(out / "item_map.tsv", ["item_id", "original_id"], [(new, orig) for orig, new in inverse])
    atomic_write_text(out / "stats.json", json.dumps(stats, indent=2) + "\n")
