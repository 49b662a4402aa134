"""Greedy decoding of several prompts at once, in one model context with one sequence per prompt.

One answer token at a time is a matrix-vector product per layer: the weights are read from memory for
one token, so a CPU decodes far below the rate at which it reads a prompt (many tokens per pass over
the weights). :class:`ParallelDecoder` keeps up to ``n_seq`` prompts in flight in one context, each in
a sequence of its own, and puts every live sequence's next token into one decode call, so one pass over
the weights serves them all. A waiting prompt starts as soon as a sequence is free, and its prompt
tokens ride in the same decode call as the other sequences' answer tokens.

Shared openings are read once, as the one-prompt-at-a-time backend reads them once from the previous
prompt's key/value cache: a starting prompt takes a copy of the sequence (live or finished) whose
evaluated tokens share the longest prefix with it, drops the rest, and reads only what follows. The
answer loop asks prompts in sorted order, so a row's perspectives (the same listing, another closing
sentence) and a user's prefix rows (each listing extends the previous one) follow one another; a
prompt that would share more with a prompt starting in the same call than with anything already
evaluated waits one call for it.

The scheduling is independent of llama.cpp: it drives any :class:`SequenceContext`, which the tests
replace by a small deterministic fake.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .prefix_groups import shared_prefix_length

__all__ = ["DecodeCounts", "ParallelDecoder", "SequenceContext"]


class SequenceContext(Protocol):
    """Key/value memory of ``n_seq`` sequences (ids ``0 .. n_seq - 1``) in one model context."""

    n_seq: int
    n_batch: int  # most tokens one :meth:`decode` call takes

    def forget(self, seq: int, start: int = 0) -> None:
        """Drop what sequence ``seq`` holds at positions ``start`` and later."""

    def copy(self, src: int, dst: int) -> None:
        """Make the empty sequence ``dst`` hold what ``src`` holds now."""

    def decode(self, tokens: list[int], positions: list[int], seqs: list[int], wanted: list[bool]) -> list[int]:
        """Evaluate the tokens (each at its position in its sequence); return the greedy next token after
        each entry whose ``wanted`` flag is set, in entry order."""


@dataclass
class DecodeCounts:
    """Tokens evaluated: prompt tokens read (shared openings once) and answer tokens fed back."""

    prompt: int = 0
    answer: int = 0
    calls: int = 0
    copies: int = 0

    def add(self, other: DecodeCounts) -> None:
        self.prompt, self.answer = self.prompt + other.prompt, self.answer + other.answer
        self.calls, self.copies = self.calls + other.calls, self.copies + other.copies


@dataclass(eq=False)  # compared and hashed by identity
class _Slot:
    """One sequence: the tokens it holds evaluated, and the prompt it answers (``request`` -1: none)."""

    seq: int
    held: list[int] = field(default_factory=list)
    request: int = -1
    pending: list[int] = field(default_factory=list)  # tokens still to evaluate
    out: list[int] = field(default_factory=list)


@dataclass
class _Call:
    """One :meth:`ParallelDecoder.answer` call's prompts and limits."""

    prompts: Sequence[Sequence[int]]
    is_end: Callable[[int], bool]
    complete: Callable[[int, list[int]], bool]
    outputs: list[list[int]]
    counts: DecodeCounts = field(default_factory=DecodeCounts)


