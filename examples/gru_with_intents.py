"""Wire an intent store into a small GRU session model: the four places that change.

Runs on its own in a few seconds on invented data (a random store stands in for the one
``python -m llm4sbr_adapter.build_store`` writes):

    python examples/gru_with_intents.py

Lines marked ``# intents`` are the whole patch; everything else is an ordinary GRU4Rec-style model.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from llm4sbr_adapter import IntentEnhancer, IntentEnhancerConfig, IntentSource, IntentStore, StoreMetadata, write_store


class GRUSessionModel(nn.Module):
    def __init__(self, num_items: int, hidden: int, store: IntentStore) -> None:
        super().__init__()
        self.items = nn.Embedding(num_items + 1, hidden, padding_idx=0)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.attention = nn.Linear(hidden, 1)
        config = IntentEnhancerConfig(hidden_size=hidden, text_dim=store.text_dim)  # intents
        self.enhancer = IntentEnhancer(config, source=IntentSource(store))  # intents: a submodule, trains and moves

    def forward(self, sessions: torch.Tensor, session_ids: torch.Tensor):
        mask = sessions > 0
        states, _ = self.gru(self.items(sessions))  # [B, L, d]
        last = mask.sum(dim=1) - 1
        h_local = states[torch.arange(len(sessions)), last]  # the last click's state
        weights = self.attention(states).squeeze(-1).masked_fill(~mask, float("-inf")).softmax(dim=1)
        h_global = (weights.unsqueeze(-1) * states).sum(dim=1)  # attention over the session
        out = self.enhancer(h_local, h_global, session_ids=session_ids)  # intents: fuse the stored vectors
        return out.session @ self.items.weight.T, out.aux_loss  # intents: out.session replaces the old vector


def invented_data(num_sessions: int, num_items: int, length: int, seed: int):
    """Left-aligned, zero-padded sessions and their next items."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, length + 1, size=num_sessions)
    sessions = np.zeros((num_sessions, length), dtype=np.int64)
    for row, n in enumerate(lengths):
        sessions[row, :n] = rng.integers(1, num_items + 1, size=n)
    targets = rng.integers(1, num_items + 1, size=num_sessions)
    return torch.from_numpy(sessions), torch.from_numpy(targets)


def random_store(path: Path, num_sessions: int, text_dim: int, seed: int) -> IntentStore:
    """Stands in for the builder's output: one unit vector per session and perspective."""
    rng = np.random.default_rng(seed)
    intents = {p: rng.standard_normal((num_sessions, text_dim)).astype(np.float32) for p in ("long", "short")}
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=text_dim, text_encoder="random")
    write_store(path, np.arange(num_sessions), intents, meta)
    return IntentStore.open(path, perspectives=["long", "short"], text_dim=text_dim)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    sessions, targets = invented_data(num_sessions=256, num_items=50, length=6, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        store = random_store(Path(folder) / "intents.safetensors", len(sessions), text_dim=32, seed=args.seed)
        model = GRUSessionModel(num_items=50, hidden=16, store=store)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        for epoch in range(args.epochs):
            for rows in torch.randperm(len(sessions)).split(64):  # a row index is the session's store id
                scores, aux_loss = model(sessions[rows], session_ids=rows)  # intents: carry the ids
                loss = nn.functional.cross_entropy(scores, targets[rows]) + aux_loss  # intents: add aux_loss
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            print(f"epoch {epoch}: loss {loss.item():.3f} (auxiliary {aux_loss.item():+.3f}, may be negative)")
        model.enhancer.save_pretrained(Path(folder) / "enhancer")  # config JSON + safetensors weights


if __name__ == "__main__":
    main()
