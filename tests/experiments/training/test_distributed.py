"""Training with the intent enhancer under torch DDP (gloo, 2 CPU processes) on one memory-mapped store (issue 17).

Both ranks open the same store file; each trains on its half of every global batch. DDP averages the two
ranks' gradients, so the run must equal one process that takes, per global batch, the mean of the losses of
the same two halves (CE + aux per half: the uniformity term compares rows within a rank's batch, as any
in-batch loss does under DDP). And the store must be shared, not copied: its vectors stay a memory map in
each rank, the pages both ranks touched are shared between them, and neither rank's own (anonymous) memory
grows by anything near the store's size.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig
from llm4sbr_adapter.experiments.data.splits import load_split
from llm4sbr_adapter.experiments.models.backbones import STAMP
from llm4sbr_adapter.experiments.models.batching import make_batch
from llm4sbr_adapter.experiments.training.process_memory import anonymous_rss_mb, mapped_file_mb
from llm4sbr_adapter.store import IntentStore, StoreMetadata, sha256_file, write_store

ROWS, TEXT_DIM, ITEMS, HIDDEN = 16384, 256, 30, 8  # a 16 MiB float16 store, a tiny model
GLOBAL_BATCH, STEPS, WORLD = 16, 4, 2


class Net(nn.Module):
    """STAMP + enhancer as one module (what DDP wraps): ``forward(batch)`` is the training loss."""

    def __init__(self, store: IntentStore) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = STAMP(ITEMS, HIDDEN)
        self.enhancer = IntentEnhancer(IntentEnhancerConfig(hidden_size=HIDDEN, text_dim=TEXT_DIM), store=store)

    def forward(self, batch) -> torch.Tensor:
        h_local, h_global = self.backbone.session_embeddings(batch)
        out = self.enhancer(h_local, h_global, session_ids=batch.row_ids, sessions_sha256=batch.sessions_sha256)
        return F.cross_entropy(self.backbone.scores(out.session), batch.targets - 1) + out.aux_loss


def global_rows(step: int) -> np.ndarray:
    return np.random.default_rng(step).choice(ROWS, GLOBAL_BATCH, replace=False)


def write_fixture(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, ITEMS + 1, size=int(rng.integers(1, 6))).tolist() for _ in range(ROWS)]
    targets = rng.integers(1, ITEMS + 1, size=ROWS).tolist()
    data = folder / "train.txt"
    with open(data, "wb") as handle:
        pickle.dump((seqs, targets), handle)
    intents = {p: rng.normal(size=(ROWS, TEXT_DIM)).astype(np.float32) for p in ("long", "short")}
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=TEXT_DIM, sessions_sha256=sha256_file(data))
    store = write_store(folder / "store.safetensors", np.arange(ROWS), intents, meta, dtype="float16")
    return data, store


def rank_main(rank: int, folder: str) -> None:
    """One DDP rank: open the store (mmap), train STEPS steps on its half of each global batch, report."""
    folder = Path(folder)
    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    data = load_split(folder / "train.txt")
    store = IntentStore.open(folder / "store.safetensors", sessions_sha256=data.sha256)
    model = nn.parallel.DistributedDataParallel(Net(store))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    half = GLOBAL_BATCH // WORLD
    for step in range(STEPS):
        rows = global_rows(step)[rank * half : (rank + 1) * half]
        opt.zero_grad()
        model(make_batch(data, rows)).backward()
        opt.step()
    dist.barrier()  # both ranks have mapped and read the store: now its pages are mapped twice
    again = IntentStore.open(folder / "store.safetensors")  # its vectors must be memory maps (checked below)
    anon_before = anonymous_rss_mb()  # torch, DDP, Adam and the open's validation scan have allocated by now
    for start in range(0, ROWS, 128):  # read every row in batches, as an epoch would
        again.lookup(np.arange(start, start + 128), dtype=torch.float32)
    report = {
        "memmap": all(isinstance(s.vectors(p), np.memmap) for s in (store, again) for p in store.perspectives),
        "anon_growth_mb": anonymous_rss_mb() - anon_before,
        "mapped": mapped_file_mb([store.path]),
    }
    (folder / f"rank{rank}.json").write_text(json.dumps(report))
    if rank == 0:
        torch.save(model.module.state_dict(), folder / "ddp_state.pt")
    dist.barrier()  # keep both maps alive until both ranks have measured
    dist.destroy_process_group()


def single_process_state(folder: Path) -> dict:
    """The same steps in one process: per global batch the mean of the two halves' losses."""
    data = load_split(folder / "train.txt")
    model = Net(IntentStore.open(folder / "store.safetensors", sessions_sha256=data.sha256))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    half = GLOBAL_BATCH // WORLD
    for step in range(STEPS):
        rows = global_rows(step)
        opt.zero_grad()
        losses = [model(make_batch(data, rows[r * half : (r + 1) * half])) for r in range(WORLD)]
        (sum(losses) / WORLD).backward()
        opt.step()
    return model.state_dict()


@pytest.mark.slow  # two spawned interpreters importing torch: 10-80 s depending on the load
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch without gloo")
def test_ddp_two_ranks_equal_one_process_and_share_the_store_pages(tmp_path):
    _, store_path = write_fixture(tmp_path)
    mp.spawn(rank_main, args=(str(tmp_path),), nprocs=WORLD, join=True)

    ddp = torch.load(tmp_path / "ddp_state.pt")
    ref = single_process_state(tmp_path)
    assert ddp.keys() == ref.keys()
    for name in ref:
        torch.testing.assert_close(ddp[name], ref[name], rtol=1e-5, atol=1e-6, msg=name)
    moved = [n for n in ref if not torch.equal(ref[n], Net(IntentStore.open(store_path)).state_dict()[n])]
    assert any(n.startswith("enhancer.project") for n in moved) and any(n.startswith("backbone") for n in moved)

    intent_mb = 2 * ROWS * TEXT_DIM * 2 / 2**20  # two float16 perspectives
    for rank in range(WORLD):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert report["memmap"], "the store's vectors were materialised"
        # reading every row allocates no copy of the store (one batch at a time)
        assert report["anon_growth_mb"] < 0.25 * intent_mb, report
        if report["mapped"] is not None:  # Linux: the pages both ranks read are one shared copy
            assert report["mapped"]["Shared_Clean"] >= 0.9 * intent_mb, report
            assert report["mapped"]["Private_Dirty"] == 0, report
