"""Backbones, metrics, the training harness and the enhancer path of the reproduction harness."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from llm4sbr_adapter.experiments.data.splits import SplitData  # noqa: E402
from llm4sbr_adapter.experiments.evaluation.bootstrap import cluster_bootstrap  # noqa: E402
from llm4sbr_adapter.experiments.evaluation.metrics import per_session_metrics, summarize_ranks, target_ranks  # noqa: E402
from llm4sbr_adapter.experiments.evaluation.summarize import summarize  # noqa: E402
from llm4sbr_adapter.experiments.models.backbones import BACKBONES  # noqa: E402
from llm4sbr_adapter.experiments.models.backbones.srgnn import dense_reference_embeddings  # noqa: E402
from llm4sbr_adapter.experiments.models.batching import iterate_batches, make_batch  # noqa: E402

torch.set_num_threads(1)


# --------------------------------------------------------------------------- metrics
def test_ranks_are_pessimistic_on_ties():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.9], [1.0, 1.0, 1.0, 1.0], [0.0, float("nan"), 0.0, 0.0]])
    ranks = target_ranks(scores, torch.tensor([2, 0, 1]))
    assert ranks.tolist() == [3, 4, 4]
    assert target_ranks(scores[:1], torch.tensor([1])).tolist() == [2]  # tied with item 3 -> rank 2


def test_metrics_by_hand():
    ranks = np.array([1, 3, 5, 6, 21])
    m = summarize_ranks(ranks, ks=(5, 20))
    assert m["HR@5"] == pytest.approx(3 / 5)  # rank 6 = K + 1 counts zero
    assert m["MRR@5"] == pytest.approx((1 + 1 / 3 + 1 / 5) / 5)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(6)) / 5)
    assert m["HR@20"] == pytest.approx(4 / 5)  # rank 21 misses
    assert m["MRR@20"] == pytest.approx((1 + 1 / 3 + 1 / 5 + 1 / 6) / 5)
    per = per_session_metrics(ranks, ks=(5,))
    assert per["HR@5"].tolist() == [1, 1, 1, 0, 0]


def test_cluster_bootstrap_interval():
    rng = np.random.default_rng(0)
    rows = np.arange(400)
    diff, lo, hi = cluster_bootstrap([(np.full(400, 0.1), rows)], resamples=500)
    assert diff == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    diff, lo, hi = cluster_bootstrap([(rng.normal(0, 1, 400), rows)], resamples=500)
    assert lo < diff < hi and lo < 0 < hi


def test_cluster_bootstrap_resamples_users_not_rows():
    # 20 users with 50 rows each; a user's rows share one value (+1 or -1): 1,000 rows but only 20
    # independent draws. Resampling rows would give an interval about sqrt(50) times too narrow.
    values = np.repeat(np.where(np.arange(20) % 2 == 0, 1.0, -1.0), 50)
    users = np.repeat(np.arange(20), 50)
    _, lo_u, hi_u = cluster_bootstrap([(values, users)], resamples=2000)
    _, lo_r, hi_r = cluster_bootstrap([(values, np.arange(1000))], resamples=2000)
    assert (hi_u - lo_u) > 5 * (hi_r - lo_r)
    assert lo_u < -0.3 and hi_u > 0.3  # about +-2 * 1/sqrt(20)


def test_cluster_bootstrap_strata_average_seeds():
    # two seeds with their own test sets: the point is the mean of the two means, not the pooled mean
    a = (np.full(10, 1.0), np.arange(10))
    b = (np.full(30, 0.0), np.arange(30))
    diff, lo, hi = cluster_bootstrap([a, b], resamples=200)
    assert diff == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)


# --------------------------------------------------------------------------- backbones
def _tiny_split(rows: int = 60, items: int = 12, seed: int = 0) -> SplitData:
    """Sessions walking around a cycle: the next item is the last + 1 (learnable)."""
    rng = np.random.default_rng(seed)
    seqs, targets = [], []
    for _ in range(rows):
        start, length = int(rng.integers(1, items + 1)), int(rng.integers(1, 6))
        seq = [(start + k - 1) % items + 1 for k in range(length)]
        seqs.append(seq)
        targets.append(seq[-1] % items + 1)
    return SplitData.from_lists(seqs, targets)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_shapes(name):
    torch.manual_seed(0)
    model = BACKBONES[name](num_items=12, hidden_size=16)
    data = _tiny_split(rows=7)
    batch = make_batch(data, np.arange(7), graph=model.needs_graph)
    h_local, h_global = model.session_embeddings(batch)
    assert h_local.shape == (7, 16) and h_global.shape == (7, 16)
    assert model.scores(model.fuse(h_local, h_global)).shape == (7, 12)
    assert model(batch).shape == (7, 12)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_training_reduces_loss(name):
    torch.manual_seed(0)
    model = BACKBONES[name](num_items=12, hidden_size=16)
    data = _tiny_split()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)

    def epoch_loss(train: bool) -> float:
        model.train(train)
        total = 0.0
        for batch in iterate_batches(data, 20, shuffle=train, graph=model.needs_graph):
            with torch.set_grad_enabled(train):
                loss = torch.nn.functional.cross_entropy(model(batch), batch.targets - 1)
            if train:
                opt.zero_grad()
                loss.backward()
                opt.step()
            total += loss.item() * len(batch.targets)
        return total / len(data)

    before = epoch_loss(False)
    for _ in range(15):
        epoch_loss(True)
    after = epoch_loss(False)
    assert after < before - 0.5, (before, after)


@pytest.mark.parametrize("steps", [1, 2])
def test_srgnn_packed_nodes_match_dense_update(steps):
    """The packed-node GNN (linear maps on real nodes only) equals the dense one, values and gradients."""
    torch.manual_seed(0)
    model = BACKBONES["srgnn"](num_items=30, hidden_size=8, steps=steps)
    rng = np.random.default_rng(1)
    seqs = [rng.integers(1, 31, size=int(rng.integers(1, 12))).tolist() for _ in range(9)]
    seqs[0] = [5, 5, 7, 5, 9, 7] * 3  # repeats and a long row: much padding in the others
    batch = make_batch(SplitData.from_lists(seqs, [1] * 9), np.arange(9), graph=True)
    packed = model.session_embeddings(batch)
    params = [p for name, p in model.named_parameters() if not name.startswith("hybrid")]  # fuse() is not run
    grads = torch.autograd.grad(sum(t.square().sum() for t in packed), params)
    dense = dense_reference_embeddings(model, batch)
    grads_ref = torch.autograd.grad(sum(t.square().sum() for t in dense), params)
    for a, b in zip(packed, dense, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- enhancer path
def _write_dataset(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, seed, rows in (("train", 0, 60), ("valid", 1, 20), ("test", 2, 25)):
        d = _tiny_split(rows=rows, seed=seed)
        seqs = [d.sequence(r) for r in range(len(d))]
        Path(folder / f"{split}.txt").write_bytes(pickle.dumps((seqs, d.targets.tolist())))
    (folder / "items.tsv").write_text("item_id\ttitle\n" + "".join(f"{k}\tItem {k}\n" for k in range(1, 13)))


def _vectors(dim: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    vec = rng.normal(size=(13, dim)).astype(np.float32)
    vec[0] = 0
    return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)


def test_text_mean_store_uses_inputs_only(tmp_path):
    from llm4sbr_adapter.experiments.data.splits import load_split
    from llm4sbr_adapter.experiments.data.text_mean_store import build_text_mean_stores
    from llm4sbr_adapter.store import IntentStore, sha256_file

    _write_dataset(tmp_path / "data")
    vec = _vectors()
    paths = build_text_mean_stores(tmp_path / "data", tmp_path / "stores", item_vectors=vec, encoder_name="toy")
    test = load_split(tmp_path / "data" / "test.txt")
    store = IntentStore.open(paths["test"], sessions_sha256=sha256_file(tmp_path / "data" / "test.txt"))
    out = store.lookup(np.arange(len(test)))
    for row in (0, 5, 24):
        seq = test.sequence(row)
        for name, items in (("long", seq), ("short", seq[-3:])):
            want = vec[items].mean(0)
            want /= np.linalg.norm(want)
            np.testing.assert_allclose(out[name][row].numpy(), want, atol=2.0**-11)  # float16 store (default)
    assert store.metadata.dtype == "float16"
    with pytest.raises(ValueError):  # the test store is tied to test.txt, not train.txt
        IntentStore.open(paths["test"], sessions_sha256=sha256_file(tmp_path / "data" / "train.txt"))


@pytest.mark.parametrize("name", ["srgnn", "stamp"])
def test_train_cli_with_and_without_enhancer(tmp_path, name):
    from llm4sbr_adapter.experiments.data.text_mean_store import build_text_mean_stores
    from llm4sbr_adapter.experiments.training.train import main

    _write_dataset(tmp_path / "data")
    paths = build_text_mean_stores(tmp_path / "data", tmp_path / "stores", item_vectors=_vectors(), encoder_name="toy")
    common = [
        "--data",
        str(tmp_path / "data"),
        "--model",
        name,
        "--epochs",
        "3",
        "--hidden-size",
        "16",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--quiet",
    ]
    assert main(common + ["--out", str(tmp_path / "runs" / "alone_s0.json")]) == 0
    store_args = [x for s in ("train", "valid", "test") for x in (f"--store-{s}", str(paths[s]))]
    assert main(common + ["--enhancer", *store_args, "--out", str(tmp_path / "runs" / "enh_s0.json")]) == 0
    alone = json.loads((tmp_path / "runs" / "alone_s0.json").read_text())
    enh = json.loads((tmp_path / "runs" / "enh_s0.json").read_text())
    assert enh["enhancer"] and enh["parameters"] > alone["parameters"]
    assert any(e["train_aux"] != 0 for e in enh["log"]) and all(e["train_aux"] == 0 for e in alone["log"])
    for res in (alone, enh):
        assert 1 <= res["best_epoch"] <= 3
        best_valid = max(e["valid"]["MRR@20"] for e in res["log"])
        assert res["valid_at_best"]["MRR@20"] == pytest.approx(best_valid)  # test evaluated at the chosen epoch
        ranks = np.load(tmp_path / "runs" / res["ranks_file"])["test_ranks"]
        assert len(ranks) == 25
        assert res["test"]["HR@20"] == pytest.approx(np.mean(ranks <= 20))
    summary = summarize(tmp_path / "runs", resamples=200)
    assert set(summary["table"]) == {name, f"{name} + enhancer"}
    assert set(summary["enhancer_minus_alone"]) == {name}


def test_enhancer_needs_every_store(tmp_path, capsys):
    from llm4sbr_adapter.experiments.data.text_mean_store import build_text_mean_stores
    from llm4sbr_adapter.experiments.training.train import main

    _write_dataset(tmp_path / "data")
    paths = build_text_mean_stores(tmp_path / "data", tmp_path / "stores", item_vectors=_vectors(), encoder_name="toy")
    common = ["--data", str(tmp_path / "data"), "--model", "stamp", "--epochs", "1", "--enhancer", "--quiet"]
    common += ["--out", str(tmp_path / "x.json"), "--store-train", str(paths["train"])]

    def one_line_error() -> str:
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
        return err[0]

    assert main([*common, "--store-valid", str(paths["valid"])]) == 1
    assert "--store-test" in one_line_error()
    # Swapping the valid and test stores is caught by the sha256 of the pickle each store names.
    assert main([*common, "--store-valid", str(paths["test"]), "--store-test", str(paths["valid"])]) == 1
    assert "sessions_sha256" in one_line_error()


def test_shuffled_control_store_permutes_rows(tmp_path):
    from llm4sbr_adapter.experiments.data.text_mean_store import build_text_mean_stores
    from llm4sbr_adapter.store import IntentStore

    _write_dataset(tmp_path / "data")
    real = build_text_mean_stores(tmp_path / "data", tmp_path / "s", item_vectors=_vectors(), encoder_name="toy")
    shuf = build_text_mean_stores(
        tmp_path / "data",
        tmp_path / "s",
        item_vectors=_vectors(),
        encoder_name="toy",
        shuffle_seed=0,
        prefix="shuffled",
    )
    a = IntentStore.open(real["train"]).vectors("long")
    b = IntentStore.open(shuf["train"]).vectors("long")
    perm = np.random.default_rng(0).permutation(len(a))
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a)[perm])
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_named_summary_pairs_shared_seeds_only(tmp_path):
    from llm4sbr_adapter.experiments.evaluation.summarize import load_named_runs, named_markdown

    rng = np.random.default_rng(0)
    for name, seeds, best in (("plain", (0, 1, 2), 50), ("better", (0, 1), 1)):
        for seed in seeds:
            ranks = rng.integers(best, best + 30, size=40)  # "better" ranks everything in its top 31
            np.savez(tmp_path / f"{name}_s{seed}.ranks.npz", test_ranks=ranks)
            res = {
                "seed": seed,
                "test": summarize_ranks(ranks, (10, 20)),
                "seconds_per_epoch_train": 1.0,
                "ranks_file": f"{name}_s{seed}.ranks.npz",
            }
            (tmp_path / f"{name}_s{seed}.json").write_text(json.dumps(res))
    groups = load_named_runs(tmp_path)
    assert {k: [r["seed"] for r in v] for k, v in groups.items()} == {"plain": [0, 1, 2], "better": [0, 1]}
    table = named_markdown(tmp_path, "plain", metrics=("HR@20",), resamples=200)
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    row = next(line for line in table.splitlines() if line.startswith("| better | 0,1 |"))
    cells = dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))
    assert cells["ΔHR@20 vs plain [95% CI]"].endswith("*")  # a clear gain over the baseline on the shared seeds
    plain = {sd: json.loads((tmp_path / f"plain_s{sd}.json").read_text())["test"]["HR@20"] for sd in (0, 1)}
    better = {sd: json.loads((tmp_path / f"better_s{sd}.json").read_text())["test"]["HR@20"] for sd in (0, 1)}
    assert cells["ΔHR@20 per seed"] == " / ".join(f"{100 * (better[sd] - plain[sd]):+.2f}" for sd in (0, 1))
    with pytest.raises(ValueError, match="no runs named missing"):
        named_markdown(tmp_path, "missing")


def test_summarize_metrics_flag_picks_columns_and_rejects_unknown_names(capsys):
    import argparse

    from llm4sbr_adapter.experiments.evaluation.summarize import METRICS, parse_metrics

    parser = argparse.ArgumentParser()
    assert parse_metrics("all", parser) == METRICS
    assert parse_metrics("MRR@20, HR@5", parser) == ("HR@5", "MRR@20")  # table order, not typing order
    with pytest.raises(SystemExit):
        parse_metrics("HR@7", parser)
    assert "HR@7" in capsys.readouterr().err


def test_seen_mask_marks_targets_absent_from_training(tmp_path):
    from llm4sbr_adapter.experiments.evaluation.seen_targets import seen_mask

    (tmp_path / "train.txt").write_bytes(pickle.dumps(([[1, 2], [2, 3]], [4, 2])))  # seen: 1, 2, 3 (inputs), 4 (target)
    (tmp_path / "test.txt").write_bytes(pickle.dumps(([[1], [2], [3]], [4, 5, 3])))
    assert seen_mask(tmp_path).tolist() == [True, False, True]


def test_forgetting_to_switch_the_split_store_raises(tmp_path):
    """Row ids are 0..N-1 in every split: a pass over test rows with the training store bound must fail."""
    from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig
    from llm4sbr_adapter.experiments.data.splits import load_split
    from llm4sbr_adapter.experiments.data.text_mean_store import build_text_mean_stores
    from llm4sbr_adapter.experiments.training.hiphop_srgnn import HiphopRecommender
    from llm4sbr_adapter.experiments.training.hiphop_srgnn import parse_args as hiphop_args
    from llm4sbr_adapter.experiments.training.intent_stores import open_stores
    from llm4sbr_adapter.experiments.training.train import Session
    from llm4sbr_adapter.store import StoreMismatchError

    _write_dataset(tmp_path / "data")
    paths = build_text_mean_stores(tmp_path / "data", tmp_path / "stores", item_vectors=_vectors(), encoder_name="toy")
    data = {split: load_split(tmp_path / "data" / f"{split}.txt") for split in ("train", "valid", "test")}
    stores = open_stores({split: str(paths[split]) for split in data}, data)
    torch.manual_seed(0)
    enhancer = IntentEnhancer(IntentEnhancerConfig(hidden_size=16, text_dim=8), store=stores["train"])
    plain = Session(BACKBONES["narm"](12, 16), enhancer, stores)
    hiphop = HiphopRecommender.from_args(
        hiphop_args(
            [
                "--data",
                str(tmp_path / "data"),
                "--hidden-size",
                "16",
                "--enhancer",
                *[x for s in data for x in (f"--store-{s}", str(paths[s]))],
                "--out",
                str(tmp_path / "x.json"),
            ]
        ),
        12,
        data,
        tmp_path / "data",
    )
    for model in (plain, hiphop):
        test_batch = next(iterate_batches(data["test"], 8, graph=model.needs_graph))
        model.use_split("train")
        with pytest.raises(StoreMismatchError) as err:  # the training store's rows 0..7 are other sessions
            model.loss_and_scores(test_batch, training=False)
        msg = str(err.value)
        assert "\n" not in msg and "test.txt" in msg and str(paths["train"]) in msg
        model.use_split("test")
        ce, _, scores = model.loss_and_scores(test_batch, training=False)
        assert scores.shape == (8, 12) and torch.isfinite(ce)
