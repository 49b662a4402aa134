"""Files other codebases need, written from a prepared dataset folder (``prepare_data ... --export KIND``).

Kinds:

* ``graph``: ``all_train_seq.txt``, the side file of graph-based SBR codebases (GCE-GNN and its
  descendants build a global item graph from it): ``pickle.dump(sequences)``, one list of item ids per
  training **session**, clicks in order. ``train.txt`` holds prefix-augmented rows (every prefix of a
  session predicts its next click), so writing each row's ``inputs + [target]`` would repeat a session's
  opening once per prefix and weight its first transitions by its length; each session is written once,
  from its longest row.
* ``recbole``: RecBole atomic files in ``recbole/<name>/`` (``<name>`` is the folder's name):
  ``<name>.inter`` with one line per click of every session (``session_id``, ``user_id``, ``item_id``,
  ``timestamp``, ``event_id``) for RecBole's own leave-one-out split, ``<name>.{train,valid,test}.inter``
  with this folder's rows as they are (``row_id`` = the row's index in ``<split>.txt``, so a store built
  from that pickle answers it; RecBole's ``benchmark_filename``), and ``<name>.item`` with the titles.

A session's rows are recognised by their provenance (``rows_<split>.tsv``): the row ``inputs + [target]``
of a user supersedes the row whose inputs it extends by that target. ``session_id`` is ``<split>-<row>``
of the session's longest row; ``timestamp`` is the click's order in the file (a clock time would let
RecBole reorder same-second clicks), and ``event_id`` numbers the clicks ``0..n-1``.
"""

from __future__ import annotations

import csv
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

from llm4sbr_adapter.atomic_files import atomic_open
from llm4sbr_adapter.srgnn_pickle import read_srgnn_pickle

from .dataset_files import SPLITS
from .raw_data import DataFormatError

__all__ = ["EXPORTS", "export_dataset", "full_sessions", "write_all_train_seq", "write_recbole_files"]

EXPORTS = ("graph", "recbole")

Split = tuple[list[list[int]], list[int], list[str]]  # sequences, targets, user per row


def read_prepared_split(folder: Path, split: str) -> Split:
    """``(sequences, targets, users)`` of one prepared split (its pickle and ``rows_<split>.tsv``)."""
    seqs, targets = read_srgnn_pickle(folder / f"{split}.txt", DataFormatError)
    if targets is None:
        raise DataFormatError(f"{folder / f'{split}.txt'}: the pickle holds no targets")
    rows_path = folder / f"rows_{split}.tsv"
    with open(rows_path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, [])
        if "user_id" not in header:
            raise DataFormatError(f"{rows_path}: line 1: no user_id column (header {header})")
        col = header.index("user_id")
        users = [row[col] for row in reader]
    if len(users) != len(seqs):
        raise DataFormatError(f"{rows_path}: {len(users)} rows but {folder / f'{split}.txt'} has {len(seqs)}")
    return [list(map(int, s)) for s in seqs], [int(t) for t in targets], users


def full_sessions(rows: Sequence[tuple[str, Sequence[int], int]]) -> list[int]:
    """Indices of the rows ``(user, inputs, target)`` that no other row extends: one per session.

    A row is superseded when a row of the same user has ``inputs + [target]`` as its inputs (the next
    prefix of the same session). Rows that are whole sessions already (one row per session) all stay.
    """
    extended = {(user, tuple(inputs)) for user, inputs, _ in rows}
    return [k for k, (user, inputs, target) in enumerate(rows) if (user, (*inputs, target)) not in extended]


def write_all_train_seq(folder: Path, path: Path) -> int:
    """``all_train_seq.txt``: each training session once, as its full click list; returns the number written."""
    seqs, targets, users = read_prepared_split(folder, "train")
    keep = full_sessions(list(zip(users, seqs, targets, strict=True)))
    with atomic_open(path, "wb") as handle:
        pickle.dump([seqs[k] + [targets[k]] for k in keep], handle, protocol=4)
    return len(keep)


def _titles(folder: Path) -> list[tuple[str, str]]:
    with open(folder / "items.tsv", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader, None)
        return [(row[0], row[1] if len(row) > 1 else "") for row in reader]


def write_recbole_files(folder: Path, dest: Path, name: str) -> dict[str, int]:
    """RecBole atomic files for ``folder`` in ``dest`` (module docstring); returns lines written per file."""
    dest.mkdir(parents=True, exist_ok=True)
    splits = {split: read_prepared_split(folder, split) for split in SPLITS}
    rows = [
        (split, k, u, s, t)
        for split, (seqs, ts, us) in splits.items()
        for k, (s, t, u) in enumerate(zip(seqs, ts, us, strict=True))
    ]
    keep = full_sessions([(u, s, t) for _, _, u, s, t in rows])
    counts = {}
    with atomic_open(dest / f"{name}.inter", "w") as out:
        out.write("session_id:token\tuser_id:token\titem_id:token\ttimestamp:float\tevent_id:token\n")
        event = 0
        for k in keep:
            split, row, user, seq, target = rows[k]
            for item in (*seq, target):
                out.write(f"{split}-{row}\t{_clean(user)}\t{item}\t{event}\t{event}\n")
                event += 1
    counts[f"{name}.inter"] = event
    for split, (seqs, targets, _) in splits.items():
        with atomic_open(dest / f"{name}.{split}.inter", "w") as out:
            out.write("row_id:token\tsession_id:token\titem_id_list:token_seq\titem_id:token\n")
            for k, (seq, target) in enumerate(zip(seqs, targets, strict=True)):
                out.write(f"{k}\t{split}-{k}\t{' '.join(map(str, seq))}\t{target}\n")
        counts[f"{name}.{split}.inter"] = len(seqs)
    titles = _titles(folder)
    with atomic_open(dest / f"{name}.item", "w") as out:
        out.write("item_id:token\ttitle:token_seq\n")
        for item_id, title in titles:
            out.write(f"{item_id}\t{_clean(title)}\n")
    counts[f"{name}.item"] = len(titles)
    return counts


def _clean(text: str) -> str:
    return " ".join(str(text).split())


def export_dataset(folder: str | os.PathLike, kinds: Sequence[str]) -> list[Path]:
    """Write the side files ``kinds`` (see :data:`EXPORTS`) for the prepared dataset in ``folder``; returns them."""
    folder = Path(folder)
    written = []
    for kind in dict.fromkeys(kinds):
        if kind == "graph":
            write_all_train_seq(folder, folder / "all_train_seq.txt")
            written.append(folder / "all_train_seq.txt")
        elif kind == "recbole":
            name = folder.resolve().name
            dest = folder / "recbole" / name
            written += [dest / f for f in write_recbole_files(folder, dest, name)]
        else:
            raise ValueError(f"--export takes {' or '.join(EXPORTS)}, got {kind!r}")
    return written
