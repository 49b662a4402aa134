"""Prepare MovieLens and Amazon Beauty for the LLM4SBR reproduction, in SR-GNN's pickle format.

Two protocols, both deterministic (no random numbers anywhere):

``movielens`` (the paper's ML-1M protocol; works on ML-1M ``ratings.dat``/``movies.dat`` with ``::``
and on ML-100K ``u.data``/``u.item``):

1. each user's ratings in time order (ties keep file order) are cut into sessions wherever two
   consecutive ratings are more than ``--gap`` seconds (600) apart;
2. items rated fewer than ``--min-item-count`` (5) times are removed from the sessions and sessions
   shorter than 2 are dropped, repeated until nothing changes;
3. sessions are ordered by the time of their **last** click (then user id, then start time) and cut
   into train / validation / test by ``--split`` shares (default 0.7 / 0.1 / 0.2). Ordering by the
   last click means every training target is no later than every validation target, and those no
   later than every test target;
4. one example per session: input = all clicks but the last, target = the last (no prefix augmentation).

``beauty`` (Amazon Beauty 5-core; one session per user, all reviews in time order):

1. every prefix of a user's sequence predicts the next item (SR-GNN augmentation): ``n - 1`` rows for a
   user with ``n`` reviews, 176,139 rows in all;
2. rows are ordered by the timestamp of their target (ties: file order) and the latest ``--test-rows``
   (18,000) form the test split, which reproduces the paper's Table 1 (158,139 train / 18,000 test);
   the latest ``--valid-share`` (10%) of the remaining rows form the validation split.

Outputs in ``--out``: ``train.txt`` / ``valid.txt`` / ``test.txt`` (each ``pickle.dump((sequences, targets))``,
items remapped to ``1..N``, 0 is padding), ``items.tsv`` (``item_id<TAB>title`` with a header, the
catalogue for the intent builder), ``rows_<split>.tsv`` (where each row came from: user, source session,
timestamps), ``item_map.tsv`` (new id -> original id) and ``stats.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from llm4sbr_adapter.atomic_files import atomic_open, atomic_write_text

SPLITS = ("train", "valid", "test")

# The paper's Table 1 (LLM4SBR), for side-by-side printing.
PAPER_TABLE1 = {
    "ml-1m": {"clicks": 987_610, "items": 3_416, "avg_input_length": 17.59, "train": 47_808, "test": 5_313},
    "beauty": {"clicks": 198_502, "items": 12_101, "train": 158_139, "test": 18_000},
}


class DataFormatError(ValueError):
    """An input file does not look like the format it should have (message names file and line)."""


@dataclass
class Session:
    """One session: a user's clicks between two gaps. ``items`` hold original item ids."""

    user: str
    items: list
    times: list

    @property
    def start(self) -> int:
        return int(self.times[0])

    @property
    def end(self) -> int:
        return int(self.times[-1])


@dataclass
class Interactions:
    """Raw interactions in file order plus the item titles (original ids)."""

    users: list
    items: list
    times: np.ndarray  # int64 [n]
    titles: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- reading
def _read_lines(path: Path, encoding: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"missing input file: {path}")
    return path.read_text(encoding=encoding).splitlines()


def read_movielens(folder: str | os.PathLike) -> Interactions:
    """Read ML-1M (``ratings.dat`` + ``movies.dat``, ``::``) or ML-100K (``u.data`` + ``u.item``).

    Titles are read as latin-1 (both releases use it). Raises :class:`DataFormatError` naming the
    file and line of a malformed row.
    """
    folder = Path(folder)
    if (folder / "ratings.dat").is_file():
        ratings, sep, movies, msep = folder / "ratings.dat", "::", folder / "movies.dat", "::"
    elif (folder / "u.data").is_file():
        ratings, sep, movies, msep = folder / "u.data", "\t", folder / "u.item", "|"
    else:
        raise FileNotFoundError(f"{folder}: neither ratings.dat (ML-1M) nor u.data (ML-100K) found")
    users, items, times = [], [], []
    for lineno, line in enumerate(_read_lines(ratings, "latin-1"), 1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) < 4:
            raise DataFormatError(f"{ratings}: line {lineno}: expected user{sep}item{sep}rating{sep}timestamp, got {line!r}")
        try:
            users.append(str(int(parts[0])))
            items.append(int(parts[1]))
            times.append(int(parts[3]))
        except ValueError:
            raise DataFormatError(f"{ratings}: line {lineno}: non-integer user, item or timestamp in {line!r}") from None
    titles = {}
    if movies.is_file():
        for lineno, line in enumerate(_read_lines(movies, "latin-1"), 1):
            if not line.strip():
                continue
            parts = line.split(msep)
            if len(parts) < 2:
                raise DataFormatError(f"{movies}: line {lineno}: expected item_id{msep}title..., got {line!r}")
            try:
                titles[int(parts[0])] = parts[1].strip()
            except ValueError:
                raise DataFormatError(f"{movies}: line {lineno}: item id {parts[0]!r} is not an integer") from None
    return Interactions(users=users, items=items, times=np.asarray(times, dtype=np.int64), titles=titles)


