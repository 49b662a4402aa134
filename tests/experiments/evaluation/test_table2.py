"""experiments.evaluation.table2 and experiments.evaluation.bootstrap: seeds paired, users as clusters, the best
baseline chosen on
validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llm4sbr_adapter.experiments.evaluation.bootstrap import paired_difference, user_clusters  # noqa: E402
from llm4sbr_adapter.experiments.evaluation.metrics import summarize_ranks  # noqa: E402
from llm4sbr_adapter.experiments.evaluation.table2 import best_baseline, table2  # noqa: E402


def _data(folder: Path, users: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["row\tuser_id\ttarget_position\ttarget_time"] + [f"{k}\t{u}\t1\t0" for k, u in enumerate(users)]
    (folder / "rows_test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _run(
    folder: Path, name: str, seed: int, ranks: np.ndarray, data: Path, valid_mrr: float = 0.1, edge: list | None = None
) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{name}_s{seed}.ranks.npz", test_ranks=ranks)
    res = {
        "seed": seed,
        "data": str(data),
        "test": summarize_ranks(ranks, (5, 10, 20)),
        "best_epoch": 1,
        "select_metric": "MRR@20",
        "valid_at_best": {"MRR@20": valid_mrr},
        "seconds_per_epoch_train": 1.0,
        "ranks_file": f"{name}_s{seed}.ranks.npz",
        "config": {"on_edge": edge or []},
    }
    (folder / f"{name}_s{seed}.json").write_text(json.dumps(res))
    return {**res, "_path": folder / f"{name}_s{seed}.json"}


def test_clusters_come_from_rows_test(tmp_path):
    data = _data(tmp_path, ["u", "v", "u"])
    assert user_clusters(data, 3).tolist() == [0, 1, 0]
    assert user_clusters(tmp_path / "none", 3) is None
    with pytest.raises(ValueError, match="outside the 2 test rows"):
        user_clusters(data, 2)


def test_paired_difference_refuses_runs_on_different_data(tmp_path):
    a = _run(tmp_path / "r", "a", 0, np.ones(3, dtype=np.int64), _data(tmp_path / "d0", ["u"] * 3))
    b = _run(tmp_path / "r", "b", 0, np.ones(3, dtype=np.int64), _data(tmp_path / "d1", ["u"] * 3))
    with pytest.raises(ValueError, match="different data"):
        paired_difference([a], [b], "HR@20")


def test_per_seed_differences_on_their_own_test_sets(tmp_path):
    runs_a, runs_b = [], []
    for seed, gain in ((0, 1.0), (1, 0.0)):
        data = _data(tmp_path / f"seed{seed}", [f"u{k // 5}" for k in range(40)])
        miss = np.full(40, 100, dtype=np.int64)
        runs_a.append(_run(tmp_path / "r", "a", seed, miss, data))
        runs_b.append(_run(tmp_path / "r", "b", seed, np.ones(40, dtype=np.int64) if gain else miss, data))
    d = paired_difference(runs_a, runs_b, "HR@20", resamples=200)
    assert d.per_seed == {0: 1.0, 1: 0.0} and d.diff == pytest.approx(0.5) and d.clustered


def test_table2_best_baseline_is_chosen_on_validation(tmp_path):
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        data = _data(tmp_path / f"seed{seed}", [f"u{k // 4}" for k in range(80)])
        # sr: better on test, worse on validation; sknn is the one validation picks
        _run(tmp_path / "res", "sr", seed, rng.integers(1, 5, 80), data, valid_mrr=0.05)
        _run(tmp_path / "res", "sknn", seed, rng.integers(1, 60, 80), data, valid_mrr=0.2, edge=["k=2000"] * seed)
        _run(tmp_path / "res", "srgnn", seed, rng.integers(1, 60, 80), data)
        _run(tmp_path / "res", "srgnn_enh", seed, rng.integers(1, 60, 80), data)
        _run(tmp_path / "shuf", "srgnn_enh", seed, rng.integers(1, 60, 80), data)
    text, out = table2(tmp_path / "res", tmp_path / "shuf", resamples=200)
    assert out["best_baseline"] == "sknn"
    titles = [row["comparison"] for row in out["differences"]]
    assert titles == [
        "SR-GNN + text-mean − SR-GNN",
        "SR-GNN + text-mean − SR-GNN + shuffled text-mean",
        "SR-GNN − SKNN (best baseline)",
        "SR-GNN + text-mean − SKNN (best baseline)",
    ]
    assert "not resolved" in text  # same-distribution ranks: no difference is resolved
    assert "| SKNN ‡ | 2 |" in text and "| sequential rules (SR) | 2 |" in text  # seed 1's k is on its grid's edge
    assert best_baseline({"srgnn": []}) is None


def test_versus_adds_comparisons_with_named_baselines(tmp_path):
    rng = np.random.default_rng(1)
    data = _data(tmp_path / "seed0", [f"u{k // 4}" for k in range(80)])
    _run(tmp_path / "res", "sr", 0, rng.integers(1, 60, 80), data, valid_mrr=0.2)
    _run(tmp_path / "res", "vstan", 0, np.ones(80, dtype=np.int64), data, valid_mrr=0.1)  # best on test
    _run(tmp_path / "res", "srgnn", 0, rng.integers(1, 60, 80), data)
    _run(tmp_path / "res", "srgnn_enh", 0, rng.integers(1, 60, 80), data)
    # the validation choice (sr) is not repeated; vstan joins every backbone variant
    _, out = table2(tmp_path / "res", None, resamples=200, versus=["vstan", "sr"])
    titles = [row["comparison"] for row in out["differences"]]
    assert titles == [
        "SR-GNN + text-mean − SR-GNN",
        "SR-GNN − sequential rules (SR) (best baseline)",
        "SR-GNN − V-STAN",
        "SR-GNN + text-mean − sequential rules (SR) (best baseline)",
        "SR-GNN + text-mean − V-STAN",
    ]
    vstan = out["differences"][2]["MRR@20"]
    assert vstan["diff"] < 0 and vstan["hi"] < 0  # every V-STAN target ranks first: resolved
    with pytest.raises(ValueError, match="--versus: no runs of stan"):
        table2(tmp_path / "res", None, resamples=200, versus=["stan"])
    with pytest.raises(ValueError, match="--versus: srgnn is not a simple baseline"):
        table2(tmp_path / "res", None, resamples=200, versus=["srgnn"])


def test_folders_with_the_same_test_rows_are_resampled_together(tmp_path):
    # ML-100K under the paper protocol: every seed has its own folder but the same test rows. Seed 0's
    # difference is the exact opposite of seed 1's row by row, so their row-wise mean is 0 everywhere and
    # a joint resample has no spread; resampling the two folders independently would have.
    runs_a, runs_b = [], []
    hits = np.where(np.arange(40) % 2 == 0, 1, 100)
    for seed, ranks in ((0, hits), (1, np.where(hits == 1, 100, 1))):
        data = _data(tmp_path / f"seed{seed}", [f"u{k // 5}" for k in range(40)])
        (data / "test.txt").write_bytes(b"same rows")
        runs_a.append(_run(tmp_path / "r", "a", seed, np.full(40, 100, dtype=np.int64), data))
        runs_b.append(_run(tmp_path / "r", "b", seed, ranks.astype(np.int64), data))
    d = paired_difference(runs_a, runs_b, "HR@20", resamples=300)
    assert d.lo == pytest.approx(0.5) and d.hi == pytest.approx(0.5)
    (tmp_path / "seed1" / "test.txt").write_bytes(b"other rows")
    d = paired_difference(runs_a, runs_b, "HR@20", resamples=300)
    assert d.hi - d.lo > 0.05


def test_table2_compares_llm_rows_with_text_mean_shuffled_and_best_baseline(tmp_path):
    data = _data(tmp_path / "seed0", [f"u{k // 4}" for k in range(40)])
    hit, miss = np.ones(40, dtype=np.int64), np.full(40, 100, dtype=np.int64)
    half = np.where(np.arange(40) % 2 == 0, 1, 100)
    for name, ranks in (
        ("sknn", half),
        ("srgnn", miss),
        ("srgnn_enh", miss),
        ("srgnn_llm", hit),
        ("srgnn_llmshuf", half),
        ("llm_zeroshot", miss),
    ):
        _run(tmp_path / "res", name, 0, ranks, data)
    text, out = table2(tmp_path / "res", None, resamples=100)
    diffs = {row["comparison"]: row["HR@20"]["diff"] for row in out["differences"]}
    assert diffs["SR-GNN + LLM − SR-GNN + text-mean"] == pytest.approx(1.0)
    assert diffs["SR-GNN + LLM − SR-GNN + shuffled LLM"] == pytest.approx(0.5)
    assert diffs["SR-GNN + LLM − SR-GNN"] == pytest.approx(1.0)
    assert diffs["SR-GNN + LLM − SKNN (best baseline)"] == pytest.approx(0.5)
    assert diffs["LLM zero-shot (intents alone) − SKNN (best baseline)"] == pytest.approx(-0.5)
    assert [out["groups"][n]["kind"] for n in ("srgnn_llm", "srgnn_llmshuf")] == ["llm", "llm shuffled"]
    assert list(out["groups"])[-3:] == ["srgnn_llm", "srgnn_llmshuf", "llm_zeroshot"]
    assert "| SR-GNN + shuffled LLM | 1 |" in text
