"""Every pattern of docs/integration.md, run on a small model written for it.

The models are toy versions of shapes met in the wild: a graph codebase with item-level outputs stored
newest first, a left-padded model, a GRU with one session vector, a NARM-like model with swapped names and
a hidden size other than its embedding size, a legacy model that builds its optimizer and re-initialises
every parameter in ``__init__``; plus the loader patterns (Dataset/DataLoader with workers, provenance),
the baseline arms and the sanity checks.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from llm4sbr_adapter import (
    IntentEnhancer,
    IntentEnhancerConfig,
    IntentStore,
    StoreMetadata,
    StoreMismatchError,
    write_store,
)
from llm4sbr_adapter.experiments.data.splits import load_split
from llm4sbr_adapter.integration_checks import (
    check_aux_reaches_projections,
    check_ids_match_targets,
    check_in_optimizer,
)
from llm4sbr_adapter.session_readout import last_click, last_click_index, masked_mean

N_ITEMS, D, T, ROWS = 20, 16, 8, 40  # items 1..20, width, text dim, sessions per split


def _split(seed: int) -> tuple[list[list[int]], list[int]]:
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(1, N_ITEMS + 1, size=int(rng.integers(2, 7))).tolist() for _ in range(ROWS)]
    return seqs, rng.integers(1, N_ITEMS + 1, size=ROWS).tolist()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """train.txt / test.txt (SR-GNN pickles) and a store per split, keyed by row number, tied to its file."""
    root = tmp_path_factory.mktemp("guide")
    out = {}
    for k, split in enumerate(("train", "test")):
        seqs, targets = _split(k)
        with open(root / f"{split}.txt", "wb") as handle:
            pickle.dump((seqs, targets), handle)
        loaded = load_split(root / f"{split}.txt")
        rng = np.random.default_rng(10 + k)
        vecs = {p: rng.normal(size=(ROWS, T)).astype(np.float32) for p in ("long", "short")}
        meta = StoreMetadata(perspectives=["long", "short"], text_dim=T, sessions_sha256=loaded.sha256)
        store = IntentStore.open(write_store(root / f"{split}.safetensors", list(range(ROWS)), vecs, meta))
        out[split] = {"seqs": seqs, "targets": targets, "split": loaded, "store": store}
    return out


def _padded(seqs: list[list[int]], *, reverse: bool = False, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(s) for s in seqs)
    items = torch.zeros(len(seqs), length, dtype=torch.long)
    for b, s in enumerate(seqs):
        row = torch.tensor(s[::-1] if reverse else s)
        if left:
            items[b, length - len(s) :] = row
        else:
            items[b, : len(s)] = row
    return items, items > 0


def _enhancer(width: int = D, **kw) -> IntentEnhancer:
    torch.manual_seed(0)
    return IntentEnhancer(IntentEnhancerConfig(hidden_size=width, text_dim=T, **kw))


# --------------------------------------------------------------------------- item-level outputs, reversed order
class ReversedGraphModel(nn.Module):
    """A graph codebase's shape: item-level 'local' and 'global' outputs [B, L, d], summed; sessions newest first."""

    def __init__(self, store: IntentStore) -> None:
        super().__init__()
        self.items = nn.Embedding(N_ITEMS + 1, D, padding_idx=0)
        self.local_agg = nn.Linear(D, D)
        self.global_agg = nn.Linear(D, D)
        self.enhancer = IntentEnhancer(IntentEnhancerConfig(hidden_size=D, text_dim=T), store=store)  # +

    def item_states(self, items: torch.Tensor) -> torch.Tensor:
        x = self.items(items)
        return self.local_agg(x) + self.global_agg(x.mean(dim=1, keepdim=True))  # [B, L, d], no session vector

    def forward(self, items, mask, ids):
        states = self.item_states(items)
        h_local = last_click(states, mask, latest="start")  # + newest click is at position 0
        h_global = masked_mean(states, mask)  # + pooled item-level output
        out = self.enhancer(h_local, h_global, session_ids=ids)
        return out.session @ self.items.weight[1:].T, out.aux_loss


