"""The authors' protocol (llm4sbr_adapter.experiments.data.paper_protocol) and its command line
(llm4sbr_adapter.experiments.data.prepare_data --protocol paper)."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import pytest

from llm4sbr_adapter.experiments.data.paper_protocol import (  # noqa: E402
    clock_windows,
    drop_sessions_with_rare_items,
    prepare_beauty_paper,
    prepare_movielens_paper,
    user_split,
)
from llm4sbr_adapter.experiments.data.prepare_data import main as prepare_main  # noqa: E402
from llm4sbr_adapter.experiments.data.raw_data import Session  # noqa: E402


def test_windows_floor_the_clock_not_gaps():
    # 590 and 610 are 20 s apart but in windows 0 and 1; 610 and 1190 are 580 s apart, both window 1;
    # 1200 starts window 2 even though it follows 1190 by 10 s.
    sessions = clock_windows(["u"] * 4, [1, 2, 3, 4], [590, 610, 1190, 1200], window=600)
    assert [s.items for s in sessions] == [[1], [2, 3], [4]]


def test_windows_order_by_numeric_user_id_then_window():
    users = ["10", "2", "10", "2"]
    sessions = clock_windows(users, [1, 2, 3, 4], [0, 5000, 5000, 0], window=600)
    assert [(s.user, s.items) for s in sessions] == [("2", [4]), ("2", [2]), ("10", [1]), ("10", [3])]


def test_rare_items_drop_whole_sessions_in_one_pass():
    sessions = [Session("a", [1, 2, 9], [0, 1, 2])]  # 9 is rare: the whole session goes, 1 and 2 too
    sessions += [Session("b", [1, 2], [0, 1]) for _ in range(4)]
    sessions += [Session("c", [3], [0])]  # too short
    kept = drop_sessions_with_rare_items(sessions, min_item_count=5)
    assert [s.user for s in kept] == ["b"] * 4
    # one pass: 1 and 2 now occur only 4 times each, and are kept anyway
    assert sum(s.items.count(1) for s in kept) == 4


def test_user_split_keeps_users_whole_and_is_seeded():
    sessions = [Session(str(u), [1, 2], [k, k + 1]) for u in range(40) for k in range(u % 3 + 1)]
    train, valid, test = user_split(sessions, test_share=0.1, valid_share=0.1, seed=4, shuffle_users=True)
    users = [{s.user for s in block} for block in (train, valid, test)]
    assert not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    assert sum(map(len, (train, valid, test))) == len(sessions)
    assert len(users[1]) == round(0.1 * (len(users[0]) + len(users[1])))
    again = user_split(sessions, test_share=0.1, valid_share=0.1, seed=4, shuffle_users=True)
    assert [s.user for s in again[2]] == [s.user for s in test]
    other = user_split(sessions, test_share=0.1, valid_share=0.1, seed=5, shuffle_users=True)
    assert {s.user for s in other[2]} != users[2]


def test_user_split_by_id_moves_the_cut_to_a_user_boundary():
    sessions = [Session(u, [1, 2], [k, k + 1]) for u in ("1", "2", "3") for k in range(3)]
    train, valid, test = user_split(sessions, test_share=0.4, valid_share=0.0)
    # 40 % of 9 sessions = 4: the cut at 5 falls inside user 2, so it moves to 6
    assert [s.user for s in test] == ["3"] * 3 and not valid


def _beauty_folder(tmp_path: Path, users: int = 30) -> Path:
    src = tmp_path / "beauty"
    src.mkdir()
    lines = ["user_id\titem_id\ttimestamp"]
    for u in range(users):
        lines += [f"U{u:03d}\t{'abcdef'[(u + k) % 6]}\t{86400 * (k // 2)}" for k in range(2 + u % 4)]
    (src / "beauty_interactions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    titles = "".join(f"{c}\tT{c}\n" for c in "abcde")
    (src / "beauty_items.tsv").write_text("item_id\ttitle\n" + titles, encoding="utf-8")
    return src


def _rows(out: Path, split: str) -> tuple[list, list, list[dict]]:
    with open(out / f"{split}.txt", "rb") as handle:
        seqs, targets = pickle.load(handle)
    with open(out / f"rows_{split}.tsv", encoding="utf-8") as handle:
        meta = list(csv.DictReader(handle, delimiter="\t"))
    return seqs, targets, meta


def test_beauty_every_prefix_of_every_split_is_a_row(tmp_path):
    src = _beauty_folder(tmp_path)
    stats = prepare_beauty_paper(src, tmp_path / "out", seed=1)
    total, users = 0, {}
    for split in ("train", "valid", "test"):
        seqs, targets, meta = _rows(tmp_path / "out", split)
        for seq, m in zip(seqs, meta, strict=True):
            users.setdefault(m["user_id"], set()).add(split)
            assert len(seq) == int(m["target_position"])
        # the longest row of a user plus its target is the whole sequence; every shorter prefix is there too
        by_user: dict = {}
        for seq, target, m in zip(seqs, targets, meta, strict=True):
            by_user.setdefault(m["user_id"], []).append((seq, target))
        for rows in by_user.values():
            full = max(rows, key=lambda r: len(r[0]))
            whole = full[0] + [full[1]]
            assert sorted(len(s) for s, _ in rows) == list(range(1, len(whole)))
            assert all(s == whole[: len(s)] and t == whole[len(s)] for s, t in rows)
        total += len(seqs)
    assert all(len(splits) == 1 for splits in users.values())
    assert total == stats["rows"] == sum(2 + u % 4 - 1 for u in range(30))


def test_beauty_tie_shuffle_changes_order_not_split(tmp_path):
    src = _beauty_folder(tmp_path)
    plain = prepare_beauty_paper(src, tmp_path / "plain", seed=0)
    shuffled = prepare_beauty_paper(src, tmp_path / "shuffled", seed=0, tie_seed=3)
    assert plain["users_per_split"] == shuffled["users_per_split"]
    users = [m["user_id"] for m in _rows(tmp_path / "plain", "test")[2]]
    assert users == [m["user_id"] for m in _rows(tmp_path / "shuffled", "test")[2]]
    assert "shuffled" in shuffled["protocol"]["same_time_ties"]


def _ml100k_folder(tmp_path: Path) -> Path:
    src = tmp_path / "ml"
    src.mkdir()
    lines = []
    # users 1..6: two windows each of items 1,2,3 (seen 12 times); user 6 also rates item 9 (rare) in window 0
    for u in range(1, 7):
        for w in range(2):
            lines += [f"{u}\t{i}\t4\t{1200 * w + 60 * i}" for i in (1, 2, 3)]
    lines.append(f"6\t9\t3\t{60 * 4}")
    lines.append("7\t1\t3\t0")  # a session of length 1
    (src / "u.data").write_text("\n".join(lines) + "\n", encoding="latin-1")
    (src / "u.item").write_text("".join(f"{i}|Movie {i} (1995)|x\n" for i in (1, 2, 3, 9)), encoding="latin-1")
    return src


def test_movielens_table1_on_a_hand_made_file(tmp_path):
    stats = prepare_movielens_paper(_ml100k_folder(tmp_path), tmp_path / "out", test_share=0.2, valid_share=0.25)
    # 12 windows of users 1..6 plus user 7's; user 6's first window holds item 9 and goes whole,
    # user 7's is too short: 11 sessions of 3 clicks
    assert stats["protocol"]["raw_sessions"] == 13
    assert stats["sessions"] == 11 and stats["clicks"] == 33 and stats["items"] == 3
    assert stats["avg_input_length"] == 2.0
    # test = the last 20 % of sessions in user-id order (round(2.2) = 2 -> user 6's single session and user 5's
    # second, moved forward to a user boundary: all of user 5 and 6 would be 3, so the cut goes to user 6 only)
    sp = stats["splits"]
    assert sp["test"]["rows"] == 1 and stats["users_per_split"]["test"] == 1
    assert stats["users_per_split"]["valid"] == round(0.25 * 5)
    assert sp["train"]["rows"] + sp["valid"]["rows"] + sp["test"]["rows"] == 11
    assert stats["targets_unseen_in_train"] == {"valid": 0, "test": 0}
    seqs, targets, meta = _rows(tmp_path / "out", "test")
    assert meta[0]["user_id"] == "6" and seqs == [[1, 2]] and targets == [3]


def test_cli_prints_table1_beside_the_paper(tmp_path, capsys):
    src = _beauty_folder(tmp_path)
    assert prepare_main(["beauty", "--src", str(src), "--out", str(tmp_path / "out"), "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "| clicks | 103 | 198,502 |" in out and "| test rows |" in out and "18,000" in out
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["protocol"]["name"] == "paper" and stats["protocol"]["seed"] == 2


def test_cli_refuses_a_flag_of_the_other_protocol(tmp_path, capsys):
    src = _beauty_folder(tmp_path)
    code = prepare_main(["beauty", "--src", str(src), "--out", str(tmp_path / "out"), "--test-rows", "5"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --test-rows only apply") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.data
def test_beauty_paper_protocol_matches_table1(shared_data, tmp_path):
    src = shared_data / "beauty"
    if not (src / "beauty_interactions.tsv").is_file():
        pytest.skip(f"{src}/beauty_interactions.tsv is absent")
    stats = prepare_beauty_paper(src, tmp_path / "beauty", seed=0)
    assert stats["clicks"] == 198_502 and stats["items"] == 12_101 and stats["rows"] == 176_139
    assert 17_000 < stats["splits"]["test"]["rows"] < 19_000
    assert abs(stats["avg_input_length"] - 8.66) < 0.05
    assert stats["targets_unseen_in_train"]["test"] < 20


def _ml_prefix_folder(tmp_path: Path) -> Path:
    """Users 1..8, one window each of items 1 2 3 4 (user 2: 1 2 3), so every item is seen >= 5 times."""
    src = tmp_path / "mlp"
    src.mkdir()
    lines = []
    for u in range(1, 9):
        items = (1, 2, 3) if u == 2 else (1, 2, 3, 4)
        lines += [f"{u}\t{i}\t4\t{60 * k}" for k, i in enumerate(items)]
    (src / "u.data").write_text("\n".join(lines) + "\n", encoding="latin-1")
    (src / "u.item").write_text("".join(f"{i}|Movie {i} (1995)|x\n" for i in (1, 2, 3, 4)), encoding="latin-1")
    return src


def test_movielens_train_prefixes_every_prefix_of_train_only(tmp_path, capsys):
    src = _ml_prefix_folder(tmp_path)
    base = ["movielens", "--src", str(src), "--test-share", "0.25", "--valid-share", "0.2", "--seed", "1"]
    assert prepare_main([*base, "--out", str(tmp_path / "last")]) == 0
    capsys.readouterr()
    assert prepare_main([*base, "--out", str(tmp_path / "pre"), "--train-rows", "prefixes"]) == 0
    table = capsys.readouterr().out
    last_seqs, last_targets, _ = _rows(tmp_path / "last", "train")
    seqs, targets, meta = _rows(tmp_path / "pre", "train")
    # each training session a b c d (or a b c) gives a->b, a b->c, a b c->d: one row per transition
    assert len(seqs) == sum(len(s) for s in last_seqs) == 3 * (len(last_seqs) - 1) + 2
    assert [m["session"] for m in meta] == [str(k) for k, s in enumerate(last_seqs) for _ in s]
    for k, (whole, target) in enumerate(zip(last_seqs, last_targets, strict=True)):
        full = [*whole, target]
        mine = [(s, t) for s, t, m in zip(seqs, targets, meta, strict=True) if m["session"] == str(k)]
        assert mine == [(full[:j], full[j]) for j in range(1, len(full))]
        assert [m["target_position"] for m in meta if m["session"] == str(k)] == [str(j) for j in range(1, len(full))]
    names = ("valid.txt", "test.txt", "rows_valid.tsv", "rows_test.tsv", "items.tsv", "item_map.tsv")
    for name in names:
        assert (tmp_path / "pre" / name).read_bytes() == (tmp_path / "last" / name).read_bytes(), name
    stats = json.loads((tmp_path / "pre" / "stats.json").read_text())
    assert stats["protocol"]["train_rows"] == "every prefix of each session"
    assert stats["splits"]["train"]["rows"] == len(seqs)
    assert f"| train rows (every prefix of each session) | {len(seqs)} |" in table
    plain = json.loads((tmp_path / "last" / "stats.json").read_text())
    assert plain["protocol"]["train_rows"] == "one per session" and plain["protocol"]["augmentation"] == "none"


def test_train_rows_is_a_paper_protocol_flag(tmp_path, capsys):
    src = _ml_prefix_folder(tmp_path)
    argv = ["movielens", "--src", str(src), "--out", str(tmp_path / "o"), "--protocol", "temporal"]
    assert prepare_main([*argv, "--train-rows", "prefixes"]) == 2
    assert capsys.readouterr().err.startswith("error: --train-rows only apply")


@pytest.mark.parametrize("dataset", ["movielens", "beauty"])
def test_a_misspelt_data_folder_is_reported_as_missing(tmp_path, capsys, dataset):
    (tmp_path / "ml-100k").mkdir()
    code = prepare_main([dataset, "--src", str(tmp_path / "ml-10k"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: data folder not found: {tmp_path / 'ml-10k'} (no such folder)")
    assert "no MovieLens ratings found" not in err
