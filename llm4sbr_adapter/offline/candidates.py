"""Candidate items for a prompt: the items that followed a session's items in other sessions.

A perspective whose template has ``{candidates}`` shows the LLM a short list to choose from. The list
comes from item transitions in a file of other sessions (``BuildConfig.candidate_sessions``; under the
authors' protocol, the training split): in each of those sessions (a pickle row's inputs followed by its
target), item ``a`` at position ``i`` votes ``1 / (j - i)`` for item ``b`` at position ``j``, for
``0 < j - i <= STEPS`` (sequential rules' weighting). A session scores a candidate by the votes of its own
items, the most recent weighing most (``1 / (distance from the end + 1)``); its own items are never
candidates. Ties go to the item seen first in the file.

No target leaks into a prompt:

* the sessions being built never lend their targets (their file is read without them);
* when the candidate file *is* the sessions file (the training split's own store), each row's own
  transitions, its target included, are removed from its votes (leave one session out);
* a candidate file in which one row continues another (prefix augmentation: rows ``a b -> c`` and
  ``a b c -> d`` of one user) is refused, since the longer row would show the shorter one its target.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..errors import Llm4sbrError, setting_hint
from .config import BuildConfig
from .inputs.catalogue import Catalogue
from .inputs.ids import item_key
from .inputs.sessions import SessionSet, read_sessions
from .prompts import item_lines

__all__ = ["STEPS", "CandidateError", "TransitionCandidates", "candidate_lines"]

#: How far ahead (in positions) an item votes for the items after it.
STEPS = 10
_CHUNK = 1024
_AUGMENTED_SHARE = 0.25
_NOISE = 1e-9


class CandidateError(Llm4sbrError, ValueError):
    """The candidate sessions cannot be used without leaking targets, or do not fit the build."""


def _full_sequences(sessions: SessionSet) -> list[list[str]]:
    """Each row's items as keys, with its target appended when the file has targets."""
    keys = [[item_key(i) for i in seq] for seq in sessions.sequences]
    if sessions.targets is None:
        return keys
    return [seq + [item_key(t)] for seq, t in zip(keys, sessions.targets, strict=True)]


def _refuse_prefix_rows(full: list[list[str]], inputs: list[list[str]], source: str) -> None:
    """Refuse a prefix-augmented file: one where many rows' inputs are another row's whole sequence.

    Two sessions of different users may coincide now and then; augmentation makes it the rule (every row
    but a user's first), so the test is a share, :data:`_AUGMENTED_SHARE`.
    """
    whole = {tuple(seq): row for row, seq in enumerate(full)}
    hits = [
        (row, whole[tuple(seq)]) for row, seq in enumerate(inputs) if len(seq) > 1 and whole.get(tuple(seq), row) != row
    ]
    if inputs and len(hits) > _AUGMENTED_SHARE * len(inputs):
        row, other = hits[0]
        raise CandidateError(
            f"{source}: {len(hits)} of {len(inputs)} rows continue another row (e.g. row {row} continues row "
            f"{other}): prefix-augmented rows of one session would show a row its own target; give a file "
            "with one row per session"
        )


