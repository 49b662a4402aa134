"""The authors' protocol: the rules of LLM4SBR's released preprocessing, restated here as facts.

Both datasets are split **by user**, not by time, so train and test cover the same period.

``beauty`` (Amazon Beauty 5-core):

1. one session per user: the user's reviews in time order (same-day ties in file order, or in a
   seeded random order with ``tie_seed``, the sensitivity check of docs/results.md);
2. users in a seeded random order (``seed``). The authors took the order of their session-id column,
   which is unrelated to time and cannot be recovered from the public files, so in effect a random
   user split; the first 90 % of users (``1 - test_share``) train, the last 10 % test;
3. every prefix of every session, train and test alike, is a row: input = prefix, target = next item.

``movielens`` (the paper's ML-1M protocol; ML-1M ``::`` files or ML-100K ``u.data``/``u.item``):

1. a user's ratings are grouped into fixed clock windows: the timestamp floored to a multiple of
   ``window`` (600 s) names the session (not gaps between ratings: two ratings 2 s apart across a
   window boundary fall in two sessions);
2. in one pass, every session holding an item seen fewer than ``min_item_count`` (5) times in all
   sessions is dropped whole; then sessions shorter than 2 are dropped;
3. sessions in (user id, window) order; the first 90 % train, the last 10 % test, the cut moved
   forward to the next user boundary so that no user is in two splits (the authors cut at a session
   count, which can split one user);
4. one example per session: input = all clicks but the last, target = the last; no augmentation.
   (``train_rows="prefixes"``, ``prepare_data --train-rows prefixes``: the training split alone gets every
   prefix of each session as a row, as the baselines learn from every transition; valid and test unchanged.)

Both: validation is a seeded random ``valid_share`` (10 %) of the training users, whole users, carved
out of training (never out of test). The authors had no validation split; they reported the best
test score over epochs, which this harness does not do.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm4sbr_adapter.offline.inputs.clicks import clock_windows, user_sort_key

from .dataset_files import SPLITS, shared_stats, write_dataset
from .raw_data import Interactions, Row, Session, augmented_rows, build_item_map, read_beauty, read_movielens
from .split_checks import require_sessions


def drop_sessions_with_rare_items(
    sessions: list[Session], min_item_count: int = 5, min_length: int = 2
) -> list[Session]:
    """Drop, in one pass, every session holding an item seen fewer than ``min_item_count`` times (counted
    over all given sessions), then every session shorter than ``min_length``. Not iterated: an item may
    fall below the threshold afterwards, as in the authors' preprocessing."""
    counts = Counter(item for s in sessions for item in s.items)
    return [
        s for s in sessions if len(s.items) >= min_length and all(counts[item] >= min_item_count for item in s.items)
    ]


def user_split(
    sessions: list[Session],
    *,
    test_share: float = 0.1,
    valid_share: float = 0.1,
    seed: int = 0,
    shuffle_users: bool = False,
) -> tuple[list[Session], list[Session], list[Session]]:
    """Split whole users into train / valid / test.

    Users are ordered by id (:func:`user_sort_key`), or by a permutation drawn from ``seed`` when
    ``shuffle_users``; their sessions, in the given order, are laid end to end. The last ``test_share`` of
    the sessions is test, the cut moved forward to the next user boundary. Then a seeded random
    ``valid_share`` of the remaining users (``round(share * users)``) becomes validation.
    """
    for name, share in (("test_share", test_share), ("valid_share", valid_share)):
        if not 0 <= share < 1:
            raise ValueError(f"{name} must be in [0, 1), got {share}")
    rng = np.random.default_rng(seed)
    by_user: dict[str, list[Session]] = {}
    for s in sessions:
        by_user.setdefault(s.user, []).append(s)
    users = sorted(by_user, key=user_sort_key)
    if shuffle_users:
        users = [users[k] for k in rng.permutation(len(users))]
    ordered = [s for u in users for s in by_user[u]]
    cut = len(ordered) - int(round(test_share * len(ordered)))
    while 0 < cut < len(ordered) and ordered[cut].user == ordered[cut - 1].user:
        cut += 1
    rest, test = ordered[:cut], ordered[cut:]
    rest_users = list(dict.fromkeys(s.user for s in rest))
    n_valid = int(round(valid_share * len(rest_users)))
    valid_users = {rest_users[k] for k in rng.choice(len(rest_users), size=n_valid, replace=False)}
    train = [s for s in rest if s.user not in valid_users]
    valid = [s for s in rest if s.user in valid_users]
    return train, valid, test


def shuffle_ties(data: Interactions, seed: int) -> Interactions:
    """The same interactions in a seeded random file order, so that equal timestamps of a user (same-day
    reviews in Beauty) are ordered at random instead of by the source's item order."""
    perm = np.random.default_rng(seed).permutation(len(data.items))
    return Interactions(
        users=[data.users[k] for k in perm],
        items=[data.items[k] for k in perm],
        times=data.times[perm],
        titles=data.titles,
    )


def last_item_rows(sessions: Sequence[Session]) -> list[Row]:
    """One row per session: input = all clicks but the last, target = the last."""
    return [Row(s.user, list(s.items[:-1]), s.items[-1], int(s.times[-1]), len(s.items) - 1) for s in sessions]


