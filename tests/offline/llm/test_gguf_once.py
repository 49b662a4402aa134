"""read_gguf_once: one GGUF metadata parse per file while transformers converts it, originals restored."""

from __future__ import annotations

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
gguf_utils = pytest.importorskip("transformers.modeling_gguf_pytorch_utils")

from llm4sbr_adapter.offline.llm.gguf_once import read_gguf_once  # noqa: E402


@pytest.fixture
def small_gguf(tmp_path):
    path = tmp_path / "small.gguf"
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_array("tokenizer.ggml.tokens", ["a", "b", "c"])
    writer.add_tensor("token_embd.weight", np.arange(6, dtype=np.float32).reshape(3, 2))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_one_reader_per_file_inside_the_block_only(small_gguf, tmp_path):
    other = tmp_path / "other.gguf"
    other.write_bytes(small_gguf.read_bytes())
    original = gguf.GGUFReader
    with read_gguf_once():
        first = gguf.GGUFReader(small_gguf)
        assert gguf.GGUFReader(str(small_gguf)) is first  # str or Path: the same file
        assert gguf.GGUFReader(other) is not first
        assert list(first.fields["tokenizer.ggml.tokens"].data)  # a real reader
    assert gguf.GGUFReader is original
    assert gguf.GGUFReader(small_gguf) is not gguf.GGUFReader(small_gguf)


def test_metadata_parsed_once_and_each_caller_gets_its_own_copy(monkeypatch, small_gguf):
    calls = []

    def fake_load(path, return_tensors=False, model_to_load=None, torch_dtype=None):
        calls.append(return_tensors)
        out = {"config": {"model_type": "qwen2"}, "tokenizer": {"tokens": ["a", "b"]}}
        if return_tensors:
            out["tensors"] = {"w": 1}
        return out

    monkeypatch.setattr(gguf_utils, "load_gguf_checkpoint", fake_load)
    with read_gguf_once():
        tokenizer_view = gguf_utils.load_gguf_checkpoint(small_gguf, return_tensors=False)
        tokenizer_view["config"].pop("model_type")  # a caller editing its dict
        config_view = gguf_utils.load_gguf_checkpoint(str(small_gguf))
        weights = gguf_utils.load_gguf_checkpoint(small_gguf, return_tensors=True, model_to_load=None)
    assert calls == [False, True]  # metadata once, the weights once
    assert config_view["config"] == {"model_type": "qwen2"}
    assert weights["tensors"] == {"w": 1}
    assert gguf_utils.load_gguf_checkpoint is fake_load


def test_originals_are_restored_after_an_error():
    reader, load = gguf.GGUFReader, gguf_utils.load_gguf_checkpoint
    with pytest.raises(RuntimeError, match="boom"), read_gguf_once():
        assert gguf.GGUFReader is not reader
        raise RuntimeError("boom")
    assert gguf.GGUFReader is reader
    assert gguf_utils.load_gguf_checkpoint is load
