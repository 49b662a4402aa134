"""Data preparation and batching of the reproduction harness (llm4sbr_adapter.experiments)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from llm4sbr_adapter.experiments.data.prepare_data import (  # noqa: E402
    Session,
    augmented_rows,
    chronological_split,
    filter_sessions,
    prepare_beauty,
    prepare_movielens,
    split_rows_by_target_time,
    split_sessions,
)
from llm4sbr_adapter.experiments.data.splits import SplitData, load_split  # noqa: E402
from llm4sbr_adapter.experiments.models.batching import iterate_batches, make_batch  # noqa: E402


# --------------------------------------------------------------------------- sessions
def test_sessions_split_at_gaps_over_ten_minutes():
    users = ["a"] * 5 + ["b"] * 2
    items = [1, 2, 3, 4, 5, 6, 7]
    # a: 0, 600 (gap exactly 600 -> same session), 1201 (gap 601 -> new), 1300, then b, given out of order
    times = [0, 600, 1201, 1300, 5000, 20, 10]
    sessions = split_sessions(users, items, times, gap=600)
    got = [(s.user, s.items) for s in sessions]
    assert got == [("a", [1, 2]), ("a", [3, 4]), ("a", [5]), ("b", [7, 6])]


def test_equal_timestamps_keep_file_order():
    sessions = split_sessions(["u"] * 3, [9, 8, 7], [5, 5, 5])
    assert sessions[0].items == [9, 8, 7]


def test_filtering_repeats_until_stable():
    # item 9 is seen 5 times at first, but one of its sessions collapses after item 1 (rare) goes,
    # which drops 9 below 5, which then empties more sessions: only a fixed point is acceptable.
    sessions = [Session("u", [1, 9], [0, 1])]
    sessions += [Session("u", [9, 2], [0, 1]) for _ in range(4)]
    sessions += [Session("v", [2, 3], [0, 1]) for _ in range(5)]
    out = filter_sessions(sessions, min_item_count=5)
    flat = [i for s in out for i in s.items]
    counts = {i: flat.count(i) for i in flat}
    assert all(c >= 5 for c in counts.values())
    assert all(len(s.items) >= 2 for s in out)
    assert 9 not in counts and 1 not in counts  # 9 fell to 4 once session [1, 9] shrank to length 1
    assert sorted(counts) == [2, 3]


def test_chronological_split_by_end_time():
    sessions = [
        Session(str(k), [1, 2], [t0, t1]) for k, (t0, t1) in enumerate([(0, 50), (10, 20), (30, 40), (5, 60), (1, 2)])
    ]
    train, valid, test = chronological_split(sessions, (0.6, 0.2, 0.2), key="end")
    ends = [s.end for s in train + valid + test]
    assert ends == sorted(ends)
    assert (len(train), len(valid), len(test)) == (3, 1, 1)
    assert max(s.end for s in train) <= min(s.end for s in valid) <= min(s.end for s in test)
    with pytest.raises(ValueError, match="sum"):
        chronological_split(sessions, (0.5, 0.1, 0.1))


def test_augmented_rows_and_target_time_split():
    sessions = [Session("a", [1, 2, 3], [0, 5, 9]), Session("b", [4, 5], [1, 7])]
    rows = augmented_rows(sessions)
    assert [(r.inputs, r.target) for r in rows] == [([1], 2), ([1, 2], 3), ([4], 5)]
    train, valid, test = split_rows_by_target_time(rows, test_rows=1, valid_share=0.5)
    assert [r.target for r in test] == [3] and [r.target for r in valid] == [5] and [r.target for r in train] == [2]


def _write_ml100k(folder: Path) -> None:
    """A tiny ML-100K look-alike: 3 users, items 1..4 frequent, item 5 rare."""
    lines = []
    t = 1000
    for user in (1, 2, 3):
        for _rep in range(2):  # two sessions per user, 1 hour apart
            for item in (1, 2, 3, 4):
                lines.append(f"{user}\t{item}\t4\t{t}")
                t += 60
            t += 3600
    lines.append(f"1\t5\t3\t{t + 10}")  # a rare item on its own: dropped
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("\n".join(lines) + "\n", encoding="latin-1")
    titles = ["Toy Story (1995)", "GoldenEye (1995)", "Four Rooms (1995)", "Café (1996)", "Rare (1990)"]
    (folder / "u.item").write_bytes(
        "\n".join(f"{k}|{t}|01-Jan-1995||url|0" for k, t in enumerate(titles, 1)).encode("latin-1")
    )


def test_prepare_movielens_end_to_end(tmp_path):
    _write_ml100k(tmp_path / "src")
    stats = prepare_movielens(tmp_path / "src", tmp_path / "out", shares=(0.5, 0.17, 0.33))
    assert stats["sessions"] == 6 and stats["clicks"] == 24 and stats["items"] == 4
    seen = 0
    for split in ("train", "valid", "test"):
        seqs, targets = pickle.loads((tmp_path / "out" / f"{split}.txt").read_bytes())
        assert len(seqs) == len(targets) == stats["splits"][split]["rows"]
        for seq, target in zip(seqs, targets, strict=True):
            assert seq == [1, 2, 3] and target == 4  # input = all but last, target = last (never in the input here)
            assert target not in seq
        seen += len(seqs)
    assert seen == 6
    items = (tmp_path / "out" / "items.tsv").read_text(encoding="utf-8").splitlines()
    assert items[0] == "item_id\ttitle" and items[4] == "4\tCafé (1996)"
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["splits"]["test"]["rows"] == 2


def test_target_is_last_click_not_in_inputs_position(tmp_path):
    # A session 7 -> 8 -> 7: the target (7) legitimately also occurs in the input, but it is the
    # last click's item; the input never contains the last click itself.
    sessions = split_sessions(["u"] * 3, [7, 8, 7], [0, 1, 2])
    assert sessions[0].items[:-1] == [7, 8] and sessions[0].items[-1] == 7


def test_prepare_beauty_counts(tmp_path):
    src = tmp_path / "beauty"
    src.mkdir()
    rows = ["user_id\titem_id\ttimestamp"]
    for u, seq in enumerate([["x", "y", "z"], ["y", "z"], ["x", "z", "y", "x"]]):
        rows += [f"U{u}\t{item}\t{100 * u + k}" for k, item in enumerate(seq)]
    (src / "beauty_interactions.tsv").write_text("\n".join(rows) + "\n")
    (src / "beauty_items.tsv").write_text("item_id\ttitle\nx\tLipstick\ny\t\nz\tSoap\n")
    stats = prepare_beauty(src, tmp_path / "out", test_rows=2, valid_share=0.25)
    assert stats["augmented_rows"] == 2 + 1 + 3
    assert stats["splits"]["test"]["rows"] == 2 and stats["splits"]["valid"]["rows"] == 1
    assert stats["items_without_title"] == 1
    _, targets = pickle.loads((tmp_path / "out" / "test.txt").read_bytes())
    assert len(targets) == 2


def test_prepare_beauty_user_subsample_is_seeded_and_keeps_the_test_share(tmp_path):
    src = tmp_path / "beauty"
    src.mkdir()
    rows = ["user_id\titem_id\ttimestamp"]
    for u in range(200):
        rows += [f"U{u}\t{'abcde'[(u + k) % 5]}\t{1000 * k + u}" for k in range(4)]  # 3 rows per user
    (src / "beauty_interactions.tsv").write_text("\n".join(rows) + "\n")
    (src / "beauty_items.tsv").write_text("item_id\ttitle\n" + "".join(f"{c}\tT{c}\n" for c in "abcde"))
    full = prepare_beauty(src, tmp_path / "full", test_rows=60, valid_share=0.1)
    half = prepare_beauty(src, tmp_path / "half", test_rows=60, valid_share=0.1, sample_users=0.5, sample_seed=3)
    again = prepare_beauty(src, tmp_path / "again", test_rows=60, valid_share=0.1, sample_users=0.5, sample_seed=3)
    assert full["users"] == 200 and 70 < half["users"] < 130
    assert half["users"] == again["users"]
    assert (tmp_path / "half" / "test.txt").read_bytes() == (tmp_path / "again" / "test.txt").read_bytes()
    assert half["splits"]["test"]["rows"] == round(60 * half["augmented_rows"] / full["augmented_rows"])
    assert "seeded subsample: 50% of users" in half["protocol"]["sample"]
    with pytest.raises(ValueError, match="sample_users"):
        prepare_beauty(src, tmp_path / "bad", sample_users=0)


# --------------------------------------------------------------------------- batching
def reference_graph(seq: list[int]):
    """SR-GNN's per-session construction written plainly (no padding node)."""
    nodes = sorted(set(seq))
    index = {item: k for k, item in enumerate(nodes)}
    n = len(nodes)
    a = np.zeros((n, n))
    for u, v in zip(seq[:-1], seq[1:], strict=True):
        a[index[u], index[v]] = 1
    outdeg = a.sum(1)
    indeg = a.sum(0)
    adj_out = np.zeros((n, n))
    adj_in = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if a[i, j]:
                adj_out[i, j] = 1 / outdeg[i]
                adj_in[j, i] = 1 / indeg[j]
    return nodes, [index[x] for x in seq], adj_in, adj_out


