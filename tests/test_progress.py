"""progress.py: bars only when asked and on a terminal; the catalogue's bar honours --no-progress."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from llm4sbr_adapter.offline.encode import catalogue_embeddings
from llm4sbr_adapter.progress import bars_enabled, progress_policy


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class RecordingEncoder:
    """Stands in for a TextEncoder: records the show_progress_bar it is given."""

    name, dim = "recording", 3

    def __init__(self) -> None:
        self.bars: list[bool] = []

    def encode(self, texts, batch_size, normalize_embeddings, show_progress_bar):
        self.bars.append(show_progress_bar)
        return np.ones((len(texts), self.dim), np.float32)


@pytest.mark.parametrize("terminal", [True, False])
def test_bars_need_both_the_request_and_a_terminal(monkeypatch, terminal):
    monkeypatch.setattr(sys, "stderr", Terminal() if terminal else io.StringIO())
    assert bars_enabled(True) is terminal
    assert bars_enabled(False) is False
    with progress_policy(False) as show:
        assert show is False and bars_enabled(True) is False  # code deep inside a --no-progress build
    assert bars_enabled(True) is terminal  # restored after the block


def test_catalogue_bar_honours_no_progress_even_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    titles = [f"title {i}" for i in range(700)]  # over ten batches of 64: a bar would be drawn
    enc = RecordingEncoder()
    catalogue_embeddings(enc, list(range(700)), titles, progress=False)
    catalogue_embeddings(enc, list(range(700)), titles, progress=True)
    with progress_policy(False):
        catalogue_embeddings(enc, list(range(700)), titles)
    assert enc.bars == [False, True, False]