def test_reversed_sessions_the_length_rule_picks_the_first_click_and_last_click_the_latest(data):
    seqs = data["train"]["seqs"]
    items, mask = _padded(seqs, reverse=True)
    lengths = mask.sum(dim=1)
    rows = torch.arange(len(seqs))
    latest = torch.tensor([s[-1] for s in seqs])
    first = torch.tensor([s[0] for s in seqs])
    assert torch.equal(items[rows, lengths - 1], first)  # the docs' old `length - 1` rule: the oldest click
    assert torch.equal(items[rows, last_click_index(mask, "start")], latest)
    left_items, left_mask = _padded(seqs, left=True)
    assert torch.equal(left_items[rows, last_click_index(left_mask, "end")], latest)  # left padding: position L-1
    assert (left_items[rows, lengths - 1] == 0).any()  # ... where `length - 1` lands on padding


def test_item_level_model_trains_with_pooled_behaviours(data):
    model = ReversedGraphModel(data["train"]["store"])
    items, mask = _padded(data["train"]["seqs"], reverse=True)
    targets = torch.tensor(data["train"]["targets"]) - 1
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    check_in_optimizer(optimizer, model.enhancer)
    losses = []
    for _ in range(30):
        scores, aux = model(items, mask, torch.arange(ROWS))
        loss = nn.functional.cross_entropy(scores, targets) + aux
        check_aux_reaches_projections(model.enhancer, aux)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.5


# --------------------------------------------------------------------------- one session vector, swapped names, widths
class GRUSingleVector(nn.Module):
    """GRU4Rec-like: the last GRU state is the only session vector; the enhancer runs in single-input mode."""

    def __init__(self) -> None:
        super().__init__()
        self.items = nn.Embedding(N_ITEMS + 1, D, padding_idx=0)
        self.gru = nn.GRU(D, D, batch_first=True)
        self.enhancer = _enhancer()

    def forward(self, items, mask, intents):
        states, _ = self.gru(self.items(items))
        out = self.enhancer(last_click(states, mask), intents=intents)  # no h_global: single-input mode
        return out.session @ self.items.weight[1:].T, out


class NarmLike(nn.Module):
    """NARM's names: c_global is the last GRU state, c_local the attention readout; hidden 24, embedding 16."""

    HIDDEN = 24

    def __init__(self) -> None:
        super().__init__()
        self.items = nn.Embedding(N_ITEMS + 1, D, padding_idx=0)
        self.gru = nn.GRU(D, self.HIDDEN, batch_first=True)
        self.attn = nn.Linear(self.HIDDEN, 1)
        self.enhancer = _enhancer(self.HIDDEN)  # + fuse at the GRU's width ...
        self.b = nn.Linear(self.HIDDEN, D, bias=False)  # ... then the backbone's own map to the item width

    def forward(self, items, mask, intents):
        states, _ = self.gru(self.items(items))
        c_global = last_click(states, mask)  # NARM's "global encoder": the last state = our h_local
        weights = self.attn(states).squeeze(-1).masked_fill(~mask, float("-inf")).softmax(dim=1)
        c_local = (weights.unsqueeze(-1) * states).sum(dim=1)  # NARM's "local encoder": a readout = our h_global
        out = self.enhancer(h_local=c_global, h_global=c_local, intents=intents)
        return self.b(out.session) @ self.items.weight[1:].T, out


