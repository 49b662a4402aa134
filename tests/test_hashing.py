"""The one file-hash helper: streamed, and the one every file identity in the package uses."""

from __future__ import annotations

import hashlib

import pytest

from llm4sbr_adapter import hashing, store
from llm4sbr_adapter.experiments.evaluation.bootstrap import test_set_key as set_key  # not collected as a test
from llm4sbr_adapter.offline import model_hash


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_sha256_file_streams_in_blocks(tmp_path, chunk):
    data = bytes(range(256)) * 41  # 10496 bytes: many blocks at the small chunk sizes
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    assert hashing.sha256_file(f, chunk=chunk) == hashlib.sha256(data).hexdigest()


def test_sha256_file_of_an_empty_file_and_a_bad_chunk(tmp_path):
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert hashing.sha256_file(f) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(ValueError, match="chunk"):
        hashing.sha256_file(f, chunk=0)


def test_every_caller_uses_the_one_helper(tmp_path):
    assert store.sha256_file is hashing.sha256_file  # the documented llm4sbr_adapter.store name
    assert model_hash.sha256_file is hashing.sha256_file
    (tmp_path / "test.txt").write_bytes(b"rows")
    assert set_key(str(tmp_path)) == hashing.sha256_file(tmp_path / "test.txt")


def test_copy_and_sha256_joins_files_and_hashes_what_it_wrote(tmp_path):
    import io

    parts = [tmp_path / f"part{i}" for i in range(3)]
    for i, p in enumerate(parts):
        p.write_bytes(bytes([i]) * (1000 + i))
    out = io.BytesIO()
    digest, size = hashing.copy_and_sha256(parts, out, chunk=64)
    joined = b"".join(p.read_bytes() for p in parts)
    assert out.getvalue() == joined and size == len(joined) == 3003
    assert digest == hashlib.sha256(joined).hexdigest()
