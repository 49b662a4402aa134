"""shuffle_store moves every per-session entry of a store together, and keeps ids and provenance."""

from __future__ import annotations

import numpy as np
import pytest

from llm4sbr_adapter.experiments.data.shuffle_store import ShuffleStoreConfig, main, shuffle_store
from llm4sbr_adapter.store import IntentStore, StoreMetadata, write_store


def test_rows_move_together_and_ids_stay(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    meta = StoreMetadata(perspectives=["long"], text_dim=3, top_f=1, sessions_source="v.txt", sessions_sha256="abc")
    src = write_store(
        tmp_path / "s.safetensors",
        [10, 11, 12, 13],
        {"long": vectors},
        meta,
        top_items={"long": np.array([[0], [1], [2], [0]])},
        top_weights={"long": np.ones((4, 1), np.float32)},
        item_ids=[7, 8, 9],
        answers={"long": ["a", "b", "c", "d"]},
    )
    out = shuffle_store(ShuffleStoreConfig(str(src), str(tmp_path / "x.safetensors"), seed=3))
    perm = np.random.default_rng(3).permutation(4)
    store = IntentStore.open(out, sessions_sha256="abc")
    assert store.session_ids.tolist() == [10, 11, 12, 13]
    np.testing.assert_array_equal(store.vectors("long"), vectors[perm])
    assert [store.explain(sid)["long"]["answer"] for sid in [10, 11, 12, 13]] == [["a", "b", "c", "d"][i] for i in perm]
    assert [store.explain(sid)["long"]["top_items"][0] for sid in [10, 11, 12, 13]] == [[7, 8, 9, 7][i] for i in perm]
    assert store.metadata.extra["shuffle_seed"] == 3 and not np.array_equal(perm, np.arange(4))


def test_the_input_is_never_the_output(tmp_path, capsys):
    with pytest.raises(ValueError, match="must differ"):
        ShuffleStoreConfig(str(tmp_path / "s.safetensors"), str(tmp_path / "./s.safetensors"))
    assert main(["--store", str(tmp_path / "s.safetensors"), "--out", str(tmp_path / "s.safetensors")]) == 1
    assert capsys.readouterr().err.strip() == "error: --out must differ from --store (the input would be replaced)"
