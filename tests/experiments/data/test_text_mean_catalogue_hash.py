"""Text-mean stores record the catalogue hash the builder records (the catalogue's normalised lines), so a
provenance check treats the two kinds of store alike."""

from __future__ import annotations

import pickle

import numpy as np

from llm4sbr_adapter.experiments.data.text_mean_store import build_text_mean_stores
from llm4sbr_adapter.hashing import sha256_file
from llm4sbr_adapter.offline.inputs.catalogue import read_catalogue
from llm4sbr_adapter.store import IntentStore


def test_text_mean_stores_record_the_builders_catalogue_hash(tmp_path):
    for split in ("train", "valid", "test"):
        with open(tmp_path / f"{split}.txt", "wb") as f:
            pickle.dump(([[1, 2], [2]], [2, 1]), f)
    (tmp_path / "items.tsv").write_text("item_id\ttitle\n1\tred  lipstick\n2\tblue mascara\n", encoding="utf-8")
    vectors = np.eye(3, dtype=np.float32)[:, :2]
    paths = build_text_mean_stores(tmp_path, tmp_path / "stores", item_vectors=vectors, encoder_name="e")
    recorded = IntentStore.open(paths["test"]).metadata.catalogue_sha256
    assert recorded == read_catalogue(tmp_path / "items.tsv").sha256
    assert recorded != sha256_file(tmp_path / "items.tsv")  # the file's bytes hash differs (a double space)
