"""experiments.training.train on a folder with train.txt and test.txt only (the official SR-GNN pickles)."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pytest

from llm4sbr_adapter.experiments.training.loop import load_splits
from llm4sbr_adapter.experiments.training.train import main as train_main
from llm4sbr_adapter.store import StoreMetadata, sha256_file, write_store


def _folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "sample"
    folder.mkdir()
    rows = {}
    for split, n in (("train", 40), ("test", 10)):
        seqs = [rng.integers(1, 13, size=int(rng.integers(1, 5))).tolist() for _ in range(n)]
        targets = rng.integers(1, 13, size=n).tolist()
        with open(folder / f"{split}.txt", "wb") as f:
            pickle.dump((seqs, targets), f)
        rows[split] = (seqs, targets)
    return folder, rows


@pytest.mark.parametrize("how", ["random", "tail"])
def test_validation_is_carved_from_train_keeping_row_ids(tmp_path, how, caplog):
    folder, rows = _folder(tmp_path)
    with caplog.at_level(logging.WARNING):
        data = load_splits(folder, how, 0.1, seed=3)
    assert "has no valid.txt: validation = 4 rows of train.txt" in caplog.text
    train, valid = data["train"], data["valid"]
    assert len(valid) == 4 and len(train) == 36
    assert sorted(train.ids.tolist() + valid.ids.tolist()) == list(range(40))
    if how == "tail":
        assert valid.ids.tolist() == [36, 37, 38, 39]
    seqs, targets = rows["train"]
    for part in (train, valid):
        assert part.sha256 == sha256_file(folder / "train.txt")
        for k, row in enumerate(part.ids.tolist()):
            assert part.sequence(k) == seqs[row] and int(part.targets[k]) == targets[row]


def _store(path, data_file, n):
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=8, sessions_sha256=sha256_file(data_file))
    rng = np.random.default_rng(1)
    vectors = {p: rng.normal(size=(n, 8)).astype(np.float32) for p in ("long", "short")}
    return write_store(path, np.arange(n), vectors, meta)


def test_train_runs_on_train_and_test_only_with_the_enhancer(tmp_path):
    folder, _ = _folder(tmp_path)
    train_store = _store(tmp_path / "train.safetensors", folder / "train.txt", 40)
    test_store = _store(tmp_path / "test.safetensors", folder / "test.txt", 10)
    out = tmp_path / "run.json"
    argv = ["--data", str(folder), "--epochs", "1", "--hidden-size", "8", "--batch-size", "8", "--quiet"]
    argv += ["--enhancer", "--store-train", str(train_store), "--store-test", str(test_store), "--out", str(out)]
    assert train_main(argv) == 0
    result = json.loads(out.read_text())
    assert result["rows"] == {"train": 36, "valid": 4, "test": 10}
    assert result["log"][0]["train_aux"] != 0