class TransitionCandidates:
    """Transition votes of a file of sessions, and the top candidates they give other sessions."""

    def __init__(self, sessions: SessionSet) -> None:
        self.source, self.sha256 = sessions.source, sessions.sha256
        self.row_of = {sid: row for row, sid in enumerate(sessions.ids.tolist())}
        self.sequences = _full_sequences(sessions)
        _refuse_prefix_rows(self.sequences, [[item_key(i) for i in s] for s in sessions.sequences], self.source)
        self.vocab: dict[str, int] = {}
        for seq in self.sequences:
            for key in seq:
                self.vocab.setdefault(key, len(self.vocab))
        self.keys = list(self.vocab)
        rows, cols, votes = [], [], []
        for seq in self.sequences:
            for a, b, w in self._pairs(seq):
                rows.append(a)
                cols.append(b)
                votes.append(w)
        n = len(self.vocab)
        self.votes = torch.sparse_coo_tensor(
            torch.tensor([rows, cols], dtype=torch.int64).reshape(2, -1),
            torch.tensor(votes, dtype=torch.float64),
            (n, n),
            check_invariants=True,
        ).coalesce()

    def _pairs(self, seq: Sequence[str]) -> list[tuple[int, int, float]]:
        ids = [self.vocab[k] for k in seq]
        return [
            (ids[i], ids[j], 1.0 / (j - i)) for i in range(len(ids)) for j in range(i + 1, min(i + STEPS + 1, len(ids)))
        ]

    def _weights(self, seq: Sequence[str]) -> dict[int, float]:
        """Each known item of a session with its recency weight (summed when an item repeats)."""
        out: dict[int, float] = {}
        for back, key in enumerate(reversed(seq)):
            if key in self.vocab:
                out[self.vocab[key]] = out.get(self.vocab[key], 0.0) + 1.0 / (back + 1)
        return out

    def candidates(self, sessions: SessionSet, k: int) -> list[list[str]]:
        """The ``k`` best candidate keys of every session (fewer when fewer items ever followed its items)."""
        out: list[list[str]] = []
        for scores in self.score_chunks(sessions):
            out += [self._top(row, k) for row in scores]
        return out

    def score_chunks(self, sessions: SessionSet) -> Iterator[torch.Tensor]:
        """Vote scores ``float64 [rows, len(keys)]`` of the sessions, chunk by chunk (own items 0)."""
        same_file = bool(sessions.sha256) and sessions.sha256 == self.sha256
        seqs = [[item_key(i) for i in s] for s in sessions.sequences]
        own = [self.row_of.get(sid) if same_file else None for sid in sessions.ids.tolist()]
        for lo in range(0, len(seqs), _CHUNK):
            yield self._chunk(seqs[lo : lo + _CHUNK], own[lo : lo + _CHUNK])

    def _chunk(self, seqs: list[list[str]], own: list[int | None]) -> torch.Tensor:
        n = len(self.vocab)
        weights = torch.zeros(len(seqs), n, dtype=torch.float64)
        for r, seq in enumerate(seqs):
            for col, w in self._weights(seq).items():
                weights[r, col] = w
        scores = torch.sparse.mm(self.votes.t(), weights.t()).t()  # [rows, n]
        for r, row in enumerate(own):  # leave the row's own session (and so its target) out of its votes
            if row is not None:
                for a, b, v in self._pairs(self.sequences[row]):
                    scores[r, b] -= weights[r, a] * v
        scores = scores.clamp_min(0)
        scores[scores < _NOISE] = 0  # what the leave-one-out subtraction leaves of a vote is rounding
        for r, seq in enumerate(seqs):
            scores[r, [self.vocab[key] for key in seq if key in self.vocab]] = 0
        return scores

    def _top(self, scores: torch.Tensor, k: int) -> list[str]:
        values = scores.numpy()
        order = np.lexsort((np.arange(len(values)), -values))[:k]  # by score, ties by first appearance
        return [self.keys[c] for c in order if values[c] > 0]


def candidate_lines(sessions: SessionSet, catalogue: Catalogue, config: BuildConfig) -> list[list[str]]:
    """The item lines of each session's ``config.num_candidates`` candidates from ``config.candidate_sessions``
    (untitled candidates are left out)."""
    if config.candidate_sessions is None:
        flag = setting_hint("candidate_sessions", "FILE")
        raise CandidateError(
            f"a perspective's template lists {{candidates}}: set {flag} (other sessions, e.g. the training "
            "split, whose transitions propose them)"
        )
    model = TransitionCandidates(read_sessions(config.candidate_sessions, encoding=config.sessions_encoding))
    return [
        item_lines(keys, catalogue, on_missing_title="skip_item", with_ids=config.item_ids)
        for keys in model.candidates(sessions, config.num_candidates)
    ]
