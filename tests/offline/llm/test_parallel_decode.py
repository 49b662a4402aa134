"""Several prompts decoded at once in one context: the answers and the memory each sequence holds must be
those of answering the prompts one at a time. A fake context stands in for llama.cpp: its "model" picks
the next token from the whole token history of the sequence, so a token fed at the wrong position, into
the wrong sequence, or a prefix copied wrongly, changes the answer."""

from __future__ import annotations

import random

import pytest

from llm4sbr_adapter.offline.llm.parallel_decode import ParallelDecoder

END = 0
VOCAB = 40


def next_token(history: list[int]) -> int:
    h = 0
    for t in history:
        h = (h * 1_000_003 + t + 1) % 2_147_483_647
    return h % VOCAB  # END (0) about one time in 40


class FakeContext:
    def __init__(self, n_seq: int, n_batch: int) -> None:
        self.n_seq, self.n_batch = n_seq, n_batch
        self.memory: dict[int, list[int]] = {s: [] for s in range(n_seq)}
        self.calls: list[int] = []  # entries per decode call

    def forget(self, seq: int, start: int = 0) -> None:
        self.memory[seq] = self.memory[seq][:start]

    def copy(self, src: int, dst: int) -> None:
        assert not self.memory[dst], "copying into a sequence that still holds tokens"
        self.memory[dst] = list(self.memory[src])

    def decode(self, tokens, positions, seqs, wanted):
        assert 0 < len(tokens) <= self.n_batch
        self.calls.append(len(tokens))
        out = []
        for token, pos, seq, want in zip(tokens, positions, seqs, wanted, strict=True):
            assert pos == len(self.memory[seq]), "token fed at the wrong position"
            self.memory[seq].append(token)
            if want:
                out.append(next_token(self.memory[seq]))
        return out


def answer(ctx, prompts, max_new, stop_at=None, decoder=None):
    decoder = decoder or ParallelDecoder(ctx)

    def complete(i, out):
        return len(out) >= max_new[i] or (stop_at is not None and stop_at in out)

    return decoder.answer(prompts, lambda t: t == END, complete)


def one_at_a_time(prompts, max_new, stop_at=None):
    answers = []
    for i, prompt in enumerate(prompts):
        history, out = list(prompt), []
        while len(out) < max_new[i]:
            token = next_token(history)
            if token == END:
                break
            out.append(token)
            history.append(token)
            if stop_at is not None and stop_at in out:
                break
        answers.append(out)
    return answers


def rows_with_perspectives(rng: random.Random, n_rows: int) -> list[list[int]]:
    """Each row: an opening shared by all, a listing, then two perspectives' different endings (as
    the builder's prompts in sorted order); every other row extends the previous one's listing."""
    opening = [rng.randrange(1, VOCAB) for _ in range(6)]
    prompts, listing = [], []
    for r in range(n_rows):
        listing = (listing if r % 2 else []) + [rng.randrange(1, VOCAB) for _ in range(rng.randrange(2, 9))]
        for tail in ([7, 8], [9]):
            prompts.append(opening + listing + tail)
    return prompts


def read_one_at_a_time(prompts):
    """Prompt tokens the one-prompt-at-a-time backend reads: what follows the previous prompt's shared prefix."""
    total, previous = 0, []
    for p in prompts:
        shared = 0
        while shared < min(len(p) - 1, len(previous)) and p[shared] == previous[shared]:
            shared += 1
        total, previous = total + len(p) - shared, p
    return total


@pytest.mark.parametrize("n_seq,n_batch", [(1, 512), (2, 512), (3, 7), (4, 5), (8, 64), (8, 3)])
def test_answers_equal_one_at_a_time(n_seq, n_batch):
    rng = random.Random(n_seq * 100 + n_batch)
    prompts = rows_with_perspectives(rng, 9)
    max_new = [rng.randrange(1, 12) for _ in prompts]
    ctx = FakeContext(n_seq, n_batch)
    answers, counts = answer(ctx, prompts, max_new)
    assert answers == one_at_a_time(prompts, max_new)
    # every answer token is fed back except the one that fills max_new
    assert counts.answer == sum(len(a) - (len(a) == m) for a, m in zip(answers, max_new, strict=True))
    assert counts.prompt <= read_one_at_a_time(prompts)  # shared openings are read once
    assert counts.calls == len(ctx.calls)


def test_perspectives_and_prefix_rows_share_what_they_can():
    opening = [5] * 30
    prompts = [opening + [1, 2, 7], opening + [1, 2, 8], opening + [1, 2, 3, 7], opening + [1, 2, 3, 8]]
    ctx = FakeContext(n_seq=4, n_batch=512)
    answers, counts = answer(ctx, prompts, [6] * 4)
    assert answers == one_at_a_time(prompts, [6] * 4)
    assert counts.prompt == 33 + 1 + 2 + 1  # each prompt reads only what no earlier prompt had
    assert counts.copies == 3
    # the second prompt waits one call for the first one's listing, the fourth one for the third one's;
    # a waiting prompt's tokens ride with the answer tokens of the others
    assert ctx.calls[:3] == [33, 1 + 1 + 2, 3 + 1]


def test_a_later_call_starts_from_what_the_sequences_hold():
    opening = [5] * 30
    ctx = FakeContext(n_seq=3, n_batch=512)
    decoder = ParallelDecoder(ctx)
    answer(ctx, [opening + [1, 2], opening + [3]], [6, 6], decoder=decoder)
    later = [opening + [3, 4], opening + [3, 5]]
    answers, counts = answer(ctx, later, [6, 6], decoder=decoder)
    assert answers == one_at_a_time(later, [6, 6])
    assert counts.prompt == 1 + 1 and counts.copies == 1  # each reads its last token; one copy of the listing


def test_prompts_wait_for_a_free_sequence_and_join_running_ones():
    rng = random.Random(3)
    prompts = [[rng.randrange(1, VOCAB) for _ in range(rng.randrange(3, 12))] for _ in range(10)]
    max_new = [rng.randrange(1, 15) for _ in prompts]
    ctx = FakeContext(n_seq=3, n_batch=512)
    answers, counts = answer(ctx, prompts, max_new)
    assert answers == one_at_a_time(prompts, max_new)
    assert counts.calls < sum(len(a) + 1 for a in answers)  # fewer calls than one prompt at a time
    assert max(ctx.calls) > 3  # prompt tokens rode with other sequences' answer tokens


def test_stopped_answers_end_early():
    prompts = [[3, 4, 5], [6, 7], [8]]
    max_new = [30, 30, 30]
    stop_at = 11
    answers, _ = answer(FakeContext(2, 512), prompts, max_new, stop_at)
    assert answers == one_at_a_time(prompts, max_new, stop_at)


def test_an_empty_prompt_is_refused():
    with pytest.raises(ValueError, match="at least one token"):
        answer(FakeContext(2, 8), [[1, 2], []], [3, 3])
