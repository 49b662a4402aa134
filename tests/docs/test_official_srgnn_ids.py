"""The row-id patch of docs/integration-srgnn-official.md against the official SR-GNN loader's shuffle.

``ShufflingLoader`` re-implements, from its documented behaviour, what ``Data`` in the official
``pytorch_code/utils.py`` does to batches: inputs are zero-padded into arrays; on every
``generate_batch`` call with ``shuffle`` the arrays are permuted **in place** by one
``np.random.shuffle``d permutation, and the batches handed out are slices of *positions*
``0..N-1``. The statements the guide adds (marked ``# LLM4SBR``) are read from the guide itself
and executed inside it, so the doc and this test cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

import llm4sbr_adapter

GUIDE = Path(llm4sbr_adapter.__file__).resolve().parents[1] / "docs" / "integration-srgnn-official.md"
INTEGRATION = Path(llm4sbr_adapter.__file__).resolve().parents[1] / "docs" / "integration.md"


def _guide_statement(pattern: str) -> str:
    """The one line of a python block of the guide that matches ``pattern`` (its comment dropped)."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    lines = [ln.strip() for block in blocks for ln in block.splitlines() if re.search(pattern, ln)]
    assert len(lines) == 1, f"expected one line matching {pattern!r} in {GUIDE.name}, found {lines}"
    return lines[0].split("#")[0].strip()


INIT_IDS = _guide_statement(r"^\s*self\.row_ids = np\.arange")
SHUFFLE_IDS = _guide_statement(r"self\.row_ids = self\.row_ids\[shuffled_arg\]")
BATCH_IDS = _guide_statement(r"session_ids = torch\.as_tensor\(data\.row_ids\[i\]\)")


class ShufflingLoader:
    """The official loader's behaviour (module docstring) with the guide's patch lines executed in it."""

    def __init__(self, sequences, targets, shuffle=False, row_ids=None, patched=True):
        width = max(len(s) for s in sequences)
        self.inputs = np.asarray([list(s) + [0] * (width - len(s)) for s in sequences])
        self.mask = np.asarray([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
        self.targets = np.asarray(targets)
        self.length = len(sequences)
        self.shuffle = shuffle
        self.patched = patched
        if patched:
            exec(INIT_IDS, {"np": np}, {"self": self, "row_ids": row_ids})

    def generate_batch(self, batch_size):
        if self.shuffle:
            shuffled_arg = np.arange(self.length)
            np.random.shuffle(shuffled_arg)
            self.inputs = self.inputs[shuffled_arg]
            self.mask = self.mask[shuffled_arg]
            self.targets = self.targets[shuffled_arg]
            if self.patched:
                exec(SHUFFLE_IDS, {"np": np}, {"self": self, "shuffled_arg": shuffled_arg})
        starts = range(0, self.length, batch_size)
        return [np.arange(a, min(a + batch_size, self.length)) for a in starts]


def _rows(n=53, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(1, 40, size=int(rng.integers(1, 7))).tolist() for _ in range(n)]
    return seqs, rng.integers(1, 40, size=n).tolist()


def _batch_ids(data, i):
    scope = {"data": data, "i": i}
    exec("session_ids = " + BATCH_IDS.split("=", 1)[1], {"torch": torch}, scope)
    return scope["session_ids"]


def test_patched_ids_name_the_rows_of_every_shuffled_batch():
    np.random.seed(0)
    seqs, targets = _rows()
    data = ShufflingLoader(seqs, targets, shuffle=True)
    for _epoch in range(3):
        for i in data.generate_batch(10):
            ids = _batch_ids(data, i).tolist()
            assert data.targets[i].tolist() == [targets[r] for r in ids]
            for pos, row in zip(i.tolist(), ids, strict=True):
                assert data.inputs[pos][data.mask[pos] == 1].tolist() == seqs[row]


def test_slices_as_ids_disagree_with_the_rows_after_a_shuffle():
    """The advice the guide replaced (pass the slice as ids) is wrong for this loader: this test would
    fail if the re-implementation did not shuffle in place, so the one above can fail too."""
    np.random.seed(0)
    seqs, targets = _rows()
    data = ShufflingLoader(seqs, targets, shuffle=True, patched=False)
    wrong = sum(data.targets[i].tolist() != [targets[r] for r in i.tolist()] for i in data.generate_batch(10))
    assert wrong > 0


def test_unshuffled_test_loader_and_given_row_ids():
    seqs, targets = _rows(12)
    data = ShufflingLoader(seqs, targets, shuffle=False)
    assert [_batch_ids(data, i).tolist() for i in data.generate_batch(5)] == [
        list(range(k, min(k + 5, 12))) for k in (0, 5, 10)
    ]
    rows = np.asarray([7, 3, 11, 0, 5, 9, 1, 2, 4, 6, 8, 10])  # split_validation's rows of train.txt
    part = ShufflingLoader([seqs[r] for r in rows], [targets[r] for r in rows], shuffle=False, row_ids=rows)
    assert _batch_ids(part, np.arange(3)).tolist() == [7, 3, 11]


def test_integration_guide_no_longer_passes_slices_as_ids():
    text = INTEGRATION.read_text(encoding="utf-8")
    assert "return the slice itself" not in text
    assert "data.row_ids[i]" in text and "integration-srgnn-official.md" in text