class ParallelDecoder:
    """Answers prompts greedily in the sequences of ``ctx``; what the sequences hold is kept between
    calls, so the next call's prompts can start from it."""

    def __init__(self, ctx: SequenceContext) -> None:
        self.ctx = ctx
        self.slots = [_Slot(seq) for seq in range(ctx.n_seq)]

    def answer(
        self,
        prompts: Sequence[Sequence[int]],
        is_end: Callable[[int], bool],
        complete: Callable[[int, list[int]], bool],
    ) -> tuple[list[list[int]], DecodeCounts]:
        """Greedy answers to ``prompts`` (token lists) and the tokens evaluated.

        Args:
            prompts: prompt token lists, best in an order that puts shared openings side by side.
            is_end: whether a token ends an answer (it is not part of it).
            complete: ``complete(i, answer_so_far)`` is true once prompt ``i``'s answer needs no more
                tokens (its length limit, a stop string); called after each token added.
        """
        if any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        call = _Call(prompts, is_end, complete, [[] for _ in prompts])
        waiting = deque(range(len(prompts)))
        while waiting or any(s.request >= 0 for s in self.slots):
            self._start_waiting(waiting, call)
            self._step(call)
        return call.outputs, call.counts

    def _start_waiting(self, waiting: deque[int], call: _Call) -> None:
        """Start waiting prompts in free slots, in order, until one would share more with a prompt still
        being read (started in this step or earlier) than with what the sequences hold now."""
        while waiting and any(s.request < 0 for s in self.slots):
            ids = call.prompts[waiting[0]]
            cap = len(ids) - 1  # every prompt evaluates its last token itself: its logits start the answer
            source = max(self.slots, key=lambda s: shared_prefix_length(s.held, ids))
            reuse = min(shared_prefix_length(source.held, ids), cap)
            reading = [s.held + s.pending for s in self.slots if s.request >= 0 and not s.out]
            if any(min(shared_prefix_length(future, ids), cap) > reuse for future in reading):
                return
            self._fill(self._free_slot(source, ids), source, reuse, waiting.popleft(), call)

    def _free_slot(self, source: _Slot, ids: Sequence[int]) -> _Slot:
        """The source itself when it is free (nothing to copy), else the free slot whose content shares
        least with ``ids`` (the prompts are sorted, so the next ones are least likely to need it)."""
        if source.request < 0:
            return source
        return min((s for s in self.slots if s.request < 0), key=lambda s: shared_prefix_length(s.held, ids))

    def _fill(self, slot: _Slot, source: _Slot, reuse: int, request: int, call: _Call) -> None:
        """Make ``slot`` hold the first ``reuse`` tokens of ``source`` and answer prompt ``request``."""
        if slot is not source:
            self.ctx.forget(slot.seq)
            slot.held = []
            if reuse:
                self.ctx.copy(source.seq, slot.seq)
                slot.held = list(source.held)
                call.counts.copies += 1
        if len(slot.held) > reuse:
            self.ctx.forget(slot.seq, reuse)
            del slot.held[reuse:]
        slot.request, slot.out, slot.pending = request, [], list(call.prompts[request][reuse:])

    def _step(self, call: _Call) -> None:
        """One decode call: every answering slot's fed-back token, then prompt tokens up to ``n_batch``."""
        busy = [s for s in self.slots if s.request >= 0]
        entries: list[tuple[_Slot, int]] = []  # (slot, tokens of it taken)
        room = self.ctx.n_batch
        for slot in [s for s in busy if s.out] + [s for s in busy if not s.out]:
            take = min(len(slot.pending), room)
            if take:
                entries.append((slot, take))
                room -= take
        tokens: list[int] = []
        positions: list[int] = []
        seqs: list[int] = []
        wanted: list[bool] = []
        for slot, take in entries:
            tokens += slot.pending[:take]
            positions += range(len(slot.held), len(slot.held) + take)
            seqs += [slot.seq] * take
            wanted += [False] * (take - 1) + [take == len(slot.pending)]
            if slot.out:
                call.counts.answer += take
            else:
                call.counts.prompt += take
        got = iter(self.ctx.decode(tokens, positions, seqs, wanted))
        call.counts.calls += 1
        for slot, take in entries:
            slot.held += slot.pending[:take]
            slot.pending = slot.pending[take:]
            if not slot.pending:
                self._advance(slot, next(got), call)

    def _advance(self, slot: _Slot, token: int, call: _Call) -> None:
        """Take the greedy ``token`` for ``slot``'s prompt; free the slot when the answer is complete."""
        i = slot.request
        done = call.is_end(token)
        if not done:
            slot.out.append(token)
            done = call.complete(i, slot.out)
        if not done:
            slot.pending = [token]
            return
        call.outputs[i] = slot.out
        slot.request, slot.pending, slot.out = -1, [], []