def _examples_and_meta(
    blocks: Sequence[list[Session]], item_map: dict, augment: bool, train_prefixes: bool = False
) -> tuple[dict, dict]:
    """Per split, the SR-GNN ``(sequences, targets)`` and the row provenance (user, position, time).

    ``train_prefixes``: the training split alone gets every prefix of each session as a row, and its
    provenance a ``session`` column (the session's index in the split, shared by its prefixes)."""
    examples: dict[str, tuple[list[list[int]], list[int]]] = {}
    meta: dict[str, tuple[list[str], list[tuple]]] = {}
    header = ["row", "user_id", "target_position", "target_time"]
    for split, block in zip(SPLITS, blocks, strict=True):
        prefixes = augment or (train_prefixes and split == "train")
        rows = augmented_rows(block) if prefixes else last_item_rows(block)
        examples[split] = ([[item_map[i] for i in r.inputs] for r in rows], [item_map[r.target] for r in rows])
        if train_prefixes and split == "train":
            sessions = [k for k, s in enumerate(block) for _ in range(len(s.items) - 1)]
            meta[split] = (
                ["row", "user_id", "session", "target_position", "target_time"],
                [(k, r.user, sessions[k], r.position, r.target_time) for k, r in enumerate(rows)],
            )
        else:
            meta[split] = (header, [(k, r.user, r.position, r.target_time) for k, r in enumerate(rows)])
    return examples, meta


def write_session_split(
    src: str | os.PathLike,
    out: str | os.PathLike,
    data: Interactions,
    blocks: Sequence[list[Session]],
    *,
    dataset: str,
    augment: bool,
    protocol: dict,
    protocol_name: str = "paper",
    train_prefixes: bool = False,
) -> dict:
    """Renumber items, write the dataset folder for the train / valid / test ``blocks`` of sessions
    and return its statistics (Table 1). ``augment``: every prefix is a row, else the last item only;
    ``train_prefixes``: every prefix in the training split only (valid and test keep one row per session)."""
    item_map = build_item_map([[s.items for s in block] for block in blocks])
    examples, meta = _examples_and_meta(blocks, item_map, augment, train_prefixes)
    sessions = [s for block in blocks for s in block]
    clicks = sum(len(s.items) for s in sessions)
    rows = sum(len(examples[split][1]) for split in SPLITS)
    inputs = sum(len(seq) for split in SPLITS for seq in examples[split][0])
    stats = {
        "dataset": dataset,
        "protocol": {"name": protocol_name, **protocol},
        "source": str(Path(src).resolve()),
        "raw_clicks": len(data.items),
        "clicks": clicks,
        "items": len(item_map),
        "users": len({s.user for s in sessions}),
        "sessions": len(sessions),
        "users_per_split": {split: len({s.user for s in block}) for split, block in zip(SPLITS, blocks, strict=True)},
        "avg_session_length": round(clicks / len(sessions), 4),
        "rows": rows,
        "avg_input_length": round(inputs / rows, 4),
        **shared_stats(examples, item_map, data.titles),
    }
    write_dataset(Path(out), examples, item_map, data.titles, meta, stats)
    return stats


def prepare_movielens_paper(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    window: int = 600,
    min_item_count: int = 5,
    test_share: float = 0.1,
    valid_share: float = 0.1,
    seed: int = 0,
    encoding: str | None = None,
    train_rows: str = "last",
) -> dict:
    """The authors' ML-1M protocol (module docstring) from ``src`` into ``out``; returns the statistics.

    ``src`` may hold any MovieLens release; ``encoding`` overrides the release's (see ``read_movielens``).
    ``train_rows="prefixes"`` departs from step 4 for the training split only: every prefix of each
    training session is a row (a b c d gives a->b, a b->c, a b c->d); validation and test are unchanged."""
    if train_rows not in ("last", "prefixes"):
        raise ValueError(f"train_rows must be 'last' or 'prefixes', got {train_rows!r}")
    data = read_movielens(src, encoding)
    windows = clock_windows(data.users, data.items, data.times, window=window)
    sessions = drop_sessions_with_rare_items(windows, min_item_count=min_item_count)
    require_sessions(src, windows, sessions, min_item_count)
    blocks = user_split(sessions, test_share=test_share, valid_share=valid_share, seed=seed)
    protocol = {
        "session": f"clock windows: timestamp floored to {window} s",
        "min_item_count": min_item_count,
        "filter": "sessions holding a rarer item dropped whole, one pass; then length < 2 dropped",
        "user_order": "user id",
        "test_share": test_share,
        "valid_share_of_train_users": valid_share,
        "seed": seed,
        "augmentation": "none" if train_rows == "last" else "train only: every prefix -> next item",
        "train_rows": "one per session" if train_rows == "last" else "every prefix of each session",
        "raw_sessions": len(windows),
    }
    return write_session_split(
        src,
        out,
        data,
        blocks,
        dataset="movielens",
        augment=False,
        protocol=protocol,
        train_prefixes=train_rows == "prefixes",
    )


def prepare_beauty_paper(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    test_share: float = 0.1,
    valid_share: float = 0.1,
    seed: int = 0,
    tie_seed: int | None = None,
) -> dict:
    """The authors' Beauty protocol (module docstring) from ``src`` into ``out``; returns the statistics."""
    data = read_beauty(src)
    if tie_seed is not None:
        data = shuffle_ties(data, tie_seed)
    # One session per user: a window longer than any timestamp keeps each user whole.
    users = clock_windows(data.users, data.items, data.times, window=np.iinfo(np.int64).max)
    sessions = [s for s in users if len(s.items) >= 2]
    require_sessions(src, users, sessions, None)
    blocks = user_split(sessions, test_share=test_share, valid_share=valid_share, seed=seed, shuffle_users=True)
    protocol = {
        "session": "one per user",
        "user_order": f"random permutation, numpy default_rng({seed})",
        "test_share": test_share,
        "valid_share_of_train_users": valid_share,
        "seed": seed,
        "same_time_ties": "file order" if tie_seed is None else f"shuffled, default_rng({tie_seed})",
        "augmentation": "every prefix -> next item, in every split",
    }
    return write_session_split(src, out, data, blocks, dataset="beauty", augment=True, protocol=protocol)
