"""examples/hiphop_srgnn.py end to end on a tiny synthetic dataset (no titles encoder needed)."""

import json
import pickle
import random

import pytest

hiphop_srgnn = pytest.importorskip("examples.hiphop_srgnn")


def _write_split(path, rows, num_items, seed):
    rng = random.Random(seed)
    seqs = [[rng.randint(1, num_items) for _ in range(rng.randint(1, 6))] for _ in range(rows)]
    targets = [rng.randint(1, num_items) for _ in range(rows)]
    with open(path, "wb") as handle:
        pickle.dump((seqs, targets), handle)


@pytest.mark.parametrize("parts", [[], ["--intents", "--neighbours", "--contrastive", "--hard-negatives", "batch",
                                        "--num-hard-negatives", "2", "--top-m", "4"]])
def test_runs_and_writes_results(tmp_path, parts):
    for i, (split, rows) in enumerate((("train", 60), ("valid", 20), ("test", 20))):
        _write_split(tmp_path / f"{split}.txt", rows, 25, seed=i)
    out = tmp_path / "run.json"
    hiphop_srgnn.main(["--data", str(tmp_path), "--epochs", "2", "--batch-size", "16", "--hidden-size", "8",
                       "--out", str(out), "--quiet", *parts])
    result = json.loads(out.read_text())
    assert result["rows"] == {"train": 60, "valid": 20, "test": 20}
    assert 0.0 <= result["test"]["HR@20"] <= 1.0 and result["epochs_run"] >= 1
    assert (tmp_path / "run.ranks.npz").is_file()
    if parts:
        assert result["log"][0]["train_aux"] > 0  # the contrastive loss is on
