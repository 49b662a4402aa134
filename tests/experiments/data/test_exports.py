"""prepare_data --export: the graph codebases' all_train_seq.txt and RecBole atomic files."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest

from llm4sbr_adapter.experiments.data.exports import full_sessions
from llm4sbr_adapter.experiments.data.prepare_data import main as prepare_main


def _beauty(tmp_path: Path, users: int = 40) -> Path:
    """One session per user (Beauty), 2-7 reviews each, so train.txt holds 1-6 prefix rows per session."""
    src = tmp_path / "beauty"
    src.mkdir()
    lines = ["user_id\titem_id\ttimestamp"]
    for u in range(users):
        lines += [f"U{u:03d}\t{'abcdefg'[(u * 3 + k) % 7]}\t{1000 * k + u}" for k in range(2 + u % 6)]
    (src / "beauty_interactions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    titles = "".join(f"{c}\tTitle {c}\n" for c in "abcdefg")
    (src / "beauty_items.tsv").write_text("item_id\ttitle\n" + titles, encoding="utf-8")
    return src


@pytest.fixture
def prepared(tmp_path) -> Path:
    out = tmp_path / "beauty_prepared"
    args = ["beauty", "--src", str(_beauty(tmp_path)), "--out", str(out), "--seed", "1"]
    assert prepare_main([*args, "--export", "graph", "recbole"]) == 0
    return out


def _split(out: Path, split: str) -> tuple[list, list, list[str]]:
    with open(out / f"{split}.txt", "rb") as handle:
        seqs, targets = pickle.load(handle)
    with open(out / f"rows_{split}.tsv", encoding="utf-8") as handle:
        users = [row["user_id"] for row in csv.DictReader(handle, delimiter="\t")]
    return seqs, targets, users


def test_all_train_seq_holds_each_training_session_once(prepared):
    with open(prepared / "all_train_seq.txt", "rb") as handle:
        sessions = pickle.load(handle)
    seqs, targets, users = _split(prepared, "train")
    longest: dict[str, list[int]] = {}
    for seq, target, user in zip(seqs, targets, users, strict=True):
        if len(seq) + 1 > len(longest.get(user, [])):
            longest[user] = [*seq, target]
    assert sorted(map(tuple, sessions)) == sorted(map(tuple, longest.values()))  # one per user: one session each
    assert sum(len(s) - 1 for s in sessions) == len(seqs)  # every prefix row is one position of one session
    assert len(sessions) < len(seqs)  # the augmented rows were not written one by one


def test_full_sessions_keeps_whole_sessions_and_the_last_prefix():
    rows = [
        ("u", [1], 2),
        ("u", [1, 2], 3),  # the same session's next prefix: supersedes the first row
        ("v", [1, 2], 3),  # another user's identical items: a session of its own
        ("u", [7], 8),  # a second session of u
    ]
    assert full_sessions(rows) == [1, 2, 3]
    assert full_sessions([("u", [1, 2], 3), ("u", [4], 5)]) == [0, 1]  # one row per session: all kept


def test_recbole_atomic_files_keep_sessions_rows_and_titles(prepared):
    dest = prepared / "recbole" / prepared.name
    with open(dest / f"{prepared.name}.inter", encoding="utf-8") as handle:
        inter = list(csv.DictReader(handle, delimiter="\t"))
    sessions: dict[str, list[int]] = {}
    for line in inter:
        sessions.setdefault(line["session_id:token"], []).append(int(line["item_id:token"]))
    all_rows = [_split(prepared, split) for split in ("train", "valid", "test")]
    # every row of every split is one prefix of one exported session (RecBole's augmentation gives them back)
    assert sum(len(s) - 1 for s in sessions.values()) == sum(len(r[0]) for r in all_rows)
    for name, items in sessions.items():
        split, row = name.split("-")
        seqs, targets, _ = all_rows[("train", "valid", "test").index(split)]
        assert items == [*seqs[int(row)], targets[int(row)]]
    assert [int(line["event_id:token"]) for line in inter] == list(range(len(inter)))
    for split, (seqs, targets, _) in zip(("train", "valid", "test"), all_rows, strict=True):
        with open(dest / f"{prepared.name}.{split}.inter", encoding="utf-8") as handle:
            lines = list(csv.DictReader(handle, delimiter="\t"))
        assert [int(x["row_id:token"]) for x in lines] == list(range(len(seqs)))
        assert [[int(i) for i in x["item_id_list:token_seq"].split()] for x in lines] == seqs
        assert [int(x["item_id:token"]) for x in lines] == targets
    item_lines = (dest / f"{prepared.name}.item").read_text(encoding="utf-8").splitlines()
    assert item_lines[0] == "item_id:token\ttitle:token_seq"
    assert sorted(line.split("\t")[1] for line in item_lines[1:]) == [f"Title {c}" for c in "abcdefg"]


def test_recbole_reads_the_export_and_the_wrapper_answers_each_split_from_its_store(prepared, tmp_path, monkeypatch):
    """RecBole's benchmark files keep this split; stores keyed by each pickle's row numbers answer their rows."""
    pytest.importorskip("recbole", reason="RecBole is not installed (pip install -e '.[recbole]')")
    from recbole.data import create_dataset, data_preparation

    from llm4sbr_adapter import IntentStore, StoreMetadata, StoreMismatchError, write_store
    from llm4sbr_adapter.hashing import sha256_file
    from llm4sbr_adapter.integrations.recbole_config import recbole_config
    from llm4sbr_adapter.integrations.recbole_wrapper import IntentRecBole

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    sha = {split: sha256_file(prepared / f"{split}.txt") for split in ("train", "valid", "test")}
    stores = {}
    for split in ("train", "valid", "test"):
        n = len(_split(prepared, split)[0])
        vecs = {p: rng.normal(size=(n, 4)).astype(np.float32) for p in ("long", "short")}
        meta = StoreMetadata(perspectives=["long", "short"], text_dim=4, sessions_sha256=sha[split])
        stores[split] = IntentStore.open(write_store(tmp_path / f"{split}.safetensors", list(range(n)), vecs, meta))
    values = {
        "USER_ID_FIELD": "session_id",
        "benchmark_filename": ["train", "valid", "test"],
        "alias_of_item_id": ["item_id_list"],
        "load_col": {"inter": ["row_id", "session_id", "item_id_list", "item_id"]},
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "embedding_size": 8,
        "hidden_size": 8,
        "device": "cpu",
        "use_gpu": False,
        "intent_id_field": "row_id",
    }
    config = recbole_config("GRU4Rec", prepared.name, prepared / "recbole", values)
    train, valid, test = data_preparation(config, create_dataset(config))
    model = IntentRecBole(config, train.dataset, stores=stores)
    for split, data in (("train", train), ("valid", valid), ("test", test)):
        n = len(_split(prepared, split)[0])
        assert model.check_split(data, split, sessions_sha256=sha[split]) == {"rows": n, "found": n}
    # row ids repeat across splits: the train store holds ids 0..n_test-1 too, and only the hash tells them apart
    assert model.check_split(test, "test", stores["train"])["found"] == len(_split(prepared, "test")[0])
    with pytest.raises(StoreMismatchError, match="the test split"):
        model.check_split(test, "test", stores["train"], sessions_sha256=sha["test"])


def test_an_unknown_or_repeated_export_kind_is_refused_by_name(tmp_path, capsys):
    args = ["beauty", "--src", str(_beauty(tmp_path)), "--out", str(tmp_path / "out")]
    assert prepare_main([*args, "--export", "graf"]) == 2
    assert "--export" in capsys.readouterr().err
    assert prepare_main([*args, "--export", "graph", "graph"]) == 2
    assert "twice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_all_train_seq_is_the_same_with_movielens_train_prefixes(tmp_path):
    """--train-rows prefixes writes every prefix of a training session as a row: the export folds them back."""
    src = tmp_path / "mlp"
    src.mkdir()
    lines = []
    for u in range(1, 9):
        items = (1, 2, 3) if u == 2 else (1, 2, 3, 4)
        lines += [f"{u}\t{i}\t4\t{60 * k}" for k, i in enumerate(items)]
    (src / "u.data").write_text("\n".join(lines) + "\n", encoding="latin-1")
    (src / "u.item").write_text("".join(f"{i}|Movie {i} (1995)|x\n" for i in (1, 2, 3, 4)), encoding="latin-1")
    base = ["movielens", "--src", str(src), "--test-share", "0.25", "--valid-share", "0.2", "--seed", "1"]
    assert prepare_main([*base, "--out", str(tmp_path / "last"), "--export", "graph"]) == 0
    assert prepare_main([*base, "--out", str(tmp_path / "pre"), "--train-rows", "prefixes", "--export", "graph"]) == 0
    with open(tmp_path / "last" / "all_train_seq.txt", "rb") as handle:
        last = pickle.load(handle)
    with open(tmp_path / "pre" / "all_train_seq.txt", "rb") as handle:
        pre = pickle.load(handle)
    assert pre == last and len(last) == 5 and sorted(map(len, last)) == [3, 4, 4, 4, 4]
