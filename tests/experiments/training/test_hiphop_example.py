"""llm4sbr_adapter/experiments/training/hiphop_srgnn.py end to end on a tiny synthetic dataset (no titles encoder
needed)."""

import json
import pickle
import random

import pytest

hiphop_srgnn = pytest.importorskip("llm4sbr_adapter.experiments.training.hiphop_srgnn")


def _write_split(path, rows, num_items, seed):
    rng = random.Random(seed)
    seqs = [[rng.randint(1, num_items) for _ in range(rng.randint(1, 6))] for _ in range(rows)]
    targets = [rng.randint(1, num_items) for _ in range(rows)]
    with open(path, "wb") as handle:
        pickle.dump((seqs, targets), handle)


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [
            "--intents",
            "--neighbours",
            "--contrastive",
            "--hard-negatives",
            "batch",
            "--num-hard-negatives",
            "2",
            "--top-m",
            "4",
        ],
    ],
)
def test_runs_and_writes_results(tmp_path, parts):
    for i, (split, rows) in enumerate((("train", 60), ("valid", 20), ("test", 20))):
        _write_split(tmp_path / f"{split}.txt", rows, 25, seed=i)
    out = tmp_path / "run.json"
    hiphop_srgnn.main(
        [
            "--data",
            str(tmp_path),
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--hidden-size",
            "8",
            "--out",
            str(out),
            "--quiet",
            *parts,
        ]
    )
    result = json.loads(out.read_text())
    assert result["rows"] == {"train": 60, "valid": 20, "test": 20}
    assert 0.0 <= result["test"]["HR@20"] <= 1.0 and result["epochs_run"] >= 1
    assert (tmp_path / "run.ranks.npz").is_file()
    if parts:
        assert result["log"][0]["train_aux"] > 0  # the contrastive loss is on


def test_title_encoder_spec_resolves_to_a_model_folder(tmp_path, monkeypatch):
    from llm4sbr_adapter.offline.llm import transformers_backend

    assert hiphop_srgnn.title_encoder_path(None) is None
    assert hiphop_srgnn.title_encoder_path("default") is None  # TextEncoder's own default (all-MiniLM-L6-v2)
    assert hiphop_srgnn.title_encoder_path(str(tmp_path)) == tmp_path  # a local folder is used as it is
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        hiphop_srgnn.title_encoder_path(str(tmp_path / "no-such-model"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    seen = []
    monkeypatch.setattr(
        transformers_backend, "dequantised_gguf_folder", lambda path: seen.append(path) or tmp_path / "converted"
    )
    assert hiphop_srgnn.title_encoder_path(str(gguf)) == tmp_path / "converted"  # a GGUF goes through the conversion
    assert seen == [gguf]