def _intents(b: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {p: torch.randn(b, T, generator=g) for p in ("long", "short")}


def test_single_vector_model_uses_single_input_mode(data):
    items, mask = _padded(data["train"]["seqs"])
    model = GRUSingleVector()
    scores, out = model(items, mask, _intents(ROWS))
    assert scores.shape == (ROWS, N_ITEMS) and out.session.shape == (ROWS, D)
    check_aux_reaches_projections(model.enhancer, out.aux_loss)


def test_narm_names_map_by_role_and_the_hidden_width_is_the_enhancers(data):
    model = NarmLike()
    items, mask = _padded(data["train"]["seqs"])
    scores, out = model(items, mask, _intents(ROWS))
    assert scores.shape == (ROWS, N_ITEMS) and out.session.shape == (ROWS, NarmLike.HIDDEN)
    # the short-term intent is aligned with h_local, which must be the last GRU state
    states, _ = model.gru(model.items(items))
    lengths = mask.sum(dim=1)
    assert model.enhancer.config.pairing["short"] == "local"
    torch.testing.assert_close(last_click(states, mask), states[torch.arange(ROWS), lengths - 1])
    with pytest.raises(ValueError, match=r"h_local must have shape \[batch, 16\] \(hidden_size\), got \(40, 24\)"):
        _enhancer(D)(states[:, -1], states[:, 0], intents=_intents(ROWS))  # configured with the item width


# --------------------------------------------------------------------------- loaders
class SessionRows(Dataset):
    """A Dataset whose __getitem__ returns the row id next to the row: any shuffling keeps them together."""

    def __init__(self, seqs, targets, store_path=None) -> None:
        self.seqs, self.targets, self.store_path = seqs, targets, store_path
        self.store: IntentStore | None = None  # opened in each worker, on its first row

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, i: int) -> dict:
        row = {"items": self.seqs[i], "target": self.targets[i], "row_id": i}
        if self.store_path is not None:  # looked up in the worker, from the memory-mapped file
            if self.store is None:
                self.store = IntentStore.open(self.store_path)
            row["long"] = self.store.lookup([i], perspectives=["long"])["long"][0]
        return row


def collate(rows: list[dict]) -> dict:
    items, mask = _padded([r["items"] for r in rows])
    batch = {"items": items, "mask": mask, "row_id": torch.tensor([r["row_id"] for r in rows])}
    batch["target"] = torch.tensor([r["target"] for r in rows])
    if "long" in rows[0]:
        batch["long"] = torch.stack([r["long"] for r in rows])
    return batch


def test_dataloader_with_shuffle_and_workers_carries_row_ids_and_reads_the_mmap_store(data):
    train = data["train"]
    dataset = SessionRows(train["seqs"], train["targets"], store_path=train["store"].path)
    loader = DataLoader(dataset, batch_size=8, shuffle=True, num_workers=2, collate_fn=collate)
    seen = []
    for position, batch in enumerate(loader):
        check_ids_match_targets(batch["row_id"], batch["target"], train["targets"])
        in_main = train["store"].lookup(batch["row_id"], perspectives=["long"])["long"]
        torch.testing.assert_close(batch["long"], in_main)  # a worker's lookup is the main process's
        seen += batch["row_id"].tolist()
        if position == 0:  # the trap: positions in the shuffled order are not row ids
            with pytest.raises(AssertionError, match="the ids are not the rows of the batch"):
                check_ids_match_targets(torch.arange(8), batch["target"], train["targets"])
    assert sorted(seen) == list(range(ROWS))


def test_provenance_travels_with_the_loader_and_a_wrong_splits_store_is_refused(data):
    train, test = data["train"], data["test"]
    enhancer = _enhancer()
    enhancer.bind_store(train["store"])
    h = torch.randn(4, D)
    ids = torch.arange(4)
    enhancer(h, h, session_ids=ids, sessions_sha256=train["split"].sha256, sessions_source="train.txt")
    with pytest.raises(StoreMismatchError, match="test.txt"):  # test rows, train store still bound
        enhancer(h, h, session_ids=ids, sessions_sha256=test["split"].sha256, sessions_source="test.txt")
    enhancer.bind_store(test["store"])
    enhancer(h, h, session_ids=ids, sessions_sha256=test["split"].sha256, sessions_source="test.txt")


def test_item_count_comes_from_the_data_not_a_table_of_names(data):
    seen = [i for part in data.values() for s in part["seqs"] for i in s] + [
        t for part in data.values() for t in part["targets"]
    ]
    n_items = max(seen) + 1  # or the row count of the prepared folder's items.tsv, + 1 for padding
    nn.Embedding(n_items, D)(torch.tensor(seen))  # every id of every split fits
    with pytest.raises(IndexError):
        nn.Embedding(max(seen) - 3, D)(torch.tensor(seen))  # a hard-coded fallback that is too small