def read_beauty(folder: str | os.PathLike) -> Interactions:
    """Read ``beauty_interactions.tsv`` (``user_id item_id timestamp``, header, rows in each user's time
    order) and ``beauty_items.tsv`` (``item_id title``; empty titles are kept as ``""``)."""
    folder = Path(folder)
    inter = folder / "beauty_interactions.tsv"
    lines = _read_lines(inter, "utf-8")
    if not lines or lines[0].split("\t")[:3] != ["user_id", "item_id", "timestamp"]:
        raise DataFormatError(f"{inter}: line 1: expected the header 'user_id<TAB>item_id<TAB>timestamp'")
    users, items, times = [], [], []
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise DataFormatError(f"{inter}: line {lineno}: expected 3 tab-separated fields, got {line!r}")
        try:
            times.append(int(parts[2]))
        except ValueError:
            raise DataFormatError(f"{inter}: line {lineno}: timestamp {parts[2]!r} is not an integer") from None
        users.append(parts[0])
        items.append(parts[1])
    titles = {}
    items_path = folder / "beauty_items.tsv"
    for lineno, line in enumerate(_read_lines(items_path, "utf-8")[1:], 2):
        if not line.strip():
            continue
        parts = line.split("\t")
        titles[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return Interactions(users=users, items=items, times=np.asarray(times, dtype=np.int64), titles=titles)


# --------------------------------------------------------------------------- sessions
def split_sessions(users: Sequence, items: Sequence, times: Sequence[int], gap: int = 600) -> list[Session]:
    """Cut each user's clicks (sorted by time, ties in input order) wherever consecutive clicks are
    more than ``gap`` seconds apart. Sessions come back ordered by user (first appearance) then time."""
    n = len(users)
    if not (len(items) == len(times) == n):
        raise ValueError(f"users, items and times differ in length ({n}, {len(items)}, {len(times)})")
    if n == 0:
        return []
    user_codes = {u: k for k, u in enumerate(dict.fromkeys(users))}
    codes = np.fromiter((user_codes[u] for u in users), dtype=np.int64, count=n)
    times = np.asarray(times, dtype=np.int64)
    order = np.lexsort((np.arange(n), times, codes))  # by user, then time, then file order
    codes_s, times_s = codes[order], times[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (codes_s[1:] != codes_s[:-1]) | (times_s[1:] - times_s[:-1] > gap)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    items_s = [items[k] for k in order]
    users_s = [users[k] for k in order]
    return [Session(users_s[a], items_s[a:b], times_s[a:b].tolist()) for a, b in zip(starts, ends)]


def filter_sessions(sessions: list[Session], min_item_count: int = 5, min_length: int = 2) -> list[Session]:
    """Remove items seen fewer than ``min_item_count`` times and sessions shorter than ``min_length``,
    repeating until both conditions hold for every remaining click (a fixed point)."""
    current = sessions
    while True:
        counts = Counter(item for s in current for item in s.items)
        changed = False
        kept = []
        for s in current:
            keep = [k for k, item in enumerate(s.items) if counts[item] >= min_item_count]
            if len(keep) != len(s.items):
                changed = True
                s = Session(s.user, [s.items[k] for k in keep], [s.times[k] for k in keep])
            if len(s.items) >= min_length:
                kept.append(s)
            else:
                changed = True
        current = kept
        if not changed:
            return current


def chronological_split(
    sessions: list[Session], shares: Sequence[float], key: str = "end"
) -> tuple[list[Session], list[Session], list[Session]]:
    """Order sessions by their last (``key="end"``) or first (``"start"``) click time, then user, then
    start, and cut them into consecutive train / validation / test blocks with the given shares.

    The validation and test sizes are ``round(share * n)``; train takes the rest.
    """
    if len(shares) != 3 or any(s < 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-6:
        raise ValueError(f"split shares must be three non-negative numbers summing to 1, got {list(shares)}")
    if key not in ("end", "start"):
        raise ValueError(f"split key must be 'end' or 'start', got {key!r}")
    if key == "end":
        ordered = sorted(sessions, key=lambda s: (s.end, s.user, s.start))
    else:
        ordered = sorted(sessions, key=lambda s: (s.start, s.user, s.end))
    n = len(ordered)
    n_test = int(round(shares[2] * n))
    n_valid = int(round(shares[1] * n))
    n_train = n - n_valid - n_test
    return ordered[:n_train], ordered[n_train:n_train + n_valid], ordered[n_train + n_valid:]


def build_item_map(blocks: Sequence[Sequence[Sequence]]) -> dict:
    """Original item id -> ``1..N`` in order of first appearance over the given blocks of sequences."""
    mapping: dict = {}
    for block in blocks:
        for seq in block:
            for item in seq:
                if item not in mapping:
                    mapping[item] = len(mapping) + 1
    return mapping


# --------------------------------------------------------------------------- beauty rows
@dataclass
class Row:
    """One (prefix -> next item) example with where it came from."""

    user: str
    inputs: list
    target: object
    target_time: int
    position: int  # index of the target in the user's sequence (>= 1)


def augmented_rows(sessions: list[Session]) -> list[Row]:
    """Every prefix of every session predicts its next item (SR-GNN's augmentation)."""
    rows = []
    for s in sessions:
        for k in range(1, len(s.items)):
            rows.append(Row(s.user, list(s.items[:k]), s.items[k], int(s.times[k]), k))
    return rows


def split_rows_by_target_time(rows: list[Row], test_rows: int, valid_share: float) -> tuple[list, list, list]:
    """Order rows by target time (ties: input order) and take the latest ``test_rows`` as test and the
    latest ``round(valid_share * rest)`` of the rest as validation; train keeps the others (in order)."""
    if test_rows < 0 or test_rows > len(rows):
        raise ValueError(f"test_rows must be in 0..{len(rows)}, got {test_rows}")
    order = sorted(range(len(rows)), key=lambda k: (rows[k].target_time, k))
    rest, test = order[:len(order) - test_rows], order[len(order) - test_rows:]
    n_valid = int(round(valid_share * len(rest)))
    train, valid = rest[:len(rest) - n_valid], rest[len(rest) - n_valid:]
    return [rows[k] for k in train], [rows[k] for k in valid], [rows[k] for k in test]


# --------------------------------------------------------------------------- writing
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


def _shared_stats(examples: dict, item_map: dict, titles: dict) -> dict:
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


# --------------------------------------------------------------------------- protocols
def prepare_movielens(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    gap: int = 600,
    min_item_count: int = 5,
    shares: Sequence[float] = (0.7, 0.1, 0.2),
    split_key: str = "end",
) -> dict:
    """Run the MovieLens protocol (module docstring) from ``src`` into ``out``; returns the statistics."""
    data = read_movielens(src)
    sessions = split_sessions(data.users, data.items, data.times, gap=gap)
    raw_sessions = len(sessions)
    sessions = filter_sessions(sessions, min_item_count=min_item_count)
    if not sessions:
        raise ValueError(f"{src}: no session survives the filters (gap={gap}, min_item_count={min_item_count})")
    blocks = chronological_split(sessions, shares, key=split_key)
    item_map = build_item_map([[s.items for s in block] for block in blocks])
    examples, meta = {}, {}
    for split, block in zip(SPLITS, blocks):
        seqs = [[item_map[i] for i in s.items[:-1]] for s in block]
        targets = [item_map[s.items[-1]] for s in block]
        examples[split] = (seqs, targets)
        meta[split] = (["row", "user_id", "start_time", "end_time", "length"],
                       [(k, s.user, s.start, s.end, len(s.items)) for k, s in enumerate(block)])
    clicks = sum(len(s.items) for s in sessions)
    stats = {
        "dataset": "movielens",
        "source": str(Path(src).resolve()),
        "protocol": {"gap_seconds": gap, "min_item_count": min_item_count, "min_session_length": 2,
                     "split_shares": list(shares), "split_key": split_key, "augmentation": "none"},
        "raw_ratings": len(data.items),
        "raw_sessions": raw_sessions,
        "clicks": clicks,
        "items": len(item_map),
        "sessions": len(sessions),
        "avg_session_length": round(clicks / len(sessions), 4),
        "avg_input_length": round((clicks - len(sessions)) / len(sessions), 4),
        **_shared_stats(examples, item_map, data.titles),
    }
    write_dataset(Path(out), examples, item_map, data.titles, meta, stats)
    return stats


def prepare_beauty(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    test_rows: int = 18_000,
    valid_share: float = 0.1,
    sample_users: float = 1.0,
    sample_seed: int = 0,
) -> dict:
    """Run the Beauty protocol (module docstring) from ``src`` into ``out``; returns the statistics.

    ``sample_users < 1`` keeps a seeded random share of the users (whole sessions, drawn before
    augmentation and splitting) and scales ``test_rows`` by the share of augmented rows kept, so the
    test split keeps the full protocol's share of rows: a documented, cheaper variant for runs (LLM
    intents, many configurations) that the full data would put out of reach.
    """
    if not 0 < sample_users <= 1:
        raise ValueError(f"sample_users must be in (0, 1], got {sample_users}")
    data = read_beauty(src)
    # One session per user: a gap larger than any timestamp difference keeps each user whole.
    sessions = split_sessions(data.users, data.items, data.times, gap=np.iinfo(np.int64).max // 2)
    full_rows = sum(len(sess.items) - 1 for sess in sessions)
    if sample_users < 1:
        keep = np.random.default_rng(sample_seed).random(len(sessions)) < sample_users
        sessions = [sess for sess, k in zip(sessions, keep) if k]
    rows = augmented_rows(sessions)
    if sample_users < 1:
        test_rows = int(round(test_rows * len(rows) / full_rows))
    blocks = split_rows_by_target_time(rows, test_rows, valid_share)
    # Ids in order of first appearance over the users' full sequences (independent of the split).
    item_map = build_item_map([[s.items for s in sessions]])
    examples, meta = {}, {}
    for split, block in zip(SPLITS, blocks):
        examples[split] = ([[item_map[i] for i in r.inputs] for r in block], [item_map[r.target] for r in block])
        meta[split] = (["row", "user_id", "target_position", "target_time"],
                       [(k, r.user, r.position, r.target_time) for k, r in enumerate(block)])
    clicks = sum(len(s.items) for s in sessions)
    stats = {
        "dataset": "beauty",
        "source": str(Path(src).resolve()),
        "protocol": {"session": "one per user", "augmentation": "every prefix -> next item",
                     "test": f"latest {test_rows} rows by target time (ties: file order)",
                     "valid": f"latest {valid_share:.0%} of the remaining rows by target time",
                     "sample": "all users" if sample_users >= 1 else
                     f"seeded subsample: {sample_users:.0%} of users (numpy default_rng({sample_seed})), "
                     "test rows scaled to the full protocol's share"},
        "clicks": clicks,
        "items": len(item_map),
        "users": len(sessions),
        "avg_session_length": round(clicks / len(sessions), 4),
        "augmented_rows": len(rows),
        "train_plus_valid_rows": len(blocks[0]) + len(blocks[1]),
        **_shared_stats(examples, item_map, data.titles),
    }
    write_dataset(Path(out), examples, item_map, data.titles, meta, stats)
    return stats


def format_stats(stats: dict, paper: str | None = None) -> str:
    """A small Markdown table of the statistics, beside the paper's Table 1 when ``paper`` names it."""
    ref = PAPER_TABLE1.get(paper or "", {})
    sp = stats["splits"]
    lines = ["| statistic | ours | paper |", "|---|---:|---:|"]

    def add(name: str, ours: object, key: str | None = None) -> None:
        value = ref.get(key, "") if key else ""
        lines.append(f"| {name} | {ours} | {f'{value:,}' if isinstance(value, int) else value} |")

    add("clicks", f"{stats['clicks']:,}", "clicks")
    add("items", f"{stats['items']:,}", "items")
    if stats["dataset"] == "movielens":
        add("sessions", f"{stats['sessions']:,}")
        add("avg session length (clicks/session)", f"{stats['avg_session_length']:.2f}")
        add("avg input length (clicks/session - 1)", f"{stats['avg_input_length']:.2f}", "avg_input_length")
    else:
        add("users (= sessions)", f"{stats['users']:,}")
        add("avg sequence length", f"{stats['avg_session_length']:.2f}")
        add("augmented rows", f"{stats['augmented_rows']:,}")
        add("train + valid rows", f"{stats['train_plus_valid_rows']:,}", "train")
    for split in SPLITS:
        add(f"{split} rows", f"{sp[split]['rows']:,}", "test" if split == "test" else None)
        add(f"{split} avg input length", f"{sp[split]['avg_input_length']:.2f}")
    add("valid/test targets unseen in train",
        f"{stats['targets_unseen_in_train']['valid']} / {stats['targets_unseen_in_train']['test']}")
    add("items without a title", stats["items_without_title"])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Prepare MovieLens (ML-1M or ML-100K) or Amazon Beauty as SR-GNN pickles "
        "(train.txt/valid.txt/test.txt) plus items.tsv and stats.json.",
    )
    sub = parser.add_subparsers(dest="dataset", required=True)
    ml = sub.add_parser("movielens", help="sessions cut at time gaps, one example per session")
    ml.add_argument("--src", required=True, help="folder with ratings.dat+movies.dat (ML-1M) or u.data+u.item (ML-100K)")
    ml.add_argument("--out", required=True, help="output folder (created); keep it outside the git checkout")
    ml.add_argument("--gap", type=int, default=600, help="start a new session after a gap of more than this many seconds")
    ml.add_argument("--min-item-count", type=int, default=5, help="drop items seen fewer times (iterated with length>=2)")
    ml.add_argument("--split", type=float, nargs=3, default=(0.7, 0.1, 0.2), metavar=("TRAIN", "VALID", "TEST"),
                    help="chronological shares of sessions (default 0.7 0.1 0.2; the paper's ML-1M used about 0.9/0.1 train/test)")
    ml.add_argument("--split-key", choices=("end", "start"), default="end",
                    help="order sessions by the time of their last (end) or first (start) click before cutting")
    ml.add_argument("--paper", choices=("ml-1m", "none"), default="none",
                    help="print the paper's Table 1 numbers beside ours (use ml-1m for ML-1M)")
    be = sub.add_parser("beauty", help="one session per user, prefix augmentation, split by target time")
    be.add_argument("--src", required=True, help="folder with beauty_interactions.tsv and beauty_items.tsv")
    be.add_argument("--out", required=True, help="output folder (created); keep it outside the git checkout")
    be.add_argument("--test-rows", type=int, default=18_000, help="the latest this many (prefix -> next) rows form the test split")
    be.add_argument("--valid-share", type=float, default=0.1, help="share of the remaining rows (latest by target time) used for validation")
    be.add_argument("--sample-users", type=float, default=1.0,
                    help="keep this seeded random share of users (0-1, default 1 = all); --test-rows is scaled to "
                         "keep the full data's test share. For cheaper documented runs, never for headline numbers.")
    be.add_argument("--sample-seed", type=int, default=0, help="seed of --sample-users (default 0)")
    args = parser.parse_args(argv)

    if args.dataset == "movielens":
        stats = prepare_movielens(args.src, args.out, gap=args.gap, min_item_count=args.min_item_count,
                                  shares=args.split, split_key=args.split_key)
        paper = None if args.paper == "none" else args.paper
    else:
        stats = prepare_beauty(args.src, args.out, test_rows=args.test_rows, valid_share=args.valid_share,
                               sample_users=args.sample_users, sample_seed=args.sample_seed)
        paper = "beauty" if args.sample_users >= 1 else None
    print(format_stats(stats, paper))
    print(f"\nwrote {args.out}: train.txt valid.txt test.txt items.tsv item_map.tsv rows_*.tsv stats.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
