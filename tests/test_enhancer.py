"""Tests for llm4sbr_adapter.enhancer: config, fusion, aux loss, store lookup, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llm4sbr_adapter.config import ConfigError
from llm4sbr_adapter.enhancer import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    EnhancerOutput,
    IntentEnhancer,
    IntentEnhancerConfig,
)
from llm4sbr_adapter.losses import AlignUniformLoss
from llm4sbr_adapter.store import IntentStore, StoreMetadata, StoreMismatchError, write_store

H, T = 8, 6  # hidden size, text dim


def make(fusion="concat", perspectives=("long", "short"), **kw) -> IntentEnhancer:
    torch.manual_seed(0)
    return IntentEnhancer(
        IntentEnhancerConfig(hidden_size=H, text_dim=T, perspectives=perspectives, fusion=fusion, **kw)
    )


def batch(b=5, perspectives=("long", "short"), seed=1):
    g = torch.Generator().manual_seed(seed)
    h_local = torch.randn(b, H, generator=g)
    h_global = torch.randn(b, H, generator=g)
    intents = {p: torch.randn(b, T, generator=g) for p in perspectives}
    return h_local, h_global, intents


@pytest.fixture
def store_path(tmp_path):
    """A 4-session store with int ids 10..13 and perspectives long/short."""
    rng = np.random.default_rng(0)
    ids = [10, 11, 12, 13]
    intents = {p: rng.standard_normal((4, T)).astype(np.float32) for p in ("long", "short")}
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=T, text_encoder="enc-a")
    path = write_store(tmp_path / "intents.safetensors", ids, intents, meta)
    return path, ids, intents


# --------------------------------------------------------------------------- config
def test_config_defaults_and_pairing_completion():
    cfg = IntentEnhancerConfig(hidden_size=H, text_dim=T)
    assert cfg.perspectives == ("long", "short")
    assert cfg.pairing == {"long": "global", "short": "local"}
    assert cfg.loss_weight == 0.1 and cfg.uniformity_t == 2.0 and cfg.intent_norm is True
    cfg3 = IntentEnhancerConfig(
        hidden_size=H, text_dim=T, perspectives=["short", "style", "long"], pairing={"style": "local"}
    )
    assert cfg3.perspectives == ("short", "style", "long")
    assert cfg3.pairing == {"short": "local", "style": "local", "long": "global"}
    assert IntentEnhancerConfig(hidden_size=H, text_dim=T, perspectives=("x",)).pairing == {"x": "global"}


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"fusion": "sum"}, "fusion"),
        ({"missing": "skip"}, "missing"),
        ({"perspectives": ()}, "at least one"),
        ({"perspectives": ("a", "a")}, "duplicates"),
        ({"perspectives": "long"}, "sequence"),
        ({"perspectives": ("a.b",)}, "bad name"),
        ({"pairing": {"long": "middle"}}, "pairing"),
        ({"pairing": {"medium": "local"}}, "not in perspectives"),
        ({"dropout": 1.0}, "dropout"),
        ({"loss_weight": -1.0}, "loss_weight"),
        ({"uniformity_t": 0.0}, "uniformity_t"),
        ({"hidden_size": 0}, "hidden_size"),
    ],
)
def test_config_validation(kw, message):
    args = {"hidden_size": H, "text_dim": T, **kw}
    with pytest.raises(ValueError, match=message):
        IntentEnhancerConfig(**args)


def test_config_dict_and_json_round_trip(tmp_path):
    cfg = IntentEnhancerConfig(
        hidden_size=H,
        text_dim=T,
        perspectives=("a", "b", "c"),
        pairing={"b": "local"},
        fusion="gate",
        dropout=0.25,
        missing="learned",
        intent_norm=False,
    )
    assert IntentEnhancerConfig.from_dict(cfg.to_dict()) == cfg
    path = cfg.save(tmp_path / "cfg.json")
    assert IntentEnhancerConfig.load(path) == cfg
    raw = json.loads(path.read_text())
    assert raw["perspectives"] == ["a", "b", "c"] and raw["format"] == "llm4sbr-intent-enhancer"
    raw["colour"] = "red"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="colour"):
        IntentEnhancerConfig.load(path)


# What IntentEnhancerConfig.save wrote before the config moved onto ConfigBase (fields, order, format name).
SAVED_BEFORE_CONFIG_BASE = """{
  "catalogue_sha256": "ab12",
  "dropout": 0.25,
  "format": "llm4sbr-intent-enhancer",
  "format_version": 1,
  "fusion": "gate",
  "hidden_size": 8,
  "intent_norm": false,
  "loss_weight": 0.1,
  "missing": "learned",
  "pairing": {
    "a": "global",
    "b": "local"
  },
  "perspectives": [
    "a",
    "b"
  ],
  "text_dim": 6,
  "text_encoder": "enc",
  "uniform_weight": 1.0,
  "uniformity_t": 2.0
}
"""


def test_configs_saved_in_the_earlier_layout_load_and_are_written_the_same_way(tmp_path):
    old = tmp_path / CONFIG_NAME
    old.write_text(SAVED_BEFORE_CONFIG_BASE)
    cfg = IntentEnhancerConfig.load(old)
    assert cfg == IntentEnhancerConfig(
        hidden_size=8,
        text_dim=6,
        perspectives=("a", "b"),
        pairing={"b": "local"},
        fusion="gate",
        dropout=0.25,
        missing="learned",
        intent_norm=False,
        text_encoder="enc",
        catalogue_sha256="ab12",
    )
    assert cfg.save(tmp_path / "again.json").read_text() == SAVED_BEFORE_CONFIG_BASE
    without_catalogue = json.loads(SAVED_BEFORE_CONFIG_BASE)
    del without_catalogue["catalogue_sha256"]  # saved before that field existed
    assert IntentEnhancerConfig.from_dict(without_catalogue).catalogue_sha256 == ""


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"^IntentEnhancerConfig.fusion must be one of \['concat', 'gate'\]") as err:
        IntentEnhancerConfig(hidden_size=H, text_dim=T, fusion="sum")
    assert err.value.field == "fusion"
    cfg = IntentEnhancerConfig(hidden_size=np.int64(H), text_dim=T, perspectives=["long"], intent_norm=np.bool_(0))
    assert type(cfg.hidden_size) is int and cfg.perspectives == ("long",) and cfg.intent_norm is False


# --------------------------------------------------------------------------- forward
@pytest.mark.parametrize("fusion", ["concat", "gate"])
@pytest.mark.parametrize("perspectives", [("long",), ("long", "short"), ("long", "short", "style")])
def test_forward_shapes_any_number_of_perspectives(fusion, perspectives):
    enh = make(fusion, perspectives)
    h_local, h_global, intents = batch(5, perspectives)
    out = enh(h_local, h_global, intents=intents)
    assert isinstance(out, EnhancerOutput)
    assert out.session.shape == (5, H)
    assert out.aux_loss.shape == ()
    assert set(out.projected) == set(perspectives) == set(out.losses)
    assert all(v.shape == (5, H) for v in out.projected.values())
    assert torch.isfinite(out.session).all() and torch.isfinite(out.aux_loss)
    if fusion == "concat":
        assert enh.fuse.in_features == (2 + len(perspectives)) * H


def test_concat_fusion_follows_documented_order():
    enh = make("concat")
    h_local, h_global, intents = batch(3)
    out = enh(h_local, h_global, intents=intents)
    z = {p: F.normalize(intents[p], dim=-1) @ enh.project[p].weight.t() + enh.project[p].bias for p in intents}
    expected = torch.cat([h_local, h_global, z["long"], z["short"]], dim=1) @ enh.fuse.weight.t() + enh.fuse.bias
    torch.testing.assert_close(out.session, expected)


def test_gate_fusion_follows_documented_formula():
    enh = make("gate", ("long", "short", "style"))  # style defaults to global
    h_local, h_global, intents = batch(3, ("long", "short", "style"))
    out = enh(h_local, h_global, intents=intents)
    z = out.projected
    g_glob = torch.sigmoid(enh.gates["global"](torch.cat([h_global, z["long"] + z["style"]], 1)))
    g_loc = torch.sigmoid(enh.gates["local"](torch.cat([h_local, z["short"]], 1)))
    expected = enh.fuse(torch.cat([g_glob * h_global, g_loc * h_local], 1))
    torch.testing.assert_close(out.session, expected)


def test_gate_leaves_unpaired_behaviour_unchanged():
    enh = make("gate", ("long",))  # long -> global only: no local gate
    assert set(enh.gates) == {"global"}
    h_local, h_global, intents = batch(3, ("long",))
    out = enh(h_local, h_global, intents=intents)
    g = torch.sigmoid(enh.gates["global"](torch.cat([h_global, out.projected["long"]], 1)))
    torch.testing.assert_close(out.session, enh.fuse(torch.cat([g * h_global, h_local], 1)))


@pytest.mark.parametrize("fusion", ["concat", "gate"])
def test_gradients_reach_every_projection_and_fusion_layer(fusion):
    enh = make(fusion, ("long", "short", "style"))
    h_local, h_global, intents = batch(6, ("long", "short", "style"))
    out = enh(h_local, h_global, intents=intents)
    (out.session.pow(2).sum() + out.aux_loss).backward()
    for name, param in enh.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name
    names = {n for n, _ in enh.named_parameters()}
    assert {f"project.{p}.weight" for p in ("long", "short", "style")} <= names
    assert "fuse.weight" in names
    if fusion == "gate":
        assert {"gates.local.weight", "gates.global.weight"} <= names


@pytest.mark.parametrize("fusion", ["concat", "gate"])
def test_single_input_mode_uses_the_one_vector_for_both_behaviours(fusion):
    """GRU4Rec/SASRec-style backbones have one session vector: leaving h_global out pairs and fuses it twice."""
    enh = make(fusion)
    h, _, intents = batch()
    h.requires_grad_(True)
    single = enh(h, intents=intents)
    twice = enh(h, h, intents=intents)
    torch.testing.assert_close(single.session, twice.session)
    torch.testing.assert_close(single.aux_loss, twice.aux_loss)
    (grad,) = torch.autograd.grad(single.aux_loss, enh.project["short"].weight)
    assert grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"h_local must have shape \[batch, 8\]"):
        enh(torch.zeros(5, H + 1), intents=intents)


def test_rec_loss_alone_also_trains_projections():
    # The projections must be reachable through the fused session, not only via the aux loss.
    for fusion in ("concat", "gate"):
        enh = make(fusion)
        h_local, h_global, intents = batch(4)
        enh(h_local, h_global, intents=intents).session.sum().backward()
        for p in ("long", "short"):
            assert enh.project[p].weight.grad.abs().sum() > 0, (fusion, p)


def test_aux_loss_is_weighted_sum_of_per_perspective_losses():
    enh = make("concat", loss_weight=0.3)
    h_local, h_global, intents = batch(5)
    out = enh(h_local, h_global, intents=intents)
    total = out.losses["long"]["loss"] + out.losses["short"]["loss"]
    torch.testing.assert_close(out.aux_loss.detach(), 0.3 * total)
    assert not out.losses["long"]["loss"].requires_grad


def test_stacked_aux_loss_equals_per_perspective_align_uniform_with_missing_rows_and_gradients():
    """The aux loss (all perspectives in one stacked Gram matrix, issue 17) is the sum of one
    AlignUniformLoss per perspective over the rows that have an intent, gradients included."""
    enh = make("concat", loss_weight=1.0)
    h_local, h_global, _ = batch(6)
    projected = {p: torch.randn(6, H, requires_grad=True) for p in ("long", "short")}
    found = torch.tensor([True, False, True, True, False, True])
    got, losses = enh.aux_loss(projected, {"local": h_local, "global": h_global}, found)
    got.backward()
    fast = {p: z.grad.clone() for p, z in projected.items()}
    ref_loss = AlignUniformLoss()
    paired = {"long": h_global, "short": h_local}
    want = sum(ref_loss(projected[p][found], paired[p][found]) for p in projected)
    for z in projected.values():
        z.grad = None
    want.backward()
    torch.testing.assert_close(got, want)
    for p, z in projected.items():
        torch.testing.assert_close(fast[p], z.grad)
        torch.testing.assert_close(losses[p]["loss"], ref_loss(projected[p][found], paired[p][found]).detach())


@pytest.mark.parametrize("target", ["local", "global"])
def test_pairing_decides_which_behaviour_is_aligned(target):
    other = "global" if target == "local" else "local"
    enh = make("concat", ("long",), pairing={"long": target}, loss_weight=1.0)
    h_local, h_global, intents = batch(5, ("long",))
    h_local.requires_grad_(True)
    h_global.requires_grad_(True)
    out = enh(h_local, h_global, intents=intents)
    out.aux_loss.backward()
    grads = {"local": h_local.grad, "global": h_global.grad}
    assert grads[target] is not None and grads[target].abs().sum() > 0
    assert grads[other] is None or grads[other].abs().sum() == 0
    # the logged alignment is the one against the paired behaviour
    paired = {"local": h_local, "global": h_global}[target].detach()
    ref = AlignUniformLoss().components(out.projected["long"].detach(), paired)["align"]
    torch.testing.assert_close(out.losses["long"]["align"], ref)


def test_changing_pairing_changes_aux_loss():
    h_local, h_global, intents = batch(5)
    a = make("concat", pairing={"long": "global", "short": "local"})(h_local, h_global, intents=intents)
    b = make("concat", pairing={"long": "local", "short": "global"})(h_local, h_global, intents=intents)
    assert not torch.allclose(a.aux_loss, b.aux_loss)
    torch.testing.assert_close(a.session, b.session)  # same seed, same weights: fusion is unaffected


def test_eval_no_grad_and_batch_of_one():
    enh = make("gate", dropout=0.5).eval()
    h_local, h_global, intents = batch(1)
    with torch.no_grad():
        out = enh(h_local, h_global, intents=intents)
    assert isinstance(out.aux_loss, torch.Tensor) and torch.isfinite(out.aux_loss)
    assert out.losses["long"]["uniform"].item() == 0.0
    assert out.losses["long"]["align"].item() > 0


def test_intent_norm_makes_scale_irrelevant():
    enh = make("concat")
    h_local, h_global, intents = batch(3)
    a = enh(h_local, h_global, intents=intents).session
    b = enh(h_local, h_global, intents={p: 7.0 * v for p, v in intents.items()}).session
    torch.testing.assert_close(a, b)
    raw = make("concat", intent_norm=False)
    assert not torch.allclose(
        raw(h_local, h_global, intents=intents).session,
        raw(h_local, h_global, intents={p: 7.0 * v for p, v in intents.items()}).session,
    )


def test_bad_inputs_raise_clear_errors():
    enh = make("concat")
    h_local, h_global, intents = batch(4)
    with pytest.raises(ValueError, match="exactly one"):
        enh(h_local, h_global)
    with pytest.raises(ValueError, match="exactly one"):
        enh(h_local, h_global, intents=intents, session_ids=[1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"h_local.*\[batch, 8\].*\(4, 7\)"):
        enh(torch.randn(4, 7), h_global, intents=intents)
    with pytest.raises(ValueError, match=r"h_local has shape \(3, 8\) but h_global has shape \(4, 8\)"):
        enh(h_local[:3], h_global, intents=intents)
    with pytest.raises(ValueError, match=r"intents\['short'\] has shape \(4, 5\), expected \(4, 6\)"):
        enh(h_local, h_global, intents={"long": intents["long"], "short": torch.randn(4, 5)})
    with pytest.raises(ValueError, match=r"lack perspectives \['short'\]"):
        enh(h_local, h_global, intents={"long": intents["long"]})
    with pytest.raises(ValueError, match="dtype"):
        enh(h_local, h_global, intents={p: v.double() for p, v in intents.items()})
    with pytest.raises(ValueError, match="no IntentStore is bound"):
        enh(h_local, h_global, session_ids=[1, 2, 3, 4])
    # extra perspectives in the dict are ignored
    extra = dict(intents, other=torch.randn(4, 99))
    torch.testing.assert_close(
        enh(h_local, h_global, intents=extra).session, enh(h_local, h_global, intents=intents).session
    )


# --------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("fusion", ["concat", "gate"])
@pytest.mark.parametrize("missing", ["raise", "learned"])
def test_save_and_reload_give_identical_outputs(tmp_path, fusion, missing):
    enh = make(fusion, ("long", "short", "style"), dropout=0.3, missing=missing)
    # move weights away from their initial values so a fresh init could not pass by chance
    with torch.no_grad():
        for p in enh.parameters():
            p.add_(0.01)
    enh.eval()
    enh.save_pretrained(tmp_path / "enh")
    assert (tmp_path / "enh" / CONFIG_NAME).is_file() and (tmp_path / "enh" / WEIGHTS_NAME).is_file()
    assert not list((tmp_path / "enh").glob("*.tmp"))
    torch.manual_seed(123)  # a different init seed for the reloaded module
    back = IntentEnhancer.from_pretrained(tmp_path / "enh").eval()
    assert back.config == enh.config
    h_local, h_global, intents = batch(4, ("long", "short", "style"))
    a, b = enh(h_local, h_global, intents=intents), back(h_local, h_global, intents=intents)
    assert torch.equal(a.session, b.session)
    assert torch.equal(a.aux_loss, b.aux_loss)


def test_from_pretrained_rejects_weights_that_do_not_fit_config(tmp_path):
    make("concat").save_pretrained(tmp_path / "enh")
    cfg_path = tmp_path / "enh" / CONFIG_NAME
    raw = json.loads(cfg_path.read_text())
    raw["fusion"] = "gate"
    cfg_path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"does not match.*(missing tensors|shape)"):
        IntentEnhancer.from_pretrained(tmp_path / "enh")
    raw["fusion"], raw["hidden_size"] = "concat", H + 1
    cfg_path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"fuse.weight: weights have shape \(8, 32\), config needs \(9, 36\)"):
        IntentEnhancer.from_pretrained(tmp_path / "enh")
    (tmp_path / "enh" / WEIGHTS_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_NAME):
        IntentEnhancer.from_pretrained(tmp_path / "enh")


# --------------------------------------------------------------------------- store lookup
def test_session_ids_path_matches_explicit_intents(store_path):
    path, ids, vecs = store_path
    store = IntentStore.open(path)
    enh = make("gate")
    enh.bind_store(store)
    h_local, h_global, _ = batch(3)
    query = torch.tensor([13, 10, 12])
    out = enh(h_local, h_global, session_ids=query)
    rows = [ids.index(i) for i in query.tolist()]
    explicit = {p: torch.from_numpy(v[rows]) for p, v in vecs.items()}
    torch.testing.assert_close(out.session, enh(h_local, h_global, intents=explicit).session)
    assert out.found is None
    assert enh.config.text_encoder == ""  # the config is never changed by binding a store ...
    assert enh.saved_config().text_encoder == "enc-a"  # ... the saved one records the store's encoder


def test_missing_raise_names_the_id(store_path):
    path, _, _ = store_path
    enh = IntentEnhancer(IntentEnhancerConfig(hidden_size=H, text_dim=T), store=IntentStore.open(path))
    h_local, h_global, _ = batch(2)
    with pytest.raises(KeyError, match="99"):
        enh(h_local, h_global, session_ids=[10, 99])
    with pytest.raises(ValueError, match="session_ids has 3 ids but h_local has batch size 2"):
        enh(h_local, h_global, session_ids=[10, 11, 12])


def test_missing_zeros_uses_zero_vectors_and_skips_them_in_aux_loss(store_path):
    path, ids, vecs = store_path
    enh = make("concat", missing="zeros", loss_weight=1.0)
    enh.bind_store(IntentStore.open(path))
    h_local, h_global, _ = batch(4)
    out = enh(h_local, h_global, session_ids=[11, 99, 12, 98])
    assert out.found.tolist() == [True, False, True, False]
    explicit = {
        p: torch.from_numpy(np.stack([v[1], np.zeros(T, np.float32), v[2], np.zeros(T, np.float32)]))
        for p, v in vecs.items()
    }
    torch.testing.assert_close(out.session, enh(h_local, h_global, intents=explicit).session)
    # aux loss only over the two found rows
    keep = torch.tensor([0, 2])
    ref = AlignUniformLoss()(out.projected["long"][keep], h_global[keep]) + AlignUniformLoss()(
        out.projected["short"][keep], h_local[keep]
    )
    torch.testing.assert_close(out.aux_loss, ref)
    # a batch where nothing is found: aux loss is 0, not NaN
    none = enh(h_local[:2], h_global[:2], session_ids=[97, 98])
    assert none.aux_loss.item() == 0.0


def test_missing_learned_vector_is_used_and_trained(store_path):
    path, ids, vecs = store_path
    enh = make("concat", missing="learned")
    enh.bind_store(IntentStore.open(path))
    assert set(enh.missing_intent) == {"long", "short"}
    h_local, h_global, _ = batch(3)
    out = enh(h_local, h_global, session_ids=np.array([99, 10, 98]))
    learned = {p: enh.missing_intent[p].detach() for p in ("long", "short")}
    explicit = {p: torch.stack([learned[p], torch.from_numpy(vecs[p][0]), learned[p]]) for p in ("long", "short")}
    torch.testing.assert_close(out.session, enh(h_local, h_global, intents=explicit).session)
    out.session.sum().backward()
    for p in ("long", "short"):
        assert enh.missing_intent[p].grad is not None and enh.missing_intent[p].grad.abs().sum() > 0
    # all ids found: the learned vectors are not touched
    enh.zero_grad()
    enh(h_local[:2], h_global[:2], session_ids=[10, 11]).session.sum().backward()
    assert all(
        enh.missing_intent[p].grad is None or enh.missing_intent[p].grad.abs().sum() == 0 for p in ("long", "short")
    )


def test_store_with_other_text_dim_or_perspectives_or_encoder_is_refused(tmp_path, store_path):
    path, _, _ = store_path
    wrong = IntentEnhancer(IntentEnhancerConfig(hidden_size=H, text_dim=T + 1))
    with pytest.raises(StoreMismatchError, match=r"text_dim: expected 7, store has 6"):
        wrong.bind_store(IntentStore.open(path))
    with pytest.raises(ValueError, match="text_dim"):  # StoreMismatchError is a ValueError
        IntentEnhancer(IntentEnhancerConfig(hidden_size=H, text_dim=T + 1), store=IntentStore.open(path))
    three = IntentEnhancer(IntentEnhancerConfig(hidden_size=H, text_dim=T, perspectives=("long", "short", "style")))
    with pytest.raises(StoreMismatchError, match="style"):
        three.bind_store(IntentStore.open(path))
    other_enc = IntentEnhancer(IntentEnhancerConfig(hidden_size=H, text_dim=T, text_encoder="enc-b"))
    with pytest.raises(StoreMismatchError, match="text_encoder"):
        other_enc.bind_store(IntentStore.open(path))
    # a subset of the store's perspectives is fine
    IntentEnhancer(
        IntentEnhancerConfig(hidden_size=H, text_dim=T, perspectives=("short",)), store=IntentStore.open(path)
    )


def test_from_pretrained_binds_store_and_checks_it(tmp_path, store_path):
    path, _, _ = store_path
    enh = make("concat")
    enh.bind_store(IntentStore.open(path))
    enh.save_pretrained(tmp_path / "enh")
    back = IntentEnhancer.from_pretrained(tmp_path / "enh", store=IntentStore.open(path))
    assert back.store is not None and back.config.text_encoder == "enc-a"  # saved from the first store
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=T, text_encoder="enc-b")
    other = write_store(
        tmp_path / "b.safetensors", [1], {p: np.zeros((1, T), np.float32) for p in ("long", "short")}, meta
    )
    with pytest.raises(StoreMismatchError, match="text_encoder"):
        IntentEnhancer.from_pretrained(tmp_path / "enh", store=IntentStore.open(other))


def test_deepcopy_shares_store_and_pickling_drops_it(tmp_path, store_path):
    import copy
    import io

    path, _, _ = store_path
    store = IntentStore.open(path)
    enh = make("concat")
    enh.bind_store(store)
    twin = copy.deepcopy(enh)
    assert twin.store is store  # not a copy of the vectors
    twin.bind_store(IntentStore.open(path))
    assert enh.store is store  # rebinding the copy leaves the original alone
    buf = io.BytesIO()
    torch.save(enh, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert loaded.store is None
    h_local, h_global, intents = batch(2)
    torch.testing.assert_close(
        loaded(h_local, h_global, intents=intents).session, enh(h_local, h_global, intents=intents).session
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("missing", ["raise", "learned"])
def test_session_ids_on_cuda(tmp_path, store_path, missing):
    path, _, _ = store_path
    enh = make("gate", missing=missing).cuda()
    enh.bind_store(IntentStore.open(path))
    h_local, h_global, _ = batch(3)
    ids = torch.tensor([10, 11, 12 if missing == "raise" else 99], device="cuda")
    out = enh(h_local.cuda(), h_global.cuda(), session_ids=ids)
    (out.session.sum() + out.aux_loss).backward()
    assert out.session.device.type == "cuda"
    enh.save_pretrained(tmp_path / "enh")
    back = IntentEnhancer.from_pretrained(tmp_path / "enh", map_location="cuda")
    assert next(back.parameters()).device.type == "cuda"


# --------------------------------------------------------------------------- which store (issue 15)
def _store(path, ids, *, encoder="enc-a", catalogue="c" * 64, source="train.txt", sessions="a" * 64, seed=0):
    rng = np.random.default_rng(seed)
    intents = {p: rng.standard_normal((len(ids), T)).astype(np.float32) for p in ("long", "short")}
    meta = StoreMetadata(
        perspectives=["long", "short"],
        text_dim=T,
        text_encoder=encoder,
        catalogue_sha256=catalogue,
        sessions_source=source,
        sessions_sha256=sessions,
    )
    return IntentStore.open(write_store(path, ids, intents, meta))


def test_session_ids_of_another_file_than_the_bound_store_raise(tmp_path):
    train = _store(tmp_path / "train_store.safetensors", [0, 1, 2], source="train.txt", sessions="a" * 64)
    test = _store(tmp_path / "test_store.safetensors", [0, 1, 2], source="test.txt", sessions="b" * 64, seed=1)
    enh = make("concat")
    enh.bind_store(train)
    h_local, h_global, _ = batch(3)
    plain = enh(h_local, h_global, session_ids=[0, 1, 2])  # one store, no file named: no check, as before
    same = enh(h_local, h_global, session_ids=[0, 1, 2], sessions_sha256="a" * 64, sessions_source="train.txt")
    torch.testing.assert_close(same.session, plain.session)
    # test rows (ids 0..2 too) while the training store is still bound: refused, naming both files
    with pytest.raises(StoreMismatchError) as err:
        enh(h_local, h_global, session_ids=[0, 1, 2], sessions_sha256="b" * 64, sessions_source="data/test.txt")
    msg = str(err.value)
    assert "\n" not in msg
    assert "data/test.txt" in msg and str(train.path) in msg and "train.txt" in msg
    assert "b" * 12 in msg and "a" * 12 in msg
    enh.bind_store(test)
    out = enh(h_local, h_global, session_ids=[0, 1, 2], sessions_sha256="b" * 64, sessions_source="data/test.txt")
    assert not torch.allclose(out.session, plain.session)
    # a store that records no sessions file cannot be checked: refused when a file is named
    enh2 = make("concat")
    enh2.bind_store(_store(tmp_path / "anon.safetensors", [0, 1, 2], source="", sessions=""))
    with pytest.raises(StoreMismatchError, match="records no sessions_sha256"):
        enh2(h_local, h_global, session_ids=[0, 1, 2], sessions_sha256="a" * 64)
    with pytest.raises(ValueError, match="sessions_sha256"):
        enh(h_local, h_global, intents=batch(3)[2], sessions_sha256="b" * 64)


@pytest.mark.parametrize(
    "field, first, second",
    [
        ("text_encoder", "", "enc-b"),  # the default config accepts any encoder: the first store decides
        ("text_encoder", "enc-a", ""),
        ("catalogue_sha256", "c" * 64, "d" * 64),
        ("catalogue_sha256", "", "d" * 64),
    ],
)
def test_second_store_of_another_encoder_or_catalogue_is_refused(tmp_path, field, first, second):
    kw_first = {"encoder" if field == "text_encoder" else "catalogue": first}
    kw_second = {"encoder" if field == "text_encoder" else "catalogue": second}
    a = _store(tmp_path / "a.safetensors", [0, 1], **kw_first)
    enh = make("concat")
    enh.bind_store(a)
    enh.bind_store(_store(tmp_path / "a_valid.safetensors", [0, 1], source="valid.txt", sessions="e" * 64, **kw_first))
    b = _store(tmp_path / "b.safetensors", [0, 1], **kw_second)
    with pytest.raises(StoreMismatchError) as err:
        enh.bind_store(b)
    msg = str(err.value)
    assert "\n" not in msg and str(a.path) in msg and str(b.path) in msg
    assert f"{field} {first!r}" in msg and f"{field} {second!r}" in msg
    assert enh.store.path == tmp_path / "a_valid.safetensors"  # the refused store is not bound


def test_config_records_the_catalogue_and_old_configs_still_load(tmp_path):
    store = _store(tmp_path / "a.safetensors", [0, 1])
    enh = make("concat")
    before = enh.config.to_dict()
    enh.bind_store(store)
    assert enh.config.to_dict() == before  # binding never changes the config
    saved = enh.saved_config()
    assert saved.catalogue_sha256 == "c" * 64 and saved.text_encoder == "enc-a"
    enh.save_pretrained(tmp_path / "enh")
    assert IntentEnhancerConfig.load(tmp_path / "enh" / CONFIG_NAME) == saved
    other = _store(tmp_path / "b.safetensors", [0, 1], catalogue="d" * 64)
    with pytest.raises(StoreMismatchError, match="catalogue_sha256"):
        IntentEnhancer.from_pretrained(tmp_path / "enh", store=other)
    # a config saved before catalogue_sha256 existed loads and adopts the first store's catalogue
    cfg_path = tmp_path / "enh" / CONFIG_NAME
    raw = json.loads(cfg_path.read_text())
    del raw["catalogue_sha256"]
    cfg_path.write_text(json.dumps(raw))
    old = IntentEnhancer.from_pretrained(tmp_path / "enh", store=other)
    assert old.config.catalogue_sha256 == "" and old.saved_config().catalogue_sha256 == "d" * 64
    h_local, h_global, _ = batch(2)
    assert old(h_local, h_global, session_ids=[0, 1]).session.shape == (2, H)
