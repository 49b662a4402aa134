"""SessionNeighbourBank (FAISS, self/group exclusion, refresh) and IntentGuidedNeighbourAggregator."""

import numpy as np
import pytest
import torch
from torch import nn

from llm4sbr_adapter.hiphop.neighbours import (
    BankRows,
    IntentGuidedNeighbourAggregator,
    SessionNeighbourBank,
    last_items_mean,
)

D, N = 16, 200


def _bank(groups=False, targets=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    vecs = {"global": torch.randn(N, D, generator=g), "local": torch.randn(N, D, generator=g)}
    ids = np.arange(1000, 1000 + N)  # ids are not row numbers
    bank = SessionNeighbourBank(D)
    bank.build(
        ids, vecs, groups=(np.arange(N) // 5) if groups else None, targets=(np.arange(N) % 7) if targets else None
    )
    return bank, ids, vecs


def test_search_shapes_and_cosine_order():
    bank, ids, vecs = _bank()
    q = torch.randn(8, D)
    hits = bank.search("global", q, 10)
    assert hits.rows.shape == hits.ids.shape == hits.scores.shape == hits.valid.shape == (8, 10)
    assert hits.valid.all()
    cos = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(vecs["global"], dim=1).T
    assert torch.equal(hits.rows, cos.topk(10, dim=1).indices)
    assert torch.allclose(hits.scores, cos.topk(10, dim=1).values, atol=1e-5)
    assert torch.equal(hits.ids, torch.from_numpy(ids)[hits.rows])
    g = bank.gather("global", hits.rows)
    assert g.shape == (8, 10, D) and torch.equal(g[0, 0], vecs["global"][hits.rows[0, 0]])


def test_neighbours_come_from_the_whole_bank_not_the_batch():
    bank, ids, vecs = _bank()
    batch_rows = torch.arange(8)
    hits = bank.search("local", vecs["local"][batch_rows], 10, exclude_ids=torch.from_numpy(ids[:8]))
    batch_ids = set(ids[:8].tolist())
    outside = [i for i in hits.ids.flatten().tolist() if i not in batch_ids]
    assert len(outside) >= 70  # 8 x 10 neighbours; nearly all lie outside the batch of 8


def test_self_exclusion_and_groups():
    bank, ids, vecs = _bank(groups=True)
    q = vecs["global"][:20]
    plain = bank.search("global", q, 5)
    assert torch.equal(plain.ids[:, 0], torch.from_numpy(ids[:20]))  # without exclusion a session finds itself
    own = torch.from_numpy(ids[:20])
    hits = bank.search("global", q, 5, exclude_ids=own)
    assert (hits.ids != own.unsqueeze(1)).all() and hits.valid.all()
    assert torch.equal(hits.ids[:, 0], plain.ids[:, 1])  # the rest keep their order
    grp = torch.from_numpy(np.arange(20) // 5)
    hits_g = bank.search("global", q, 5, exclude_ids=own, exclude_groups=grp)
    assert (torch.from_numpy(bank.groups)[hits_g.rows] != grp.unsqueeze(1)).all() and hits_g.valid.all()
    with pytest.raises(ValueError, match="groups"):
        _bank()[0].search("global", q, 5, exclude_groups=grp)


def test_skip_returns_ranks_beyond_top_m():
    bank, _, vecs = _bank()
    q = torch.randn(3, D)
    top = bank.search("global", q, 15)
    beyond = bank.search("global", q, 5, skip=10)
    assert torch.equal(beyond.rows, top.rows[:, 10:15])


def test_small_bank_pads_with_invalid():
    bank = SessionNeighbourBank(D, levels=("global",))
    bank.build([1, 2, 3], {"global": torch.randn(3, D)})
    hits = bank.search("global", torch.randn(2, D), 5, exclude_ids=torch.tensor([1, 9]))
    assert hits.valid.sum(1).tolist() == [2, 3]
    assert (hits.rows[~hits.valid] == -1).all() and (hits.ids[~hits.valid] == -1).all()
    assert (bank.gather("global", hits.rows)[~hits.valid] == 0).all()


def test_build_validation():
    bank = SessionNeighbourBank(D)
    with pytest.raises(ValueError, match="unique"):
        bank.build([1, 1], {"global": torch.randn(2, D), "local": torch.randn(2, D)})
    with pytest.raises(ValueError, match="lack levels"):
        bank.build([1, 2], {"global": torch.randn(2, D)})
    with pytest.raises(ValueError, match="NaN"):
        bank.build([1, 2], {"global": torch.full((2, D), float("nan")), "local": torch.randn(2, D)})
    with pytest.raises(RuntimeError, match="empty"):
        bank.search("global", torch.randn(1, D), 3)


def test_refresh_from_batches_under_no_grad_restores_mode():
    enc = nn.Sequential(nn.Linear(D, D), nn.Dropout(0.5))
    enc.train()
    data = [(torch.arange(i * 10, i * 10 + 10), torch.randn(10, D)) for i in range(5)]
    seen_grad = []

    def encode(batch):
        ids, x = batch
        h = enc(x)
        seen_grad.append(torch.is_grad_enabled())
        assert not enc.training
        return BankRows(ids=ids, vectors={"global": h, "local": h * 2}, targets=ids % 3)

    bank = SessionNeighbourBank(D)
    bank.refresh(data, encode, model=enc, progress=False)
    assert len(bank) == 50 and bank.version == 1 and not any(seen_grad) and enc.training
    assert np.array_equal(bank.ids, np.arange(50)) and np.array_equal(bank.targets, np.arange(50) % 3)
    bank.refresh(data[:2], encode, model=enc, progress=False)  # a refresh replaces, never appends
    assert len(bank) == 20 and bank.version == 2


def test_last_items_mean():
    states = torch.arange(2 * 5 * 1, dtype=torch.float32).view(2, 5, 1)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]).bool()
    out = last_items_mean(states, mask, last_n=3)
    assert out.flatten().tolist() == [3.0, 5.5]  # mean(2,3,4) ; session 2 has only 2 items: mean(5,6)


@pytest.mark.parametrize("normaliser", ["entmax15", "sparsemax", "topk"])
def test_aggregator_sparse_weights_masks_and_grads(normaliser):
    torch.manual_seed(0)
    agg = IntentGuidedNeighbourAggregator(D, normaliser=normaliser, topk=3)
    with torch.no_grad():
        agg.log_scale.fill_(2.0)  # sharper scores, as training tends to learn
    b, m = 6, 10
    intent = torch.randn(b, D, requires_grad=True)
    neigh = {"global": torch.randn(b, m, D), "local": torch.randn(b, m, D)}
    valid = {"global": torch.ones(b, m, dtype=torch.bool), "local": torch.ones(b, m, dtype=torch.bool)}
    valid["local"][:, 7:] = False
    valid["local"][5] = False  # a session without local neighbours
    out = agg(intent, neigh, valid)
    assert out.view.shape == (b, D) and out.gate.shape == (b, 2)
    w_g, w_l = out.weights["global"], out.weights["local"]
    assert torch.allclose(w_g.sum(-1), torch.ones(b), atol=1e-6)
    assert (w_g == 0).any(), "sparse normaliser should give exact zeros"
    assert (w_l[:, 7:] == 0).all() and (w_l[5] == 0).all() and not torch.isnan(out.view).any()
    assert torch.allclose(w_l[:5].sum(-1), torch.ones(5), atol=1e-6)
    expected = out.gate[:, :1] * (w_g.unsqueeze(-1) * neigh["global"]).sum(1) + out.gate[:, 1:] * (
        w_l.unsqueeze(-1) * neigh["local"]
    ).sum(1)
    assert torch.allclose(out.view, expected, atol=1e-5)
    out.view.sum().backward()
    assert intent.grad.abs().sum() > 0
    for p in (agg.query["global"].weight, agg.key["local"].weight, agg.gate.weight, agg.log_scale):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_search_never_modifies_the_queries():
    bank, _, vecs = _bank()
    q = torch.randn(4, D) * 5
    before = q.clone()
    bank.search("global", q.detach(), 3)
    assert torch.equal(q, before)  # FAISS normalises a copy, not the caller's tensor
    stored = bank._vectors["global"].clone()
    bank.search("global", bank._vectors["global"][:4], 3)
    assert torch.equal(bank._vectors["global"], stored)


def test_ivf_bank_is_approximate_flat_with_the_same_exclusion_rules():
    """IVF: same API and exclusion rules; with every cell probed it finds exactly the flat neighbours."""
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(20, D, generator=g) * 3
    vecs = {lv: centres[torch.arange(4000) % 20] + torch.randn(4000, D, generator=g) for lv in ("global", "local")}
    ids = np.arange(4000) + 7
    flat = SessionNeighbourBank(D)
    flat.build(ids, vecs, groups=np.arange(4000) // 4)
    exhaustive = SessionNeighbourBank(D, index="ivf", nlist=32, nprobe=32, ivf_min_rows=1000)
    exhaustive.build(ids, vecs, groups=np.arange(4000) // 4)
    probed = SessionNeighbourBank(D, index="ivf", nlist=32, nprobe=4, ivf_min_rows=1000)
    probed.build(ids, vecs, groups=np.arange(4000) // 4)
    q, own, grp = vecs["global"][:50], torch.from_numpy(ids[:50]), torch.from_numpy(np.arange(50) // 4)
    want = flat.search("global", q, 10, exclude_ids=own, exclude_groups=grp)
    got = exhaustive.search("global", q, 10, exclude_ids=own, exclude_groups=grp)
    assert torch.equal(torch.sort(got.ids, 1).values, torch.sort(want.ids, 1).values)
    approx = probed.search("global", q, 10, exclude_ids=own, exclude_groups=grp)
    assert (approx.ids != own.unsqueeze(1)).all()
    assert (torch.from_numpy(probed.groups)[approx.rows.clamp(min=0)] != grp.unsqueeze(1))[approx.valid].all()
    recall = np.mean([len(set(a) & set(w)) / 10 for a, w in zip(approx.ids.tolist(), want.ids.tolist(), strict=True)])
    assert recall > 0.5  # clustered data: a few probed cells hold most true neighbours
    small = SessionNeighbourBank(D, index="ivf")  # below ivf_min_rows: exact
    small.build(ids[:500], {lv: v[:500] for lv, v in vecs.items()})
    assert isinstance(small._index["global"], type(flat._index["global"]))
    with pytest.raises(ValueError, match="index"):
        SessionNeighbourBank(D, index="hnsw")
