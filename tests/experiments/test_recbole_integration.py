"""IntentRecBole (llm4sbr_adapter/integrations) and its driver against the real RecBole package (skipped without it).

A tiny atomic-file dataset (sessions of 4-6 interactions, an ``event_id`` per interaction) is
written to a temporary folder; per-split intent stores hold one vector per *row* (target event),
computed from the row's input items only. RecBole's leave-one-out split puts each session's last
row in test and the second-to-last in valid, so the stores are split the same way: a row looked up
in the wrong split's store raises.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    import recbole  # noqa: F401
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender.srgnn import SRGNN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    from llm4sbr_adapter.experiments.recbole_srgnn import export_prefix_sessions, main
    from llm4sbr_adapter.integrations.recbole_config import recbole_config
    from llm4sbr_adapter.integrations.recbole_wrapper import IntentRecBole, load_recbole_checkpoint
except ImportError as err:  # recbole or one of its light dependencies is missing
    pytest.skip(
        f"RecBole is not importable ({err}); install it with "
        "`pip install --no-deps recbole==1.2.1 && pip install 'pandas>=2.2,<3' scikit-learn tensorboard "
        "colorlog==4.7.2 texttable tabulate thop`",
        allow_module_level=True,
    )

from llm4sbr_adapter import IntentStore, StoreMetadata, StoreMismatchError, write_store

TEXT_DIM = 8
EMBED = 16
NUM_ITEMS = 12


def _make_events(rng: np.random.Generator) -> list[dict]:
    """Interactions of 24 sessions (4-6 each); event ids start at 1000 so they differ from positions."""
    events, eid, t = [], 1000, 0
    for s in range(24):
        for pos in range(int(rng.integers(4, 7))):
            events.append(
                {"eid": eid, "session": f"s{s}", "item": int(rng.integers(1, NUM_ITEMS + 1)), "pos": pos, "t": t}
            )
            eid += 1
            t += 1
    return events


def _prefix_intents(events: list[dict], item_vecs: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray, str]]:
    """For every non-first event: (long, short) built from the items *before* it, and its split."""
    by_session: dict[str, list[dict]] = {}
    for e in events:
        by_session.setdefault(e["session"], []).append(e)
    out = {}
    for evs in by_session.values():
        rows = evs[1:]  # one RecBole row per non-first interaction
        for k, e in enumerate(rows):
            prefix = [x["item"] for x in evs[: e["pos"]]]
            split = "test" if k == len(rows) - 1 else "valid" if k == len(rows) - 2 else "train"
            long = item_vecs[prefix].mean(axis=0)
            short = item_vecs[prefix[-2:]].mean(axis=0)
            out[e["eid"]] = (long.astype(np.float32), short.astype(np.float32), split)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("recbole")
    rng = np.random.default_rng(7)
    events = _make_events(rng)
    (root / "tiny").mkdir()
    inter = root / "tiny" / "tiny.inter"
    with open(inter, "w", encoding="utf-8") as handle:
        handle.write("session_id:token\titem_id:token\ttimestamp:float\tevent_id:token\n")
        for e in events:
            handle.write(f"{e['session']}\t{e['item']}\t{e['t']}\t{e['eid']}\n")

    item_vecs = rng.normal(size=(NUM_ITEMS + 1, TEXT_DIM)).astype(np.float32)
    intents = _prefix_intents(events, item_vecs)
    stores = {}
    for split in ("train", "valid", "test"):
        ids = sorted(k for k, v in intents.items() if v[2] == split)
        meta = StoreMetadata(
            perspectives=["long", "short"],
            text_dim=TEXT_DIM,
            text_encoder="random-item-means",
            sessions_source=f"tiny.inter:{split}",
        )
        vecs = {"long": np.stack([intents[k][0] for k in ids]), "short": np.stack([intents[k][1] for k in ids])}
        stores[split] = IntentStore.open(write_store(root / f"{split}.safetensors", ids, vecs, meta))

    config = recbole_config(
        "SRGNN",
        "tiny",
        root,
        {
            "USER_ID_FIELD": "session_id",
            "load_col": {"inter": ["session_id", "item_id", "timestamp", "event_id"]},
            "embedding_size": EMBED,
            "epochs": 1,
            "train_batch_size": 16,
            "eval_batch_size": 16,
            "train_neg_sample_args": None,
            "use_gpu": False,
            "device": "cpu",
            "show_progress": False,
            "checkpoint_dir": str(root / "saved"),
            "seed": 3,
            "intent_loss_weight": 0.5,
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    return {
        "root": root,
        "events": {e["eid"]: e for e in events},
        "intents": intents,
        "stores": stores,
        "config": config,
        "train": train_data,
        "valid": valid_data,
        "test": test_data,
    }


def _model(world) -> IntentRecBole:
    torch.manual_seed(0)
    s = world["stores"]
    return IntentRecBole(world["config"], world["train"].dataset, stores={"train": s["train"], "valid": s["valid"]})


def _batches(loader):
    for batch in loader:
        yield batch[0] if isinstance(batch, tuple) else batch


def test_row_id_names_the_rows_target_and_session_id_does_not(world):
    ds = world["train"].dataset
    tok = lambda field, values: ds.id2token(field, values.numpy())  # noqa: E731
    seen_rows_per_session: dict[str, int] = {}
    for split in ("train", "valid", "test"):
        for batch in _batches(world[split]):
            eids = tok("event_id", batch["event_id"]).astype(int)
            sessions = tok("session_id", batch["session_id"])
            targets = tok("item_id", batch["item_id"]).astype(int)
            lengths = batch["item_length"].numpy()
            for k, eid in enumerate(eids):
                e = world["events"][eid]
                assert e["session"] == sessions[k] and e["item"] == targets[k] and e["pos"] == lengths[k]
                assert world["intents"][eid][2] == split, f"row {eid} landed in {split}"
                history = tok("item_id", batch["item_id_list"][k, : lengths[k]]).astype(int).tolist()
                before = [
                    x["item"] for x in world["events"].values() if x["session"] == e["session"] and x["pos"] < e["pos"]
                ]
                assert history == before
                seen_rows_per_session[sessions[k]] = seen_rows_per_session.get(sessions[k], 0) + 1
    # every session contributes several rows that share its session_id: it cannot key per-row intents
    assert min(seen_rows_per_session.values()) >= 3
    assert sum(seen_rows_per_session.values()) == len(world["intents"])


def test_behaviours_are_what_recbole_feeds_linear_transform(world):
    model = _model(world).eval()
    base = SRGNN(world["config"], world["train"].dataset).eval()
    base.load_state_dict(model.backbone.state_dict())
    captured = {}
    base.linear_transform.register_forward_pre_hook(lambda mod, args: captured.update(x=args[0]))
    batch = next(_batches(world["train"]))
    with torch.no_grad():
        base(batch["item_id_list"], batch["item_length"])
        h_local, h_global, _ = model.behaviours(batch["item_id_list"], batch["item_length"])
    torch.testing.assert_close(captured["x"], torch.cat([h_global, h_local], dim=1))


def test_loss_is_rec_plus_aux_and_aux_reaches_the_enhancer(world):
    model = _model(world).train()
    batch = next(_batches(world["train"]))
    rec, aux = model.calculate_loss(batch)
    assert rec.dim() == 0 and aux.dim() == 0 and aux.item() > 0

    ids = model.raw_ids(batch["event_id"], world["stores"]["train"])
    h_local, h_global, _ = model.behaviours(batch["item_id_list"], batch["item_length"])
    want = {
        p: torch.from_numpy(np.stack([world["intents"][int(i)][k] for i in ids]))
        for k, p in enumerate(["long", "short"])
    }
    ref = model.enhancer(h_local, h_global, intents=want)
    torch.testing.assert_close(aux, ref.aux_loss)
    logits = ref.session @ model.backbone.item_embedding.weight.T
    torch.testing.assert_close(rec, torch.nn.functional.cross_entropy(logits, batch["item_id"]))

    weight = model.enhancer.project["long"].weight
    (g_aux,) = torch.autograd.grad(aux, weight, retain_graph=True)
    assert g_aux.abs().sum() > 0  # the aux term alone trains the projection

    model.stores["train"] = world["stores"]["valid"]  # training rows are not in the valid store
    with pytest.raises(KeyError, match="not in intent store"):
        model.calculate_loss(batch)


def test_one_epoch_with_recbole_trainer(world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # RecBole's Trainer writes ./log_tensorboard
    model = _model(world)
    before = {k: v.detach().clone() for k, v in model.enhancer.state_dict().items()}
    trainer = Trainer(world["config"], model)
    best_valid, valid_result = trainer.fit(world["train"], world["valid"], saved=True, show_progress=False)
    assert np.isfinite(trainer.train_loss_dict[0])
    for name, param in model.enhancer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
        assert not torch.equal(param.detach(), before[name]), f"{name} did not change in one epoch"

    load_recbole_checkpoint(model, trainer.saved_model_file)
    model.stores["test"] = world["stores"]["test"]
    model.use_split("test")
    result = trainer.evaluate(world["test"], load_best_model=False, show_progress=False)
    assert set(valid_result) == set(result)
    assert all(0.0 <= float(v) <= 1.0 for v in result.values())
    # evaluation with the valid store instead of the test one fails loudly: test rows are not in it
    model.stores["test"] = world["stores"]["valid"]
    with pytest.raises(KeyError):
        trainer.evaluate(world["test"], load_best_model=False, show_progress=False)


def test_each_split_store_is_checked_against_the_splits_rows(world, tmp_path, caplog):
    """RecBole's splits have no file identity (no sessions_sha256 to compare), so check_split looks every
    row id of a split up in its store: the right store passes, a wrong split's store is refused naming the
    split, the counts and the id ranges, whatever intent_missing says when no row is in it."""
    model = _model(world)
    stores = world["stores"]
    for split in ("train", "valid", "test"):
        rows = sum(1 for v in world["intents"].values() if v[2] == split)
        assert model.check_split(world[split], split, stores[split]) == {"rows": rows, "found": rows}
        assert model.check_split(world[split].dataset, split, stores[split])["rows"] == rows
    n_test = sum(1 for v in world["intents"].values() if v[2] == "test")
    with pytest.raises(
        StoreMismatchError,
        match=rf"{n_test} of the {n_test} test rows are not in this store"
        r".*test rows have ids \d+\.\.\d+, the store \d+\.\.\d+",
    ):
        model.check_split(world["test"], "test", stores["valid"])

    # a store holding only some of the test rows: refused with intent_missing="raise", a warning otherwise
    test_ids = sorted(k for k, v in world["intents"].items() if v[2] == "test")
    half = test_ids[: len(test_ids) // 2]
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=TEXT_DIM, text_encoder="random-item-means")
    vecs = {p: np.stack([world["intents"][k][j] for k in half]) for j, p in enumerate(["long", "short"])}
    partial = IntentStore.open(write_store(tmp_path / "half.safetensors", half, vecs, meta))
    with pytest.raises(StoreMismatchError, match=f"{n_test - len(half)} of the {n_test} test rows"):
        model.check_split(world["test"], "test", partial)
    model.enhancer.config.missing = "zeros"
    try:
        with caplog.at_level("WARNING", logger="llm4sbr_adapter.integrations.recbole_wrapper"):
            assert model.check_split(world["test"], "test", partial) == {"rows": n_test, "found": len(half)}
        assert "intent_missing='zeros' substitutes them" in caplog.text
        with pytest.raises(StoreMismatchError, match="test rows are not in this store"):
            model.check_split(world["test"], "test", stores["valid"])  # none found: never silently zeros
    finally:
        model.enhancer.config.missing = "raise"


def test_cli_refuses_a_wrong_split_store_before_training(world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("Trainer.fit ran although the test store is the valid split's")

    monkeypatch.setattr(Trainer, "fit", no_training)
    root = world["root"]
    with pytest.raises(StoreMismatchError, match="of the .* test rows are not in this store"):
        main(
            [
                "--data-path",
                str(root),
                "--dataset",
                "tiny",
                "--store",
                str(root / "train.safetensors"),
                "--valid-store",
                str(root / "valid.safetensors"),
                "--test-store",
                str(root / "valid.safetensors"),
                "--epochs",
                "1",
                "--embedding-size",
                "16",
                "--batch-size",
                "16",
                "--topk",
                "5",
                "--checkpoint-dir",
                str(tmp_path / "saved"),
            ]
        )


def test_missing_id_field_is_named(world):
    config = world["config"]
    config["intent_id_field"] = "row_id"
    try:
        with pytest.raises(ValueError, match="row_id"):
            IntentRecBole(config, world["train"].dataset, stores={"train": world["stores"]["train"]})
    finally:
        config["intent_id_field"] = None


def test_export_then_cli_with_one_store_for_all_rows(world, tmp_path, monkeypatch):
    import json

    rows = tmp_path / "rows.jsonl"
    n = export_prefix_sessions(world["root"] / "tiny" / "tiny.inter", rows)
    lines = [json.loads(line) for line in rows.read_text(encoding="utf-8").splitlines()]
    assert n == len(lines) == len(world["intents"])
    for line in lines:
        e = world["events"][int(line["session_id"])]
        before = [x["item"] for x in world["events"].values() if x["session"] == e["session"] and x["pos"] < e["pos"]]
        assert [int(i) for i in line["items"]] == before  # the row's inputs, never its target

    # one store with string ids (as the builder writes them from JSONL) serves train, valid and test rows
    rng = np.random.default_rng(1)
    ids = [line["session_id"] for line in lines]
    vecs = {p: rng.normal(size=(len(ids), TEXT_DIM)).astype(np.float32) for p in ("long", "short")}
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=TEXT_DIM, sessions_source="rows.jsonl")
    store = write_store(tmp_path / "all.safetensors", ids, vecs, meta)
    monkeypatch.chdir(tmp_path)
    result = main(
        [
            "--data-path",
            str(world["root"]),
            "--dataset",
            "tiny",
            "--store",
            str(store),
            "--epochs",
            "1",
            "--embedding-size",
            "16",
            "--batch-size",
            "16",
            "--topk",
            "5",
            "10",
            "--checkpoint-dir",
            str(tmp_path / "saved"),
        ]
    )
    assert {"hit@5", "mrr@10", "ndcg@10"} <= set(result)
    assert all(0.0 <= v <= 1.0 for v in result.values())
