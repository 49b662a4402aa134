"""The temporal protocol: splits by time, so that every test target comes after every training target.

Stricter and closer to deployment than the authors' user split (:mod:`llm4sbr_adapter.experiments.data.paper_protocol`).

``movielens``: sessions cut at gaps of more than ``gap`` seconds; items seen fewer than
``min_item_count`` times removed and sessions shorter than 2 dropped, repeated until stable;
sessions ordered by their last click and cut into train / valid / test by shares; one example per
session (input = all clicks but the last, target = the last).

``beauty``: one session per user; every prefix predicts the next item; rows ordered by the
timestamp of their target, the latest ``test_rows`` form the test split, the latest ``valid_share``
of the rest the validation split.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .dataset_files import SPLITS, shared_stats, write_dataset
from .raw_data import Row, Session, augmented_rows, build_item_map, read_beauty, read_movielens, split_sessions
from .split_checks import require_sessions


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
    return ordered[:n_train], ordered[n_train : n_train + n_valid], ordered[n_train + n_valid :]


def split_rows_by_target_time(rows: list[Row], test_rows: int, valid_share: float) -> tuple[list, list, list]:
    """Order rows by target time (ties: input order) and take the latest ``test_rows`` as test and the
    latest ``round(valid_share * rest)`` of the rest as validation; train keeps the others (in order)."""
    if test_rows < 0 or test_rows > len(rows):
        raise ValueError(f"test_rows must be in 0..{len(rows)}, got {test_rows}")
    order = sorted(range(len(rows)), key=lambda k: (rows[k].target_time, k))
    rest, test = order[: len(order) - test_rows], order[len(order) - test_rows :]
    n_valid = int(round(valid_share * len(rest)))
    train, valid = rest[: len(rest) - n_valid], rest[len(rest) - n_valid :]
    return [rows[k] for k in train], [rows[k] for k in valid], [rows[k] for k in test]


def prepare_movielens(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    gap: int = 600,
    min_item_count: int = 5,
    shares: Sequence[float] = (0.7, 0.1, 0.2),
    split_key: str = "end",
    encoding: str | None = None,
) -> dict:
    """Run the MovieLens protocol (module docstring) from ``src`` into ``out``; returns the statistics.

    ``src`` may hold any MovieLens release; ``encoding`` overrides the release's (see ``read_movielens``)."""
    data = read_movielens(src, encoding)
    sessions = split_sessions(data.users, data.items, data.times, gap=gap)
    raw = sessions
    raw_sessions = len(sessions)
    sessions = filter_sessions(sessions, min_item_count=min_item_count)
    require_sessions(src, raw, sessions, min_item_count, iterated=True)
    blocks = chronological_split(sessions, shares, key=split_key)
    item_map = build_item_map([[s.items for s in block] for block in blocks])
    examples: dict[str, tuple[list[list[int]], list[int]]] = {}
    meta: dict[str, tuple[list[str], list[Sequence]]] = {}  # split -> (rows_<split>.tsv header, its rows)
    for split, block in zip(SPLITS, blocks, strict=True):
        seqs = [[item_map[i] for i in s.items[:-1]] for s in block]
        targets = [item_map[s.items[-1]] for s in block]
        examples[split] = (seqs, targets)
        meta[split] = (
            ["row", "user_id", "start_time", "end_time", "length"],
            [(k, s.user, s.start, s.end, len(s.items)) for k, s in enumerate(block)],
        )
    clicks = sum(len(s.items) for s in sessions)
    stats = {
        "dataset": "movielens",
        "source": str(Path(src).resolve()),
        "protocol": {
            "gap_seconds": gap,
            "min_item_count": min_item_count,
            "min_session_length": 2,
            "split_shares": list(shares),
            "split_key": split_key,
            "augmentation": "none",
        },
        "raw_ratings": len(data.items),
        "raw_sessions": raw_sessions,
        "clicks": clicks,
        "items": len(item_map),
        "sessions": len(sessions),
        "avg_session_length": round(clicks / len(sessions), 4),
        "avg_input_length": round((clicks - len(sessions)) / len(sessions), 4),
        **shared_stats(examples, item_map, data.titles),
    }
    write_dataset(Path(out), examples, item_map, data.titles, meta, stats)
    return stats


def _beauty_protocol(test_rows: int, valid_share: float, sample_users: float, sample_seed: int) -> dict[str, str]:
    """How the Beauty rows were made, as stats.json describes it."""
    return {
        "session": "one per user",
        "augmentation": "every prefix -> next item",
        "test": f"latest {test_rows} rows by target time (ties: file order)",
        "valid": f"latest {valid_share:.0%} of the remaining rows by target time",
        "sample": "all users"
        if sample_users >= 1
        else f"seeded subsample: {sample_users:.0%} of users (numpy default_rng({sample_seed})), "
        "test rows scaled to the full protocol's share",
    }


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
        sessions = [sess for sess, k in zip(sessions, keep, strict=True) if k]
    rows = augmented_rows(sessions)
    if sample_users < 1:
        test_rows = int(round(test_rows * len(rows) / full_rows))
    blocks = split_rows_by_target_time(rows, test_rows, valid_share)
    # Ids in order of first appearance over the users' full sequences (independent of the split).
    item_map = build_item_map([[s.items for s in sessions]])
    examples: dict[str, tuple[list[list[int]], list[int]]] = {}
    meta: dict[str, tuple[list[str], list[Sequence]]] = {}  # split -> (rows_<split>.tsv header, its rows)
    for split, block in zip(SPLITS, blocks, strict=True):
        examples[split] = ([[item_map[i] for i in r.inputs] for r in block], [item_map[r.target] for r in block])
        meta[split] = (
            ["row", "user_id", "target_position", "target_time"],
            [(k, r.user, r.position, r.target_time) for k, r in enumerate(block)],
        )
    clicks = sum(len(s.items) for s in sessions)
    stats = {
        "dataset": "beauty",
        "source": str(Path(src).resolve()),
        "protocol": _beauty_protocol(test_rows, valid_share, sample_users, sample_seed),
        "clicks": clicks,
        "items": len(item_map),
        "users": len(sessions),
        "avg_session_length": round(clicks / len(sessions), 4),
        "augmented_rows": len(rows),
        "train_plus_valid_rows": len(blocks[0]) + len(blocks[1]),
        **shared_stats(examples, item_map, data.titles),
    }
    write_dataset(Path(out), examples, item_map, data.titles, meta, stats)
    return stats
