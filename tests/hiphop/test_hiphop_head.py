"""HiphopHead end to end on a tiny synthetic backbone: shapes, gradients, parts on/off, hard negatives,
composition with IntentEnhancer, and the no-test-leakage guarantees of the neighbour bank."""

import numpy as np
import pytest
import torch
from torch import nn

from llm4sbr_adapter.hiphop import (
    BackboneBatch,
    HiphopConfig,
    HiphopHead,
    SessionNeighbourBank,
    bank_hard_negatives,
    in_batch_hard_negatives,
)
from llm4sbr_adapter.losses import InfoNCELoss

NUM_ITEMS, D, L = 30, 16, 6


class TinyBackbone(nn.Module):
    """Item embedding + GRU item states + attention-free mean session embedding (SR-GNN-shaped outputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(NUM_ITEMS, D, padding_idx=0)
        self.gru = nn.GRU(D, D, batch_first=True)

    def forward(self, items: torch.Tensor):
        mask = items > 0
        states, _ = self.gru(self.embedding(items))
        states = states * mask.unsqueeze(-1)
        session = states.sum(1) / mask.sum(1, keepdim=True)
        return states, mask, session


def _sessions(n, seed, id_offset=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, L + 1, (n,), generator=g)
    items = torch.randint(1, NUM_ITEMS, (n, L), generator=g)
    items[torch.arange(L).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    targets = torch.randint(1, NUM_ITEMS, (n,), generator=g)
    return items, targets, torch.arange(id_offset, id_offset + n)


def _setup(cfg_kwargs=None, n_train=120):
    torch.manual_seed(0)
    backbone = TinyBackbone()
    head = HiphopHead(HiphopConfig(hidden_size=D, top_m=5, **(cfg_kwargs or {})))
    train = _sessions(n_train, seed=1)

    def run(batch):
        items, targets, ids = batch
        states, mask, session = backbone(items)
        return BackboneBatch(states, mask, session, ids=ids, groups=ids // 4, targets=targets)

    batches = [tuple(t[i : i + 32] for t in train) for i in range(0, n_train, 32)]
    if head.bank is not None:
        head.refresh_bank(batches, run, model=nn.ModuleList([backbone, head]), progress=False)
    return backbone, head, train


def test_forward_shapes_losses_and_gradients():
    backbone, head, (items, targets, ids) = _setup({"diversity_weight": 0.1, "num_intents": 3})
    head.train()
    states, mask, session = backbone(items[:16])
    out = head(states, mask, session, session_ids=ids[:16], groups=ids[:16] // 4, targets=targets[:16])
    assert out.session.shape == (16, D)
    assert set(out.losses) == {"diversity", "contrastive"}
    assert torch.isfinite(out.aux_loss)
    assert out.aux_loss.item() == pytest.approx(
        0.1 * out.losses["diversity"].item() + 0.1 * out.losses["contrastive"].item(), rel=1e-5
    )
    assert out.intents.intents.shape == (16, 3, D)
    scores = out.session @ backbone.embedding.weight[1:].T
    (nn.functional.cross_entropy(scores, targets[:16] - 1) + out.aux_loss).backward()
    for name, p in list(head.named_parameters()) + list(backbone.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for lv in ("global", "local"):  # training: never itself, never a sibling prefix
        assert (out.neighbour_ids[lv] != ids[:16].unsqueeze(1)).all()
        assert (out.neighbour_ids[lv] // 4 != (ids[:16] // 4).unsqueeze(1)).all()


@pytest.mark.parametrize("k", [1, 2, 6])
def test_k_is_configurable_and_parts_can_be_switched_off(k):
    backbone, head, (items, _, _) = _setup({"num_intents": k, "use_neighbours": False, "use_contrastive": False})
    states, mask, session = backbone(items[:4])
    out = head(states, mask, session)
    assert out.intents.intents.shape == (4, k, D) and out.neighbours is None and out.aux_loss.item() == 0.0
    bare = HiphopHead(HiphopConfig(hidden_size=D, use_intents=False, use_neighbours=False, use_contrastive=False))
    assert torch.equal(bare(states, mask, session).session, session)


def test_empty_bank_is_a_clear_error():
    head = HiphopHead(HiphopConfig(hidden_size=D))
    backbone = TinyBackbone()
    states, mask, session = backbone(_sessions(3, seed=0)[0])
    with pytest.raises(RuntimeError, match="refresh_bank"):
        head(states, mask, session)


def test_external_intent_steers_the_neighbour_attention():
    backbone, head, (items, _, _) = _setup({"normaliser": "softmax"})
    head.eval()
    states, mask, session = backbone(items[:8])
    a = head(states, mask, session)
    b = head(states, mask, session, intent=torch.randn(8, D))
    assert not torch.allclose(a.neighbours.weights["global"], b.neighbours.weights["global"])
    assert torch.equal(a.neighbour_ids["global"], b.neighbour_ids["global"])  # retrieval uses the session


def test_composes_with_intent_enhancer():
    enhancer_mod = pytest.importorskip("llm4sbr_adapter.enhancer")
    backbone, head, (items, _, _) = _setup()
    enh = enhancer_mod.IntentEnhancer(enhancer_mod.IntentEnhancerConfig(hidden_size=D, text_dim=12))
    states, mask, session = backbone(items[:8])
    from llm4sbr_adapter.hiphop import last_item_state

    e = enh(last_item_state(states, mask), session, intents={"long": torch.randn(8, 12), "short": torch.randn(8, 12)})
    out = head(states, mask, session, intent=e.session)
    (out.session.sum() + out.aux_loss + e.aux_loss).backward()
    assert all(p.grad is not None for p in enh.project.parameters())


def test_no_test_leakage():
    """Test sessions only ever see training sessions, and a test session's output depends on nothing
    but itself: not on its target, not on the other test sessions in the batch."""
    backbone, head, (tr_items, tr_targets, tr_ids) = _setup()
    backbone.eval(), head.eval()
    version, size = head.bank.version, len(head.bank)
    te_items, te_targets, te_ids = _sessions(20, seed=7, id_offset=10_000)
    train_ids = set(tr_ids.tolist())

    def evaluate(items, targets):
        """What an evaluation loop does: scores for every item; targets only to compute metrics."""
        with torch.no_grad():
            states, mask, session = backbone(items)
            out = head(states, mask, session)  # no session_ids/targets at test time
            scores = out.session @ backbone.embedding.weight[1:].T
            hits = (scores.topk(5, dim=1).indices + 1 == targets.unsqueeze(1)).any(1)
        return out, scores, hits

    out, scores, _ = evaluate(te_items, te_targets)
    for lv, ids in out.neighbour_ids.items():
        returned = set(ids[ids >= 0].tolist())
        assert returned and returned <= train_ids, f"level {lv} returned non-train ids"
    assert head.bank.version == version and len(head.bank) == size  # evaluation never writes the bank

    # perturb the test targets and every other test session: session 0's scores must not move
    other_items, other_targets, _ = _sessions(20, seed=99)
    mixed_items = other_items.clone()
    mixed_items[0] = te_items[0]
    mixed_targets = other_targets.clone()
    mixed_targets[0] = (te_targets[0] % (NUM_ITEMS - 1)) + 1  # even its own target changes
    out2, scores2, _ = evaluate(mixed_items, mixed_targets)
    assert torch.allclose(scores[0], scores2[0], atol=1e-6)
    for lv in out.neighbour_ids:
        assert torch.equal(out.neighbour_ids[lv][0], out2.neighbour_ids[lv][0])
    # and the same session alone in a batch of one gives the same scores
    _, scores1, _ = evaluate(te_items[:1], te_targets[:1])
    assert torch.allclose(scores[0], scores1[0], atol=1e-5)


def test_bank_hard_negatives_skip_top_m_and_same_target():
    _, head, (items, targets, ids) = _setup()
    bank: SessionNeighbourBank = head.bank
    q = torch.from_numpy(np.ascontiguousarray(bank._vectors["global"][:10].numpy()))
    hard = bank_hard_negatives(bank, "global", q, top_m=5, count=4, exclude_ids=ids[:10], targets=targets[:10])
    assert hard.shape == (10, 4, D)
    top = bank.search("global", q, 5, exclude_ids=ids[:10])
    top_vecs = bank.gather("global", top.rows)
    for i in range(10):  # no hard negative is one of the top-M neighbours, none shares the target
        for h in hard[i]:
            assert not (top_vecs[i] == h).all(dim=1).any()
            row = int((bank._vectors["global"] == h).all(dim=1).nonzero()[0])
            assert bank.targets[row] != int(targets[i]) and bank.ids[row] != int(ids[i])


def test_in_batch_hard_negatives_and_infonce():
    torch.manual_seed(0)
    reps = torch.randn(8, D, requires_grad=True)
    targets = torch.tensor([1, 1, 2, 2, 3, 3, 4, 4])
    hard = in_batch_hard_negatives(reps, targets, 3)
    assert hard.shape == (8, 3, D)
    for i in range(8):
        for h in hard[i].detach():
            j = int((reps.detach() == h).all(dim=1).nonzero()[0])
            assert j != i and targets[j] != targets[i]
    # the chosen ones are the most similar different-target rows
    u = nn.functional.normalize(reps.detach(), dim=1)
    sim = (u @ u.T).masked_fill(targets.view(-1, 1) == targets.view(1, -1), -2)
    first = reps.detach()[sim.argmax(1)]
    assert torch.equal(hard[:, 0].detach(), first)
    view = reps.detach() + 0.1 * torch.randn(8, D)
    loss_fn = InfoNCELoss(temperature=0.2)
    plain, with_hard = loss_fn(reps, view), loss_fn(reps, view, hard)
    assert with_hard > plain  # extra negatives can only add to each row's denominator
    with_hard.backward()
    assert reps.grad.abs().sum() > 0
    assert in_batch_hard_negatives(reps, torch.ones(8, dtype=torch.long), 3) is None  # no different target


@pytest.mark.parametrize("mode", ["bank", "batch"])
def test_head_with_hard_negatives(mode):
    backbone, head, (items, targets, ids) = _setup({"hard_negatives": mode, "num_hard_negatives": 3})
    head.train()
    states, mask, session = backbone(items[:16])
    out = head(states, mask, session, session_ids=ids[:16], groups=ids[:16] // 4, targets=targets[:16])
    assert torch.isfinite(out.losses["contrastive"])
    out.aux_loss.backward()


def test_config_rejects_hard_negatives_without_a_count():
    # hard negatives switched on with H = 0 used to train silently without them
    with pytest.raises(ValueError, match=r"num_hard_negatives must be >= 1 when HiphopConfig.hard_negatives is .bank."):
        HiphopConfig(hidden_size=D, hard_negatives="bank", num_hard_negatives=0)
    assert HiphopConfig(hidden_size=D, hard_negatives="none", num_hard_negatives=0).num_hard_negatives == 0
    assert HiphopConfig(hidden_size=D, hard_negatives="batch").num_hard_negatives >= 1


def test_save_pretrained_round_trip(tmp_path):
    import json

    from llm4sbr_adapter.hiphop.head import CONFIG_NAME, WEIGHTS_NAME

    backbone, head, (items, _, _) = _setup({"num_intents": 3, "normaliser": "sparsemax", "pool_query": "session"})
    with torch.no_grad():  # weights no fresh head of the same seed would have
        for p in head.parameters():
            p.add_(0.1 * torch.randn_like(p))
    head.save_pretrained(tmp_path / "head")
    raw = json.loads((tmp_path / "head" / CONFIG_NAME).read_text())
    assert raw["format"] == "llm4sbr-hiphop-head" and raw["num_intents"] == 3 and raw["pool_query"] == "session"

    loaded = HiphopHead.from_pretrained(tmp_path / "head")
    assert loaded.config == head.config and len(loaded.bank) == 0  # the bank is data: rebuilt, not saved
    for name, tensor in head.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    train = _sessions(120, seed=1)
    batches = [tuple(t[i : i + 32] for t in train) for i in range(0, 120, 32)]

    def run(batch):
        b_items, b_targets, b_ids = batch
        states, mask, session = backbone(b_items)
        return BackboneBatch(states, mask, session, ids=b_ids, groups=b_ids // 4, targets=b_targets)

    loaded.refresh_bank(batches, run, model=nn.ModuleList([backbone, loaded]), progress=False)
    head.eval()
    loaded.eval()
    with torch.no_grad():
        states, mask, session = backbone(items[:8])
        assert torch.equal(head(states, mask, session).session, loaded(states, mask, session).session)

    raw["num_intents"] = 2
    (tmp_path / "head" / CONFIG_NAME).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"hiphop.safetensors does not match .*num_intents=2.*intent_capture"):
        HiphopHead.from_pretrained(tmp_path / "head")
    (tmp_path / "head" / WEIGHTS_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_NAME):
        HiphopHead.from_pretrained(tmp_path / "head")


def test_config_names_fields_and_refuses_unknown_keys(tmp_path):
    from llm4sbr_adapter.config import ConfigError

    with pytest.raises(ConfigError, match=r"HiphopConfig.use_contrastive needs HiphopConfig.use_neighbours"):
        HiphopConfig(use_neighbours=False)
    with pytest.raises(ConfigError, match=r"HiphopConfig.normaliser must be one of"):
        HiphopConfig(normaliser="max")
    with pytest.raises(ConfigError, match=r"HiphopConfig.topk must be given when HiphopConfig.normaliser is 'topk'"):
        HiphopConfig(normaliser="topk")
    with pytest.raises(ConfigError, match=r"HiphopConfig.num_heads must divide HiphopConfig.hidden_size 16, got 3"):
        HiphopConfig(hidden_size=16, num_heads=3)
    path = HiphopConfig(hidden_size=D).save(tmp_path / "c.json")
    path.write_text(path.read_text().replace('"top_m"', '"top_n"'))
    with pytest.raises(ConfigError, match=r"unknown HiphopConfig fields \['top_n'\]"):
        HiphopConfig.load(path)