# --------------------------------------------------------------------------- optimizer in __init__, re-init loops
class LegacyModel(nn.Module):
    """Builds its optimizer in __init__ and re-initialises every parameter there, as many research codebases do."""

    def __init__(self, patched_order: bool) -> None:
        super().__init__()
        self.items = nn.Embedding(N_ITEMS + 1, D)
        self.readout = nn.Linear(D, D)
        if patched_order:
            self.reset_parameters()  # the codebase's loop first, over the backbone only ...
            self.enhancer = _enhancer()  # ... then the enhancer, with its own initialisation ...
            self.optimizer = torch.optim.Adam(self.parameters())  # ... then the optimizer, over both
        else:
            self.optimizer = torch.optim.Adam(self.parameters())
            self.enhancer = _enhancer()  # added where the forward pass needs it: after the optimizer
            self.reset_parameters()  # and the loop re-initialises it too

    def reset_parameters(self) -> None:
        stdv = 1.0 / D**0.5
        for weight in self.parameters():
            weight.data.uniform_(-stdv, stdv)


def test_optimizer_in_init_and_reinit_loop_are_caught_and_the_patched_order_passes():
    fresh = _enhancer().state_dict()
    bad = LegacyModel(patched_order=False)
    with pytest.raises(AssertionError, match="are not in the optimizer"):
        check_in_optimizer(bad.optimizer, bad.enhancer)
    assert not torch.equal(bad.enhancer.fuse.bias, fresh["fuse.bias"])  # the loop overwrote its initialisation
    good = LegacyModel(patched_order=True)
    check_in_optimizer(good.optimizer, good.enhancer)
    for name, value in good.enhancer.state_dict().items():
        assert torch.equal(value, fresh[name]), name


# --------------------------------------------------------------------------- fair baseline arms
def test_baseline_arms_keep_the_added_layer_and_change_only_the_intents(data):
    store = data["train"]["store"]
    enhancer = _enhancer()
    enhancer.bind_store(store)
    h_local, h_global, ids = torch.randn(ROWS, D), torch.randn(ROWS, D), torch.arange(ROWS)
    real = enhancer(h_local, h_global, session_ids=ids)
    zeros = {p: torch.zeros(ROWS, T) for p in ("long", "short")}
    zero_arm = enhancer(h_local, h_global, intents=zeros).session  # same layer fed zeros; leave its aux_loss out
    other = enhancer(h_local, h_global, intents={p: torch.randn(ROWS, T) for p in ("long", "short")}).session
    assert not torch.allclose(zero_arm, real.session)
    perm = np.random.default_rng(0).permutation(ROWS)  # one fixed permutation of the store's ids
    assert (perm == np.arange(ROWS)).sum() <= 2
    shuffled = enhancer(h_local, h_global, session_ids=perm[ids.numpy()])  # another session's intent per row
    torch.testing.assert_close(
        shuffled.projected["long"], enhancer.project_intents(store.lookup(perm, perspectives=["long", "short"]))["long"]
    )
    assert zero_arm.shape == other.shape == real.session.shape


def test_aux_check_fails_when_the_aux_loss_cannot_train_the_projections():
    h = torch.randn(6, D)
    weightless = _enhancer(loss_weight=0.0)
    with pytest.raises(AssertionError, match=r"sends no gradient into the projections of \['long', 'short'\]"):
        check_aux_reaches_projections(weightless, weightless(h, h, intents=_intents(6)).aux_loss)
    enhancer = _enhancer()
    with pytest.raises(AssertionError, match="aux_loss has no graph"):
        check_aux_reaches_projections(enhancer, enhancer(h, h, intents=_intents(6)).aux_loss.detach())


def test_readout_refuses_rows_without_a_click_and_bad_shapes():
    mask = torch.tensor([[True, False], [False, False]])
    with pytest.raises(ValueError, match=r"rows \[1\] of the mask have no real click"):
        last_click_index(mask)
    with pytest.raises(ValueError, match="latest must be"):
        last_click_index(mask[:1], "last")
    with pytest.raises(ValueError, match="states must be"):
        masked_mean(torch.zeros(1, 3, D), mask[:1])