def test_vectorised_graph_matches_reference():
    seqs = [[5, 3, 5, 2], [7], [1, 1, 2, 9, 1, 4], [2, 8, 2, 8]]
    data = SplitData.from_lists(seqs, [1, 2, 3, 4])
    batch = make_batch(data, np.arange(4), graph=True)
    g = batch.graph
    for b, seq in enumerate(seqs):
        nodes, alias, adj_in, adj_out = reference_graph(seq)
        n = len(nodes)
        assert g.nodes[b, :n].tolist() == nodes and (g.nodes[b, n:] == 0).all()
        assert g.alias[b, : len(seq)].tolist() == alias
        np.testing.assert_allclose(g.adj_in[b, :n, :n].numpy(), adj_in, atol=1e-7)
        np.testing.assert_allclose(g.adj_out[b, :n, :n].numpy(), adj_out, atol=1e-7)
        assert g.adj_in[b, n:].abs().sum() == 0 and g.adj_out[b, :, n:].abs().sum() == 0


def test_shuffled_batches_keep_row_ids(tmp_path):
    seqs = [[k + 1] * (k % 4 + 1) for k in range(23)]
    targets = [k + 2 for k in range(23)]
    path = tmp_path / "train.txt"
    Path(path).write_bytes(pickle.dumps((seqs, targets)))
    data = load_split(path)
    seen = []
    for batch in iterate_batches(data, 5, shuffle=True, seed=3, graph=True):
        for k, row in enumerate(batch.row_ids.tolist()):
            length = int(batch.lengths[k])
            assert batch.items[k, :length].tolist() == seqs[row]
            assert int(batch.targets[k]) == targets[row]
            assert not batch.mask[k, length:].any()
        seen += batch.row_ids.tolist()
    assert sorted(seen) == list(range(23)) and seen != list(range(23))


def test_max_len_keeps_the_last_clicks():
    data = SplitData.from_lists([[1, 2, 3, 4, 5]], [6])
    batch = make_batch(data, np.array([0]), max_len=2)
    assert batch.items.tolist() == [[4, 5]]


def test_bad_pickle_names_the_row(tmp_path):
    path = tmp_path / "bad.txt"
    Path(path).write_bytes(pickle.dumps(([[1, 2], [0, 3]], [1, 2])))
    with pytest.raises(ValueError, match=r"row 1: input item id 0"):
        load_split(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="bad.txt"):
        load_split(path)


# --------------------------------------------------------------------------- real data
@pytest.mark.data
def test_prepare_ml100k_counts(shared_data, tmp_path):
    src = shared_data / "ml-100k"
    if not (src / "u.data").is_file():
        pytest.skip(f"{src}/u.data is absent")
    stats = prepare_movielens(src, tmp_path / "ml100k")
    assert stats["sessions"] == 2652
    assert stats["clicks"] == 98634
    assert stats["items"] == 1345
    assert abs(stats["avg_session_length"] - 37.19) < 0.01
    assert sum(stats["splits"][s]["rows"] for s in ("train", "valid", "test")) == 2652
    assert stats["splits"]["test"]["rows"] == 530
