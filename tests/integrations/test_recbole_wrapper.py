"""IntentRecBole on five RecBole sequential models (SRGNN, NARM, STAMP, GRU4Rec, SASRec), with and without intents.

A tiny atomic-file dataset (24 sessions of 4-6 clicks, an ``event_id`` per click) and one store holding a
random vector per event serve every model; each is trained for one epoch with RecBole's own ``Trainer``.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("recbole", reason="RecBole is not installed (pip install -e '.[recbole]')")

from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.trainer import Trainer  # noqa: E402
from recbole.utils import init_seed  # noqa: E402

from llm4sbr_adapter import StoreMetadata, write_store  # noqa: E402
from llm4sbr_adapter.config import ConfigError  # noqa: E402
from llm4sbr_adapter.integrations.recbole_config import recbole_config  # noqa: E402
from llm4sbr_adapter.integrations.recbole_wrapper import IntentRecBole  # noqa: E402

MODELS = ["SRGNN", "NARM", "STAMP", "GRU4Rec", "SASRec"]
EMBED, NARM_HIDDEN, TEXT_DIM = 16, 24, 8


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("recbole_wrapper")
    rng = np.random.default_rng(5)
    (root / "tiny").mkdir()
    eids, eid, t = [], 1000, 0
    with open(root / "tiny" / "tiny.inter", "w", encoding="utf-8") as handle:
        handle.write("session_id:token\titem_id:token\ttimestamp:float\tevent_id:token\n")
        for s in range(24):
            for _ in range(int(rng.integers(4, 7))):
                handle.write(f"s{s}\t{int(rng.integers(1, 13))}\t{t}\t{eid}\n")
                eids.append(eid)
                eid, t = eid + 1, t + 1
    vecs = {p: rng.normal(size=(len(eids), TEXT_DIM)).astype(np.float32) for p in ("long", "short")}
    write_store(root / "all.safetensors", eids, vecs, StoreMetadata(perspectives=["long", "short"], text_dim=TEXT_DIM))
    return root


def _setup(root, model: str, store: bool, **extra):
    values = {
        "USER_ID_FIELD": "session_id",
        "load_col": {"inter": ["session_id", "item_id", "timestamp", "event_id"]},
        "embedding_size": EMBED,
        "hidden_size": NARM_HIDDEN if model == "NARM" else EMBED,
        "inner_size": 32,
        "n_layers": 1,
        "n_heads": 2,
        "epochs": 1,
        "train_batch_size": 16,
        "eval_batch_size": 16,
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": str(root / "saved"),
        "seed": 3,
        "intent_loss_weight": 0.5,
        **({"intent_store": str(root / "all.safetensors")} if store else {"intent_text_dim": TEXT_DIM}),
        **extra,
    }
    config = recbole_config(model, "tiny", root, values)
    init_seed(config["seed"], config["reproducibility"])
    train, valid, test = data_preparation(config, create_dataset(config))
    torch.manual_seed(0)
    return config, IntentRecBole(config, train.dataset), (train, valid, test)


def _first(loader):
    batch = next(iter(loader))
    return batch[0] if isinstance(batch, tuple) else batch


@pytest.mark.parametrize("name", MODELS)
def test_intents_arm_trains_every_enhancer_parameter_with_recboles_trainer(data_root, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # RecBole's Trainer writes ./log_tensorboard
    config, model, (train, valid, test) = _setup(data_root, name, store=True)
    assert not model.baseline and model.check_split(test, "test")["found"] > 0
    rec, aux = model.calculate_loss(_first(train))
    assert rec.dim() == 0 and aux.dim() == 0 and aux.item() != 0.0
    before = {k: v.detach().clone() for k, v in model.enhancer.state_dict().items()}
    trainer = Trainer(config, model)
    trainer.fit(train, valid, saved=False, show_progress=False)
    assert np.isfinite(trainer.train_loss_dict[0])
    for key, value in model.enhancer.state_dict().items():
        assert not torch.equal(value, before[key]), f"{name}: enhancer {key} did not change in one epoch"
    result = trainer.evaluate(test, load_best_model=False, show_progress=False)
    assert all(0.0 <= float(v) <= 1.0 for v in result.values())


@pytest.mark.parametrize("name", MODELS)
def test_baseline_arm_has_the_same_layers_fed_zero_intents_and_no_aux_loss(data_root, name):
    _, arm, (train, _, _) = _setup(data_root, name, store=True)
    _, base, _ = _setup(data_root, name, store=False)
    assert base.baseline
    assert {k: v.shape for k, v in base.state_dict().items()} == {k: v.shape for k, v in arm.state_dict().items()}
    rec, aux = base.calculate_loss(_first(train))
    assert aux.item() == 0.0
    rec.backward()
    assert base.enhancer.fuse.weight.grad.abs().sum() > 0  # the added layer is trained in the baseline arm too
    assert base.enhancer.project["long"].weight.grad.abs().sum() == 0  # zero intents: nothing reaches it


# what each backbone's own forward does with the behaviours the wrapper reads
RECONSTRUCT = {
    "SRGNN": lambda m, loc, glo: m.linear_transform(torch.cat([glo, loc], dim=1)),
    "NARM": lambda m, loc, glo: m.b(torch.cat([glo, loc], dim=1)),
    "STAMP": lambda m, loc, glo: glo * loc,
    "GRU4Rec": lambda m, loc, glo: loc,
    "SASRec": lambda m, loc, glo: loc,
}


@pytest.mark.parametrize("name", MODELS)
def test_behaviours_are_the_ones_the_backbone_combines(data_root, name):
    _, model, (train, _, _) = _setup(data_root, name, store=False)
    model.eval()
    batch = _first(train)
    with torch.no_grad():
        h_local, h_global, out = model.behaviours(batch["item_id_list"], batch["item_length"])
        assert (h_global is None) == (name in ("GRU4Rec", "SASRec"))
        torch.testing.assert_close(RECONSTRUCT[name](model.backbone, h_local, h_global), out)
        session = model.backbone.forward(batch["item_id_list"], batch["item_length"])
    assert session.shape == out.shape  # the enhancer's vector replaces forward's output at its width
    assert (model.to_output is not None) == (name == "NARM")  # NARM's behaviours are hidden_size wide


def test_narms_swapped_names_are_mapped_local_last_state_global_attention(data_root):
    """NARM calls its last GRU state c_global and its attention readout c_local: h_local must be the last state."""
    _, model, (train, _, _) = _setup(data_root, "NARM", store=False)
    model.eval()
    batch = _first(train)
    seen = {}
    model.backbone.gru.register_forward_hook(lambda mod, args, out: seen.update(gru=out[0]))
    with torch.no_grad():
        h_local, _, _ = model.behaviours(batch["item_id_list"], batch["item_length"])
    last = seen["gru"][torch.arange(len(h_local)), batch["item_length"] - 1]
    torch.testing.assert_close(h_local, last)


def test_config_ignores_the_host_command_line_and_refuses_unknown_intent_keys(data_root, monkeypatch, caplog):
    monkeypatch.setattr(sys, "argv", ["train.py", "--store", "x.safetensors", "positional"])
    with caplog.at_level(logging.WARNING):
        recbole_config("GRU4Rec", "tiny", data_root, {"intent_fusion": "gate", "train_neg_sample_args": None})
    assert "will not be used" not in caplog.text
    with pytest.raises(ConfigError, match="'intent_fuson' is not an intent setting"):
        recbole_config("GRU4Rec", "tiny", data_root, {"intent_fuson": "gate", "train_neg_sample_args": None})
    with pytest.raises(ConfigError, match="fusion"):
        _setup(data_root, "GRU4Rec", store=False, intent_fusion="sum")


def test_explicit_behaviours_key_and_a_bad_one(data_root):
    _, model, (train, _, _) = _setup(data_root, "SRGNN", store=False, intent_behaviours="output")
    assert model.tap.kind == "output"
    with pytest.raises(ValueError, match="has no submodule 'nope'"):
        _setup(data_root, "SRGNN", store=False, intent_behaviours="nope.input:local,global")
    with pytest.raises(ValueError, match="is not 'output'"):
        _setup(data_root, "SRGNN", store=False, intent_behaviours="linear_transform:local")
