"""intent_quality on a case small enough to rank by hand.

Catalogue (2-d title vectors): e1 = (1, 0), e2 = (0, 1), e3 = (1, 1)/sqrt2, e4 = (1, -1)/sqrt2.
Split: row 0 inputs [1] -> target 3; row 1 inputs [2] -> target 1.
Store (top_f = 2; intent vector = sum of weight * title vector):
  long:  row 0 snapped 2 (0.6), 3 (0.4);  row 1 snapped 1 (0.7), 4 (0.3)
  short: row 0 snapped 1 (0.5), 4 (0.5);  row 1 snapped 3 (1.0), -1 (an empty slot)
Ranks worked out in the comments below (pessimistic ties: rank = number of items scoring >= the target).
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from llm4sbr_adapter.config import ConfigError
from llm4sbr_adapter.experiments.evaluation.intent_quality import IntentQualityConfig, IntentQualityError, main, run
from llm4sbr_adapter.experiments.evaluation.table2 import table2
from llm4sbr_adapter.hashing import sha256_file
from llm4sbr_adapter.offline.inputs.catalogue import read_catalogue
from llm4sbr_adapter.store import StoreMetadata, write_store

R2 = 1 / math.sqrt(2)
ITEMS = np.array([[0, 0], [1, 0], [0, 1], [R2, R2], [R2, -R2]], dtype=np.float32)  # row 0 = padding


def _data(tmp_path: Path) -> Path:
    with open(tmp_path / "valid.txt", "wb") as f:
        pickle.dump(([[1], [2]], [3, 1]), f)
    with open(tmp_path / "train.txt", "wb") as f:  # votes 1->3 1, 1->2 1/2, 3->2 1
        pickle.dump(([[1, 3]], [2]), f)
    (tmp_path / "items.tsv").write_text("item_id\ttitle\n1\ta\n2\tb\n3\tc\n4\td\n", encoding="utf-8")
    return tmp_path


def _store(data: Path, name: str = "s.safetensors", sessions: str = "valid.txt") -> Path:
    top = {"long": np.array([[1, 2], [0, 3]]), "short": np.array([[0, 3], [2, -1]])}  # rows of item_ids
    weights = {"long": np.array([[0.6, 0.4], [0.7, 0.3]]), "short": np.array([[0.5, 0.5], [1.0, 0.0]])}
    intents = {}
    for p in top:
        vec = np.zeros((2, 2), dtype=np.float32)
        for r in range(2):
            for j in range(2):
                if top[p][r, j] >= 0:
                    vec[r] += weights[p][r, j] * ITEMS[top[p][r, j] + 1]
        intents[p] = vec
    meta = StoreMetadata(
        perspectives=["long", "short"],
        text_dim=2,
        top_f=2,
        catalogue_sha256=read_catalogue(data / "items.tsv").sha256,
        sessions_source=sessions,
        sessions_sha256=sha256_file(data / sessions),
    )
    return write_store(
        data / name,
        [0, 1],
        intents,
        meta,
        top_items=top,
        top_weights={p: w.astype(np.float32) for p, w in weights.items()},
        item_ids=[1, 2, 3, 4],
    )


def _by_name(rows):
    return {(r.name.split(": ")[-1], r.own_items_last): r for r in rows}


def test_hand_computed_ranks(tmp_path):
    data = _data(tmp_path)
    store = _store(data)
    rows = _by_name(run(IntentQualityConfig(str(data), stores=(str(store),), ks=(1, 2), control_window=1), ITEMS))
    ndcg2 = 1 / math.log2(3)

    # long: row 0 ranks 2, 3 (snapped), then 1 (cos .31), 4 -> target 3 at 2; row 1 ranks 1, 4, then 3, 2 -> rank 1.
    # Own items last changes nothing above the targets. Top-1 items 2 and 1: neither is the row's own input.
    for last in (False, True):
        long = rows[("long", last)]
        assert long.metrics["HR@1"] == pytest.approx(0.5)
        assert long.metrics["HR@2"] == pytest.approx(1.0)
        assert long.metrics["MRR@2"] == pytest.approx((0.5 + 1.0) / 2)
        assert long.metrics["NDCG@2"] == pytest.approx((ndcg2 + 1.0) / 2)
        assert long.top1_own_share == 0.0 and long.distinct_top1 == 2

    # short: row 0 snapped 1 and 4 tie at 0.5, then 3 (cos .38) -> rank 3; row 1 snapped 3, then 1 and 2 tie
    # (cos .71 each) -> rank 3. Own items last: row 0 drops 1 -> rank 2; row 1 drops 2 -> rank 2.
    short, short_last = rows[("short", False)], rows[("short", True)]
    assert short.metrics["HR@2"] == 0.0 and short.metrics["MRR@2"] == 0.0
    assert short_last.metrics["HR@2"] == pytest.approx(1.0)
    assert short_last.metrics["MRR@2"] == pytest.approx(0.5)
    assert short_last.metrics["NDCG@2"] == pytest.approx(ndcg2)
    # top-1 of row 0 is item 1 (first of the tie), its own input; row 1's is item 3
    assert short.top1_own_share == pytest.approx(0.5) and short.distinct_top1 == 2
    assert short_last.distinct_top1 == 2  # items 4 and 3

    # together (weights summed): row 0: 2 (.6), 1 and 4 (.5), 3 (.4) -> rank 4; own last -> rank 3.
    # row 1: 3 (1.0), 1 (.7) -> rank 2 either way.
    both, both_last = rows[("together", False)], rows[("together", True)]
    assert both.metrics["HR@2"] == pytest.approx(0.5) and both.metrics["MRR@2"] == pytest.approx(0.25)
    assert both.metrics["NDCG@2"] == pytest.approx(0.5 * ndcg2)
    assert both_last.metrics["HR@2"] == pytest.approx(0.5)
    assert both.top1_own_share == 0.0

    # control: row 0 mean = e1 -> 1, then 3 and 4 tie (cos .71) -> rank 3; row 1 mean = e2 -> 2, 3, then 1 -> rank 3.
    # Own items last: rank 2 in both rows; the top-1 item is the row's own input in both rows.
    control, control_last = rows[("mean title, all inputs", False)], rows[("mean title, all inputs", True)]
    assert control.metrics["HR@2"] == 0.0
    assert control_last.metrics["HR@2"] == pytest.approx(1.0) and control_last.metrics["MRR@2"] == pytest.approx(0.5)
    assert control.top1_own_share == pytest.approx(1.0) and control.distinct_top1 == 2
    assert control_last.distinct_top1 == 1  # item 3 in both rows

    # transitions: row 0 [1] votes 3 (1), 2 (1/2) -> target 3 at rank 1; row 1 [2] has no votes, so the
    # title cosine ranks 2, 3, then 1 -> rank 3 (own items last: rank 2).
    votes, votes_last = (
        rows[("train transitions, then mean title", False)],
        rows[("train transitions, then mean title", True)],
    )
    assert votes.metrics["HR@1"] == pytest.approx(0.5) and votes.metrics["MRR@2"] == pytest.approx(0.5)
    assert votes_last.metrics["HR@2"] == pytest.approx(1.0) and votes_last.metrics["MRR@2"] == pytest.approx(0.75)


def test_store_of_another_split_is_refused(tmp_path, capsys):
    data = _data(tmp_path)
    with open(data / "other.txt", "wb") as f:
        pickle.dump(([[1], [3]], [2, 2]), f)
    store = _store(data, "other.safetensors", sessions="other.txt")
    with pytest.raises(IntentQualityError, match="not on .*valid.txt"):
        run(IntentQualityConfig(str(data), stores=(str(store),)), ITEMS)
    assert main(["--data", str(data), "--store", str(store), "--store", str(store)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "other.txt" in err[0]


def _test_split(data: Path) -> Path:
    """The hand-made rows as the test split, users u and v (one row each) in rows_test.tsv."""
    (data / "test.txt").write_bytes((data / "valid.txt").read_bytes())
    (data / "rows_test.tsv").write_text("row\tuser_id\ttarget_position\ttarget_time\n0\tu\t1\t0\n1\tv\t1\t0\n")
    return _store(data, "test.safetensors", sessions="test.txt")


def test_runs_writes_the_zero_shot_run_table2_reads(tmp_path):
    (tmp_path / "d").mkdir()
    data = _data(tmp_path / "d")
    store = _test_split(data)
    runs = tmp_path / "runs"
    for name, last in (("llm_zeroshot", False), ("llm_zeroshot_ownlast", True)):
        config = IntentQualityConfig(
            str(data), split="test", stores=(str(store),), runs=str(runs), name=name, seed=2, own_items_last=last
        )
        run(config, ITEMS)
    # together (test_hand_computed_ranks): row 0 rank 4 (own items last: 3), row 1 rank 2
    plain = json.loads((runs / "llm_zeroshot_s2.json").read_text())
    ranks = np.load(runs / plain["ranks_file"])
    assert ranks["test_ranks"].tolist() == [4, 2] and ranks["test_targets"].tolist() == [3, 1]
    assert np.load(runs / "llm_zeroshot_ownlast_s2.ranks.npz")["test_ranks"].tolist() == [3, 2]
    assert plain["seed"] == 2 and plain["data"] == str(data.resolve()) and plain["config"]["view"] == "together"
    assert plain["test"]["HR@5"] == 1.0 and plain["test"]["MRR@20"] == pytest.approx((1 / 4 + 1 / 2) / 2)
    _, out = table2(runs, None, resamples=50)
    group = out["groups"]["llm_zeroshot"]
    assert group["label"] == "LLM zero-shot (intents alone)" and group["kind"] == "zero-shot"
    assert group["test"]["MRR@20"] == [pytest.approx(0.375)]
    assert group["interval"]["MRR@20"][0] == pytest.approx(0.375)  # two users: the bootstrap over them
    assert out["groups"]["llm_zeroshot_ownlast"]["test"]["MRR@20"] == [pytest.approx((1 / 3 + 1 / 2) / 2)]


def test_runs_needs_the_test_split_one_store_and_a_known_view(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    data = _data(tmp_path / "d")
    store = _test_split(data)
    runs = tmp_path / "runs"
    assert main(["--data", str(data), "--store", str(store), "--runs", str(runs)]) == 1
    assert capsys.readouterr().err == "error: --runs needs --split test and exactly one --store\n"
    with pytest.raises(ConfigError, match="'middle'"):
        run(IntentQualityConfig(str(data), split="test", stores=(str(store),), runs=str(runs), view="middle"), ITEMS)
    assert not runs.exists()
