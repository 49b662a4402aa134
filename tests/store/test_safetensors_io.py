"""The one safetensors writer: through the library, atomically, for numpy arrays and torch tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open

from llm4sbr_adapter import pretrained, safetensors_io, store
from llm4sbr_adapter.offline import encode
from llm4sbr_adapter.safetensors_io import save_safetensors


def test_numpy_and_torch_round_trip_with_metadata(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2], "b": np.array([1, -1], np.int64)}
    save_safetensors(tmp_path / "n.safetensors", arrays, {"k": "v"})  # a strided view is made contiguous
    with safe_open(str(tmp_path / "n.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"k": "v"}
        assert np.array_equal(f.get_tensor("a"), arrays["a"]) and np.array_equal(f.get_tensor("b"), arrays["b"])
    weights = {"w": torch.randn(4, 3, requires_grad=True).t(), "bias": torch.zeros(3, dtype=torch.float16)}
    save_safetensors(tmp_path / "t.safetensors", weights)
    with safe_open(str(tmp_path / "t.safetensors"), framework="pt") as f:
        assert torch.equal(f.get_tensor("w"), weights["w"].detach()) and f.get_tensor("bias").dtype == torch.float16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.safetensors", "t.safetensors"]  # no temp file left


def test_refuses_mixed_tensors_and_non_string_metadata_and_leaves_the_old_file(tmp_path):
    target = tmp_path / "x.safetensors"
    save_safetensors(target, {"a": np.zeros(2, np.float32)})
    before = target.read_bytes()
    with pytest.raises(TypeError, match="all numpy arrays or all torch tensors"):
        save_safetensors(target, {"a": np.zeros(2, np.float32), "b": torch.zeros(2)})
    with pytest.raises(ValueError, match="strings to strings"):
        save_safetensors(target, {"a": np.ones(2, np.float32)}, {"n": 3})
    assert target.read_bytes() == before


def test_stores_pretrained_weights_and_catalogue_cache_all_write_through_it():
    # stores, weights, cache
    assert store.container.save_safetensors is pretrained.save_safetensors is encode.save_safetensors
    assert store.container.save_safetensors is safetensors_io.save_safetensors
