"""The one SR-GNN pickle reader, shared by the builder's session reader and the experiment harness."""

from __future__ import annotations

import pickle

import pytest

from llm4sbr_adapter import srgnn_pickle
from llm4sbr_adapter.experiments.data import splits
from llm4sbr_adapter.experiments.data.splits import SplitFormatError, load_split
from llm4sbr_adapter.offline.inputs import sessions
from llm4sbr_adapter.offline.inputs.sessions import InputFormatError, read_sessions
from llm4sbr_adapter.srgnn_pickle import read_srgnn_pickle


def dump(path, obj):
    path.write_bytes(pickle.dumps(obj))
    return path


def test_both_readers_go_through_the_one_reader_and_agree(tmp_path, monkeypatch):
    path = dump(tmp_path / "train.txt", ([[1, 2, 3], [4], [5, 6]], [7, 8, 9]))
    calls = []

    def spy(p, error):
        calls.append(error)
        return srgnn_pickle.read_srgnn_pickle(p, error)

    monkeypatch.setattr(sessions, "read_srgnn_pickle", spy)
    monkeypatch.setattr(splits, "read_srgnn_pickle", spy)
    built, split = read_sessions(path), load_split(path)
    assert calls == [InputFormatError, SplitFormatError]
    assert built.sequences == [split.sequence(r) for r in range(len(split))]
    assert built.targets == split.targets.tolist() and built.sha256 == split.sha256


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"a": 1}, r"expected a pickled tuple \(sequences, targets\).*got dict"),
        (([1, 2], [3, 4]), r"expected a pickled tuple"),  # rows are not lists
        (([[1], [2]], [3]), r"2 sequences but 1 targets"),
    ],
)
def test_each_reader_raises_its_own_error_with_the_same_message(tmp_path, obj, message):
    path = dump(tmp_path / "bad.pkl", obj)
    with pytest.raises(InputFormatError, match=rf"bad.pkl: {message}"):
        read_sessions(path)
    with pytest.raises(SplitFormatError, match=rf"bad.pkl: {message}"):
        load_split(path)


def test_unreadable_pickle_and_a_split_without_targets(tmp_path):
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"\x80\x04 not really")
    with pytest.raises(ValueError, match=r"broken.pkl: not a readable pickle"):
        read_srgnn_pickle(broken, ValueError)
    no_targets = dump(tmp_path / "sessions.pkl", ([[1, 2], [3]], None))
    assert read_sessions(no_targets).targets is None  # the builder needs no targets
    with pytest.raises(SplitFormatError, match=r"sessions.pkl: the pickle holds no targets"):
        load_split(no_targets)
