"""The intent store (llm4sbr_adapter/store/): round trips, lookup, validation, damage, merging."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import llm4sbr_adapter
from llm4sbr_adapter.store import (
    IntentStore,
    StoreError,
    StoreMetadata,
    StoreMismatchError,
    merge_stores,
    sha256_file,
    write_store,
)
from llm4sbr_adapter.store.digest import array_digests

D = 16
PERSPECTIVES = ["long", "short"]


def _meta(**kw) -> StoreMetadata:
    base = dict(
        perspectives=list(PERSPECTIVES),
        text_dim=D,
        text_encoder="enc",
        llm="llm",
        top_f=3,
        catalogue_sha256="c" * 64,
        sessions_source="train.txt",
        sessions_sha256="s" * 64,
    )
    base.update(kw)
    return StoreMetadata(**base)


def _intents(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {p: rng.normal(size=(n, D)).astype(np.float32) for p in PERSPECTIVES}


def _explanations(n: int, num_items: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed + 100)
    top = {p: rng.integers(0, num_items, size=(n, 3)).astype(np.int64) for p in PERSPECTIVES}
    top["long"][0, 2] = -1
    weights = {p: rng.dirichlet(np.ones(3), size=n).astype(np.float32) for p in PERSPECTIVES}
    answers = {p: [f"{p} answer {i} ✓" for i in range(n)] for p in PERSPECTIVES}
    raw = {p: [f"Answer: {p} answer {i} ✓\nmore" for i in range(n)] for p in PERSPECTIVES}
    return top, weights, answers, raw


def _write_int_store(path: Path, ids=None, seed: int = 0, **kw) -> tuple[Path, np.ndarray, dict]:
    ids = np.arange(100, 140, dtype=np.int64) if ids is None else np.asarray(ids)
    intents = _intents(len(ids), seed)
    meta_kw = kw.pop("meta", {})
    write_store(path, ids, intents, _meta(**meta_kw), **kw)
    return path, ids, intents


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("mmap", [True, False])
def test_round_trip_int_ids(tmp_path, mmap):
    path, ids, intents = _write_int_store(tmp_path / "s.safetensors")
    store = IntentStore.open(path, mmap=mmap)
    assert len(store) == 40 and store.num_sessions == 40
    assert store.perspectives == PERSPECTIVES and store.text_dim == D
    np.testing.assert_array_equal(store.session_ids, ids)
    assert store.session_ids.dtype == np.int64
    for p in PERSPECTIVES:
        np.testing.assert_array_equal(np.asarray(store.vectors(p)), intents[p])
    out = store.lookup(ids)
    for p in PERSPECTIVES:
        assert out[p].dtype == torch.float32 and out[p].shape == (40, D)
        np.testing.assert_array_equal(out[p].numpy(), intents[p])
    meta = store.metadata
    assert meta.num_sessions == 40 and meta.id_kind == "int" and meta.dtype == "float32"
    assert meta.text_encoder == "enc" and meta.sessions_source == "train.txt" and meta.created_at
    assert meta.format == "llm4sbr-intent-store" and meta.format_version == 1
    assert 105 in store and 99 not in store


def test_round_trip_str_ids(tmp_path):
    ids = [f"sess-{i}" for i in range(30)] + ["ünïcode-✓", ""]
    intents = {p: np.random.default_rng(1).normal(size=(32, D)).astype(np.float32) for p in PERSPECTIVES}
    write_store(tmp_path / "s.safetensors", ids, intents, _meta())
    store = IntentStore.open(tmp_path / "s.safetensors")
    assert store.metadata.id_kind == "str"
    assert store.session_ids.tolist() == ids
    query = ["ünïcode-✓", "sess-3", ""]
    out = store.lookup(query)
    rows = [ids.index(q) for q in query]
    np.testing.assert_array_equal(out["long"].numpy(), intents["long"][rows])
    with pytest.raises(TypeError, match="string session ids"):
        store.lookup([1, 2])


def test_int_store_rejects_string_queries(tmp_path):
    path, _, _ = _write_int_store(tmp_path / "s.safetensors")
    with pytest.raises(TypeError, match="integer session ids"):
        IntentStore.open(path).lookup(["100"])


def test_float16_store(tmp_path):
    path, ids, intents = _write_int_store(tmp_path / "s.safetensors", dtype="float16")
    store = IntentStore.open(path)
    assert store.metadata.dtype == "float16"
    out = store.lookup(ids[:5])
    assert out["long"].dtype == torch.float16
    np.testing.assert_array_equal(out["long"].numpy(), intents["long"][:5].astype(np.float16))
    out32 = store.lookup(ids[:5], dtype=torch.float32)
    assert out32["short"].dtype == torch.float32
    np.testing.assert_allclose(out32["short"].numpy(), intents["short"][:5], atol=2e-3, rtol=1e-3)
    with pytest.raises(StoreError, match="dtype must be one of"):
        write_store(tmp_path / "x.safetensors", ids, intents, _meta(), dtype="bfloat16")


def test_mmap_reads_through_memmap_and_matches_in_memory(tmp_path):
    path, ids, _ = _write_int_store(
        tmp_path / "s.safetensors",
        **dict(zip(("top_items", "top_weights", "answers", "raw_answers"), _explanations(40), strict=True)),
        item_ids=np.arange(50) + 1000,
    )
    mapped = IntentStore.open(path, mmap=True)
    loaded = IntentStore.open(path, mmap=False)
    for p in PERSPECTIVES:
        assert isinstance(mapped.vectors(p), np.memmap)
        assert mapped.vectors(p).flags.aligned, "intent matrix must be an aligned view"
        assert not isinstance(loaded.vectors(p), np.memmap)
    query = np.array([139, 100, 120, 100, 107])
    a, b = mapped.lookup(query), loaded.lookup(query)
    for p in PERSPECTIVES:
        torch.testing.assert_close(a[p], b[p], rtol=0, atol=0)
    assert mapped.explain(100) == loaded.explain(100)


def test_tensors_are_aligned_to_their_item_size(tmp_path):
    """String columns (uint8, any length) must not push float/int tensors off alignment."""
    top, weights, answers, raw = _explanations(7)
    answers["long"][3] = "odd"  # byte counts that are not multiples of 4 or 8
    write_store(
        tmp_path / "s.safetensors",
        [f"id{i}" for i in range(7)],
        _intents(7),
        _meta(),
        dtype="float16",
        top_items=top,
        top_weights=weights,
        item_ids=[f"item{i}" for i in range(50)],
        answers=answers,
        raw_answers=raw,
    )
    raw_bytes = (tmp_path / "s.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw_bytes[:8])
    assert header_len % 8 == 0
    header = json.loads(raw_bytes[8 : 8 + header_len])
    sizes = {"F32": 4, "F16": 2, "I64": 8, "U8": 1}
    for name, info in header.items():
        if name != "__metadata__":
            assert info["data_offsets"][0] % sizes[info["dtype"]] == 0, f"{name} at {info['data_offsets']}"


def _string_column(tensors: dict, base: str, strings) -> None:
    """The two tensors of a string column, computed here independently of store.encode_strings."""
    encoded = [s.encode("utf-8") for s in strings]
    tensors[base + ".utf8"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    tensors[base + ".offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in encoded])]).astype(np.int64)


@pytest.mark.parametrize("kind", ["int", "str"])
def test_safetensors_library_reads_every_tensor_as_written(tmp_path, kind):
    """safetensors' own reader sees every tensor of a store with the name, dtype, shape and values written,
    the same values IntentStore reads, and the metadata as one string."""
    from safetensors import safe_open

    n = 9
    top, weights, answers, raw = _explanations(n)
    answers["long"][4] = ""  # an empty string inside a column
    if kind == "int":
        ids, items, dtype = np.arange(n, dtype=np.int64) * 3 + 500, np.arange(50, dtype=np.int64) + 1000, "float32"
    else:
        ids, items, dtype = [f"s-{i}-ü" for i in range(n)], [f"item-{j}-✓" for j in range(50)], "float16"
    intents = _intents(n)
    path = write_store(
        tmp_path / "s.safetensors",
        ids,
        intents,
        _meta(prompts={"long": "Was will er? ✓"}),
        dtype=dtype,
        top_items=top,
        top_weights=weights,
        item_ids=items,
        answers=answers,
        raw_answers=raw,
    )

    expected: dict[str, np.ndarray] = {}
    if kind == "int":
        expected["session_ids"], expected["item_ids"] = ids, items
    else:
        _string_column(expected, "session_ids", ids)
        _string_column(expected, "item_ids", items)
    for p in PERSPECTIVES:
        expected[f"intent.{p}"] = intents[p].astype(dtype)
        expected[f"top_items.{p}"], expected[f"top_weights.{p}"] = top[p], weights[p]
        _string_column(expected, f"answer.{p}", answers[p])
        _string_column(expected, f"raw_answer.{p}", raw[p])

    store = IntentStore.open(path, mmap=False)
    with safe_open(str(path), framework="numpy") as handle:
        assert sorted(handle.keys()) == sorted(expected)
        for name, want in expected.items():
            got = handle.get_tensor(name)
            assert (got.dtype, got.shape) == (want.dtype, want.shape), name
            np.testing.assert_array_equal(got, want, err_msg=name)
        for p in PERSPECTIVES:
            np.testing.assert_array_equal(np.asarray(store.vectors(p)), handle.get_tensor(f"intent.{p}"))
        meta = handle.metadata()
    assert list(meta) == ["llm4sbr"] and isinstance(meta["llm4sbr"], str)
    assert StoreMetadata.from_json(meta["llm4sbr"]) == store.metadata
    assert store.metadata.prompts == {"long": "Was will er? ✓"}


def test_store_file_is_the_safetensors_librarys_own_serialisation(tmp_path):
    """No hand-made header: the file is byte for byte what safetensors.numpy.save makes of its tensors and
    metadata, for every header padding (0..7 spaces) the library adds, and the reader opens each one."""
    from safetensors import safe_open
    from safetensors.numpy import save

    top, weights, answers, raw = _explanations(7)
    answers["long"][3] = "odd"  # byte counts that are not multiples of 4 or 8
    paddings = set()
    for extra in range(8):  # one more metadata byte each time: every padding length once
        path = tmp_path / f"s{extra}.safetensors"
        meta = _meta(sessions_source="x" * extra + "-✓.txt", created_at="2024-01-01T00:00:00+00:00")
        write_store(
            path,
            [f"id{i}" for i in range(7)],
            _intents(7),
            meta,
            dtype="float16",
            top_items=top,
            top_weights=weights,
            item_ids=[f"item{i}" for i in range(50)],
            answers=answers,
            raw_answers=raw,
        )
        data = path.read_bytes()
        with safe_open(str(path), framework="numpy") as handle:
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (a safe_open handle is not iterable)
            library = save(tensors, metadata=handle.metadata())
        assert data == library, f"{path.name} differs from safetensors' own serialisation"
        (header_len,) = struct.unpack("<Q", data[:8])
        assert header_len % 8 == 0
        paddings.add(header_len - len(data[8 : 8 + header_len].rstrip(b" ")))
        store = IntentStore.open(path)
        assert store.metadata.sessions_source == "x" * extra + "-✓.txt" and store.vectors("long").flags.aligned
    assert paddings == set(range(8))


def test_file_permissions_follow_umask(tmp_path):
    """The temporary file of the atomic write is created 0600; the final store must not stay private."""
    old = os.umask(0o022)
    try:
        path, _, _ = _write_int_store(tmp_path / "s.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# --------------------------------------------------------------------------- lookup
def test_rows_follow_query_order_with_duplicates(tmp_path):
    ids = np.random.default_rng(3).permutation(np.arange(1000, 1200))  # stored unsorted
    path, _, intents = _write_int_store(tmp_path / "s.safetensors", ids=ids)
    store = IntentStore.open(path)
    query = np.array([ids[5], ids[150], ids[5], ids[0], ids[199]])
    rows, found = store.rows(query)
    assert found.all() and rows.tolist() == [5, 150, 5, 0, 199]
    for q in (query, query.tolist(), torch.from_numpy(query)):
        out = store.lookup(q)
        np.testing.assert_array_equal(out["short"].numpy(), intents["short"][[5, 150, 5, 0, 199]])
    assert store.lookup(np.zeros(0, np.int64))["long"].shape == (0, D)


def test_lookup_subset_device_dtype(tmp_path):
    path, ids, intents = _write_int_store(tmp_path / "s.safetensors")
    store = IntentStore.open(path, perspectives=["short"])
    out = store.lookup(ids[:3], perspectives=["short"], device="cpu", dtype=torch.float64)
    assert list(out) == ["short"] and out["short"].dtype == torch.float64 and out["short"].device.type == "cpu"
    np.testing.assert_allclose(out["short"].numpy(), intents["short"][:3].astype(np.float64))
    with pytest.raises(KeyError, match="perspective 'medium' is not in store"):
        store.lookup(ids[:3], perspectives=["medium"])
    if torch.cuda.is_available():
        gpu, found = store.lookup(ids[:3], device="cuda", return_found=True)
        assert gpu["long"].is_cuda and found.is_cuda


def test_missing_ids_raise_with_first_ids(tmp_path):
    path, ids, _ = _write_int_store(tmp_path / "s.safetensors")
    store = IntentStore.open(path)
    query = [100, 7, 101, 8, 9, 10, 11, 12, 13]
    with pytest.raises(KeyError) as info:
        store.lookup(query)
    text = str(info.value)
    assert "7 of 9 session ids are not in intent store" in text
    assert "[7, 8, 9, 10, 11] ..." in text and str(path) in text


def test_missing_zeros_and_found_mask(tmp_path):
    path, ids, intents = _write_int_store(tmp_path / "s.safetensors")
    store = IntentStore.open(path)
    out, found = store.lookup([101, 5, 139], missing="zeros", return_found=True)
    assert found.dtype == torch.bool and found.tolist() == [True, False, True]
    assert torch.count_nonzero(out["long"][1]) == 0
    np.testing.assert_array_equal(out["long"][[0, 2]].numpy(), intents["long"][[1, 39]])
    with pytest.raises(ValueError, match="missing must be"):
        store.lookup([101], missing="learned")


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "field,value",
    [
        ("text_dim", 384),
        ("perspectives", ["long", "medium"]),
        ("num_sessions", 41),
        ("catalogue_sha256", "d" * 64),
        ("sessions_sha256", "t" * 64),
        ("text_encoder", "other-encoder"),
    ],
)
def test_mismatch_names_field(tmp_path, field, value):
    path, _, _ = _write_int_store(tmp_path / "s.safetensors")
    with pytest.raises(StoreMismatchError, match=rf"{field}: expected"):
        IntentStore.open(path, **{field: value})


def test_matching_expectations_pass(tmp_path):
    path, _, _ = _write_int_store(tmp_path / "s.safetensors")
    store = IntentStore.open(
        path,
        text_dim=D,
        perspectives=["long"],
        num_sessions=40,
        catalogue_sha256="c" * 64,
        sessions_sha256="s" * 64,
        text_encoder="enc",
    )
    assert store.text_dim == D


def test_sha256_file(tmp_path):
    import hashlib

    f = tmp_path / "train.txt"
    f.write_bytes(b"1,2,3\n4,5\n")
    assert sha256_file(f) == hashlib.sha256(b"1,2,3\n4,5\n").hexdigest()


def test_truncated_tail(tmp_path):
    path, _, _ = _write_int_store(tmp_path / "s.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    with pytest.raises(StoreError, match="truncated"):
        IntentStore.open(path)


def test_truncated_inside_header(tmp_path):
    path, _, _ = _write_int_store(tmp_path / "s.safetensors")
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    path.write_bytes(data[: 8 + header_len // 2])
    with pytest.raises(StoreError, match="truncated"):
        IntentStore.open(path)
    path.write_bytes(data[:5])
    with pytest.raises(StoreError, match="truncated"):
        IntentStore.open(path)


def test_plain_safetensors_is_not_a_store(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(plain))
    with pytest.raises(StoreError, match="not an intent store"):
        IntentStore.open(plain)
    other = tmp_path / "other.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(other), metadata={"llm4sbr": json.dumps({"format": "x"})})
    with pytest.raises(StoreError, match="not an intent store"):
        IntentStore.open(other)
    text = tmp_path / "notes.txt"
    text.write_text("session,intent\n1,[0.1, 0.2]\n")
    with pytest.raises(StoreError):
        IntentStore.open(text)
    with pytest.raises(FileNotFoundError, match="intent store not found"):
        IntentStore.open(tmp_path / "absent.safetensors")


def test_newer_format_version_refused(tmp_path):
    meta = _meta()
    raw = json.loads(meta.to_json())
    raw.update(format_version=2, num_sessions=1, id_kind="int")
    save_file(
        {
            "intent.long": np.zeros((1, D), np.float32),
            "intent.short": np.zeros((1, D), np.float32),
            "session_ids": np.array([1], np.int64),
        },
        str(tmp_path / "v2.safetensors"),
        metadata={"llm4sbr": json.dumps(raw)},
    )
    with pytest.raises(StoreError, match="format_version 2 is newer"):
        IntentStore.open(tmp_path / "v2.safetensors")


def test_intent_shape_must_match_metadata(tmp_path):
    """A store written by another tool with a wrong intent shape is refused on open, not at lookup."""
    raw = json.loads(_meta(perspectives=["long"]).to_json())
    raw.update(num_sessions=3, id_kind="int")
    save_file(
        {"intent.long": np.zeros((3, D + 1), np.float32), "session_ids": np.array([1, 2, 3], np.int64)},
        str(tmp_path / "bad.safetensors"),
        metadata={"llm4sbr": json.dumps(raw)},
    )
    with pytest.raises(StoreError, match=r"'intent.long' is F32 \[3, 17\], expected F32 or F16 \[3, 16\]"):
        IntentStore.open(tmp_path / "bad.safetensors")


def test_write_validation_errors(tmp_path):
    intents = _intents(3)
    with pytest.raises(StoreError, match=r"duplicate session ids: \[2\]"):
        write_store(tmp_path / "a.safetensors", [1, 2, 2], intents, _meta())
    with pytest.raises(StoreError, match="intents have perspectives"):
        write_store(tmp_path / "a.safetensors", [1, 2, 3], {"long": intents["long"]}, _meta())
    with pytest.raises(StoreError, match=r"intent 'long' has shape \(3, 16\), expected \(3, 8\)"):
        write_store(tmp_path / "a.safetensors", [1, 2, 3], intents, _meta(text_dim=8))
    with pytest.raises(StoreError, match="all integers or all strings"):
        write_store(tmp_path / "a.safetensors", [1, "2", 3], intents, _meta())
    with pytest.raises(StoreError, match="top_items needs item_ids"):
        write_store(tmp_path / "a.safetensors", [1, 2, 3], intents, _meta(), top_items={"long": np.zeros((3, 2))})
    with pytest.raises(StoreError, match="indexes outside item_ids"):
        write_store(
            tmp_path / "a.safetensors",
            [1, 2, 3],
            intents,
            _meta(),
            top_items={"long": np.full((3, 2), 5)},
            item_ids=[1, 2],
        )
    assert not list(tmp_path.iterdir())


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path, ids, intents = _write_int_store(tmp_path / "s.safetensors")
    before = path.read_bytes()

    def failing_fsync(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        _write_int_store(path, ids=np.arange(5), seed=9)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.safetensors"], "temporary file left behind"
    monkeypatch.undo()
    np.testing.assert_array_equal(IntentStore.open(path).lookup([100])["long"].numpy(), intents["long"][:1])
    # and a failure on a fresh path leaves nothing at all
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        _write_int_store(tmp_path / "new.safetensors")
    assert not (tmp_path / "new.safetensors").exists()


# --------------------------------------------------------------------------- explanations
def test_explain_returns_answers_and_top_items(tmp_path):
    top, weights, answers, raw = _explanations(40)
    item_ids = [f"B00{i:03d}" for i in range(50)]
    path, ids, _ = _write_int_store(
        tmp_path / "s.safetensors",
        top_items=top,
        top_weights=weights,
        item_ids=item_ids,
        answers=answers,
        raw_answers=raw,
    )
    store = IntentStore.open(path)
    assert store.item_ids.tolist() == item_ids
    info = store.explain(100)
    assert set(info) == set(PERSPECTIVES)
    assert info["long"]["answer"] == "long answer 0 ✓"
    assert info["long"]["raw_answer"] == "Answer: long answer 0 ✓\nmore"
    assert info["long"]["top_items"] == [item_ids[j] for j in top["long"][0, :2]]  # the -1 slot is dropped
    np.testing.assert_allclose(info["long"]["top_weights"], weights["long"][0, :2])
    info7 = store.explain(107)
    assert info7["short"]["top_items"] == [item_ids[j] for j in top["short"][7]]
    assert info7["short"]["answer"] == "short answer 7 ✓"
    with pytest.raises(KeyError, match="session id 5 is not in intent store"):
        store.explain(5)


# --------------------------------------------------------------------------- merging
def _shard(tmp_path: Path, name: str, ids, seed: int, **meta_kw):
    n = len(ids)
    top, weights, answers, raw = _explanations(n, seed=seed)
    intents = _intents(n, seed)
    path = tmp_path / name
    write_store(
        path,
        ids,
        intents,
        _meta(shard=meta_kw.pop("shard", ""), **meta_kw),
        top_items=top,
        top_weights=weights,
        item_ids=np.arange(50),
        answers=answers,
        raw_answers=raw,
    )
    return path, dict(ids=list(ids), intents=intents, top=top, weights=weights, answers=answers, raw=raw)


def test_merge_shards_is_the_union(tmp_path):
    a, da = _shard(tmp_path, "a.safetensors", [f"s{i}" for i in range(0, 10)], seed=1, shard="0/2")
    b, db = _shard(tmp_path, "b.safetensors", [f"s{i}" for i in range(10, 25)], seed=2, shard="1/2")
    out = merge_stores([a, b], tmp_path / "merged.safetensors")
    merged = IntentStore.open(out, num_sessions=25)
    assert merged.metadata.shard == "" and merged.metadata.extra["merged_from"] == ["a.safetensors", "b.safetensors"]
    assert merged.session_ids.tolist() == da["ids"] + db["ids"]
    for p in PERSPECTIVES:
        np.testing.assert_array_equal(
            np.asarray(merged.vectors(p)), np.concatenate([da["intents"][p], db["intents"][p]])
        )
    for data, k in ((da, 3), (db, 4)):
        sid = data["ids"][k]
        info = merged.explain(sid)
        for p in PERSPECTIVES:
            assert info[p]["answer"] == data["answers"][p][k]
            assert info[p]["raw_answer"] == data["raw"][p][k]
            keep = data["top"][p][k] >= 0
            assert info[p]["top_items"] == data["top"][p][k][keep].tolist()
            np.testing.assert_allclose(info[p]["top_weights"], data["weights"][p][k][keep])
        np.testing.assert_array_equal(merged.lookup([sid])["short"].numpy()[0], data["intents"]["short"][k])


def test_merge_duplicate_id_names_it(tmp_path):
    a, _ = _shard(tmp_path, "a.safetensors", ["x", "y", "dup-7"], seed=1)
    b, _ = _shard(tmp_path, "b.safetensors", ["z", "dup-7"], seed=2)
    with pytest.raises(StoreError, match=r"duplicate session ids across shards.*dup-7"):
        merge_stores([a, b], tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize(
    "field,value",
    [
        ("text_dim", None),
        ("text_encoder", "other"),
        ("catalogue_sha256", "e" * 64),
        ("sessions_sha256", "f" * 64),
        ("top_f", 5),
        ("llm", "other-llm"),
    ],
)
def test_merge_different_settings_is_mismatch(tmp_path, field, value):
    a, _ = _shard(tmp_path, "a.safetensors", [1, 2, 3], seed=1)
    if field == "text_dim":
        other = {p: np.zeros((2, 8), np.float32) for p in PERSPECTIVES}
        b = write_store(tmp_path / "b.safetensors", [4, 5], other, _meta(text_dim=8))
    else:
        b, _ = _shard(tmp_path, "b.safetensors", [4, 5], seed=2, **{field: value})
    with pytest.raises(StoreMismatchError, match=rf"{field} differs"):
        merge_stores([a, b], tmp_path / "m.safetensors")


def test_merge_different_catalogue_ids_is_mismatch(tmp_path):
    a, _ = _shard(tmp_path, "a.safetensors", [1, 2], seed=1)
    top, weights, _, _ = _explanations(2, seed=3)
    b = write_store(
        tmp_path / "b.safetensors",
        [3, 4],
        _intents(2),
        _meta(),
        top_items=top,
        top_weights=weights,
        item_ids=np.arange(50) + 1,
    )
    with pytest.raises(StoreMismatchError, match="item_ids differ"):
        merge_stores([a, b], tmp_path / "m.safetensors")


# --------------------------------------------------------------------------- the documented format
def _doc_example() -> str:
    doc = Path(llm4sbr_adapter.__file__).resolve().parents[1] / "docs" / "store-format.md"
    if not doc.is_file():
        pytest.fail(f"{doc} is missing")
    match = re.search(
        r"<!-- store-example: begin.*?-->\s*```python\n(.*?)```\s*<!-- store-example: end -->",
        doc.read_text(encoding="utf-8"),
        re.S,
    )
    assert match, "docs/store-format.md has no store-example block"
    return match.group(1)


def test_documented_example_writes_a_valid_store(tmp_path, monkeypatch):
    """Runs the numpy + safetensors example from docs/store-format.md and opens its output."""
    code = _doc_example()
    assert "llm4sbr_adapter" not in code
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "docs/store-format.md", "exec"), namespace)
    store = IntentStore.open(
        tmp_path / "example_store.safetensors",
        perspectives=["long", "short"],
        text_dim=8,
        num_sessions=3,
        text_encoder="my-encoder",
    )
    assert store.session_ids.tolist() == ["s-001", "s-002", "s-003"]
    assert store.metadata.top_f == 2 and store.metadata.sessions_source == "sessions.tsv"
    out = store.lookup(["s-003", "s-001"])
    item_vecs = namespace["item_vecs"]
    np.testing.assert_allclose(out["long"][0].numpy(), item_vecs[2], atol=1e-6)  # weight 1.0 on item 103
    np.testing.assert_allclose(out["short"][1].numpy(), 0.7 * item_vecs[0] + 0.3 * item_vecs[2], atol=1e-6)
    info = store.explain("s-003")
    assert info["long"]["top_items"] == [103] and info["long"]["top_weights"] == [1.0]
    assert info["short"]["answer"] == "spf 50"
    assert store.explain("s-001")["long"]["top_items"] == [101, 103]
    for p in ("long", "short"):
        assert store.vectors(p).flags.aligned
    # the reference writer produces the same readable content
    write_store(
        tmp_path / "ref.safetensors",
        ["s-001", "s-002", "s-003"],
        {p: np.asarray(store.vectors(p)) for p in ("long", "short")},
        StoreMetadata(perspectives=["long", "short"], text_dim=8, top_f=2),
    )
    ref = IntentStore.open(tmp_path / "ref.safetensors")
    torch.testing.assert_close(ref.lookup(["s-002"])["short"], store.lookup(["s-002"])["short"])


# --------------------------------------------------------------------------- untrusted headers and content
def _full_store(path: Path, dtype: str = "float32") -> Path:
    """A store with every optional column: int ids 100..139, 50 catalogue items."""
    top, weights, answers, raw = _explanations(40)
    _write_int_store(
        path,
        dtype=dtype,
        top_items=top,
        top_weights=weights,
        item_ids=np.arange(50) + 1000,
        answers=answers,
        raw_answers=raw,
    )
    return path


def _split(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + header_len]), raw[8 + header_len :]


def _join(path: Path, header: dict, data: bytes) -> None:
    head = json.dumps(header).encode("utf-8")
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head + data)


def _edit_meta(path: Path, **fields) -> None:
    header, data = _split(path)
    meta = json.loads(header["__metadata__"]["llm4sbr"])
    meta.update(fields)
    header["__metadata__"]["llm4sbr"] = json.dumps(meta)
    _join(path, header, data)


def _poke(path: Path, tensor: str, index: tuple, value) -> None:
    """Overwrite one element of a stored tensor in place."""
    header, data = _split(path)
    info = header[tensor]
    dtype = np.dtype({"F32": np.float32, "F16": np.float16, "I64": np.int64}[info["dtype"]])
    begin, end = info["data_offsets"]
    arr = np.frombuffer(data[begin:end], dtype=dtype).reshape(info["shape"]).copy()
    arr[index] = value
    _join(path, header, data[:begin] + arr.tobytes() + data[end:])


def _refused(path: Path, *needles: str, cls=StoreError) -> str:
    with pytest.raises(cls) as info:
        IntentStore.open(path)
    text = str(info.value)
    assert "\n" not in text, f"error is not one line: {text!r}"
    assert str(path) in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


def _last_tensor(header: dict) -> str:
    return max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])


def _shift(header: dict, name: str, by: int) -> None:
    header[name]["data_offsets"] = [o + by for o in header[name]["data_offsets"]]


def _damage_dtype(header, data):
    header["session_ids"]["dtype"] = "F64"  # same width: before, read as floats and silently cast back
    return "session_ids", header, data


def _damage_weights_dtype(header, data):
    header["top_weights.long"]["dtype"] = "I32"
    return "top_weights.long", header, data


def _damage_unknown_dtype(header, data):
    header["item_ids"]["dtype"] = "X64"
    return "item_ids", header, data


def _damage_shifted(header, data):
    _shift(header, "top_items.short", 8)
    return "top_items.short", header, data


def _damage_overlap(header, data):
    header["intent.short"]["data_offsets"] = list(header["intent.long"]["data_offsets"])
    return "intent.short", header, data


def _damage_gap(header, data):
    name = _last_tensor(header)
    begin = header[name]["data_offsets"][0]
    _shift(header, name, 8)
    return name, header, data[:begin] + b"\0" * 8 + data[begin:]


def _damage_trailing(header, data):
    return "data buffer", header, data + b"\0" * 8


def _damage_past_end(header, data):
    return _last_tensor(header), header, data[:-8]


def _damage_longer_than_shape(header, data):
    header["top_items.long"]["shape"] = [40, 2]  # 40*3*8 bytes declared
    return "top_items.long", header, data


def _damage_shorter_than_shape(header, data):
    header["top_items.long"]["shape"] = [40, 4]
    return "top_items.long", header, data


def _damage_reversed(header, data):
    header["item_ids"]["data_offsets"] = header["item_ids"]["data_offsets"][::-1]
    return "item_ids", header, data


def _damage_float_offset(header, data):
    header["item_ids"]["data_offsets"] = [float(o) for o in header["item_ids"]["data_offsets"]]
    return "item_ids", header, data


def _damage_wrong_intent_dtype(header, data):
    meta = json.loads(header["__metadata__"]["llm4sbr"])
    meta["dtype"] = "float16"  # the tensors are F32
    header["__metadata__"]["llm4sbr"] = json.dumps(meta)
    return "intent.long", header, data


def _damage_string_offsets(header, data):
    info = header["answer.long.offsets"]
    begin, end = info["data_offsets"]
    offs = np.frombuffer(data[begin:end], dtype=np.int64).copy()
    offs[5] = offs[7]  # not monotonic: strings 5 and 6 run backwards
    return "answer.long.offsets", header, data[:begin] + offs.tobytes() + data[end:]


def _damage_weights_without_items(header, data):
    header["top_items.tmp"] = header.pop("top_items.short")  # an unknown name now: .short has weights only
    return "top_weights.short", header, data


def _damage_duplicate_ids(header, data):
    begin, end = header["session_ids"]["data_offsets"]
    ids = np.frombuffer(data[begin:end], dtype=np.int64).copy()
    ids[9] = ids[3]
    return "session_ids", header, data[:begin] + ids.tobytes() + data[end:]


@pytest.mark.parametrize(
    "damage",
    [
        _damage_dtype,
        _damage_weights_dtype,
        _damage_unknown_dtype,
        _damage_shifted,
        _damage_overlap,
        _damage_gap,
        _damage_trailing,
        _damage_past_end,
        _damage_longer_than_shape,
        _damage_shorter_than_shape,
        _damage_reversed,
        _damage_float_offset,
        _damage_wrong_intent_dtype,
        _damage_string_offsets,
        _damage_weights_without_items,
        _damage_duplicate_ids,
    ],
    ids=lambda f: f.__name__[len("_damage_") :],
)
@pytest.mark.parametrize("mmap", [True, False])
def test_untrusted_header_is_refused_naming_file_and_tensor(tmp_path, damage, mmap):
    path = _full_store(tmp_path / "s.safetensors")
    header, data = _split(path)
    name, header, data = damage(header, data)
    _join(path, header, data)
    with pytest.raises(StoreError) as info:
        IntentStore.open(path, mmap=mmap)
    text = str(info.value)
    assert "\n" not in text and str(path) in text and name in text, text


def test_header_that_is_not_an_object_is_refused(tmp_path):
    path = tmp_path / "s.safetensors"
    head = b"[1, 2]  "
    path.write_bytes(struct.pack("<Q", len(head)) + head)
    _refused(path, "header")


def test_valid_store_with_every_column_opens(tmp_path):
    """The checks above must not refuse what the writer produces (float16 too)."""
    for dtype in ("float32", "float16"):
        store = IntentStore.open(_full_store(tmp_path / f"{dtype}.safetensors", dtype=dtype))
        assert store.explain(104)["long"]["answer"] == "long answer 4 ✓"


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_intent_row_is_refused_on_open(tmp_path, dtype, value):
    path = _full_store(tmp_path / "s.safetensors", dtype=dtype)
    _poke(path, "intent.short", (7, 3), value)
    _poke(path, "intent.short", (30, 0), value)
    _refused(path, "'intent.short'", "row 7", "session id 107")


def test_non_finite_top_weight_is_refused_on_open(tmp_path):
    path = _full_store(tmp_path / "s.safetensors")
    _poke(path, "top_weights.long", (12, 1), np.nan)
    _refused(path, "'top_weights.long'", "row 12", "session id 112")


def test_write_refuses_non_finite_intents(tmp_path):
    intents = _intents(5)
    intents["short"][2, 4] = np.nan
    with pytest.raises(StoreError, match=r"intent 'short'.*row 2.*session id 'c'"):
        write_store(tmp_path / "a.safetensors", list("abcde"), intents, _meta())
    intents = _intents(5)
    intents["long"][3, 0] = 1e6  # finite in float32, inf in float16
    write_store(tmp_path / "ok.safetensors", list("abcde"), intents, _meta())
    with pytest.raises(StoreError, match=r"intent 'long'.*row 3.*float16"):
        write_store(tmp_path / "b.safetensors", list("abcde"), intents, _meta(), dtype="float16")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.safetensors"]


@pytest.mark.parametrize("value", [50, 10**12, -2])
def test_top_items_outside_the_catalogue_are_refused(tmp_path, value):
    """50 items: 50 raised a bare IndexError in explain(), -2 silently named the wrong item."""
    path = _full_store(tmp_path / "s.safetensors")
    _poke(path, "top_items.long", (4, 1), value)
    _refused(path, "'top_items.long'", "row 4", "session id 104", "50 items")


def test_top_items_without_item_ids_are_refused(tmp_path):
    path = _full_store(tmp_path / "s.safetensors")
    header, data = _split(path)
    header["catalogue"] = header.pop("item_ids")  # an unknown tensor now
    _join(path, header, data)
    _refused(path, "item_ids")


@pytest.mark.parametrize(
    "field,value",
    [
        ("text_dim", "16"),
        ("text_dim", 16.0),
        ("text_dim", True),
        ("perspectives", "long"),
        ("perspectives", ["long", 7]),
        ("perspectives", ["long", "long"]),
        ("num_sessions", None),
        ("top_f", "3"),
        ("prompts", ["x"]),
        ("prompts", {"long": 1}),
        ("extra", []),
        ("llm", 3),
        ("dtype", "bfloat16"),
        ("dtype", ["float32"]),
        ("id_kind", "uuid"),
        ("shard", "2/2"),
        ("shard", 3),
        ("format_version", "1"),
        ("format_version", 0),
        ("sessions_sha256", {"a": 1}),
    ],
)
def test_metadata_field_of_the_wrong_type_is_one_line_error(tmp_path, field, value):
    path, _, _ = _write_int_store(tmp_path / "s.safetensors")
    _edit_meta(path, **{field: value})
    _refused(path, f"metadata field {field!r}")


@pytest.mark.parametrize("field", ["format_version", "num_sessions", "dtype", "id_kind"])
def test_metadata_without_a_required_field_is_refused(tmp_path, field):
    path, _, _ = _write_int_store(tmp_path / "s.safetensors")
    header, data = _split(path)
    meta = json.loads(header["__metadata__"]["llm4sbr"])
    del meta[field]
    header["__metadata__"]["llm4sbr"] = json.dumps(meta)
    _join(path, header, data)
    _refused(path, field, "required")


@pytest.mark.parametrize(
    "metadata",
    [
        [1, 2],
        {"llm4sbr": ["not", "a", "string"]},
        {"llm4sbr": "[1, 2]"},
        {"llm4sbr": '"text"'},
        "llm4sbr",
    ],
    ids=["list", "value-list", "json-list", "json-string", "string"],
)
def test_metadata_that_is_not_an_object_is_refused(tmp_path, metadata):
    path, _, _ = _write_int_store(tmp_path / "s.safetensors")
    header, data = _split(path)
    header["__metadata__"] = metadata
    _join(path, header, data)
    _refused(path, "metadata")


def test_write_refuses_metadata_it_could_not_read_back(tmp_path):
    with pytest.raises(StoreError, match=r"metadata field 'shard'"):
        write_store(tmp_path / "a.safetensors", [1, 2], _intents(2), _meta(shard="2/2"))
    with pytest.raises(StoreError, match=r"metadata field 'top_f'"):
        write_store(tmp_path / "a.safetensors", [1, 2], _intents(2), _meta(top_f="3"))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "shards,needle",
    [
        (["0/3", "2/3"], "missing shard(s) [1]"),
        (["1/2"], "missing shard(s) [0]"),
        (["0/2", "0/2"], "shard 0 given 2 times"),
        (["0/2", "1/2", "1/2"], "shard 1 given 2 times"),
        (["0/2", "1/3", "2/3"], "shard counts differ"),
        (["0/2", ""], "not a shard"),
    ],
)
def test_merge_refuses_an_incomplete_shard_set(tmp_path, shards, needle):
    paths = [
        _shard(tmp_path, f"p{i}.safetensors", [f"s{i}-{j}" for j in range(3)], seed=i, shard=s)[0]
        for i, s in enumerate(shards)
    ]
    with pytest.raises(StoreError) as info:
        merge_stores(paths, tmp_path / "m.safetensors")
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "m.safetensors").exists()


def test_merge_of_complete_shards_in_any_order_and_of_whole_stores(tmp_path):
    paths = [
        _shard(tmp_path, f"p{k}.safetensors", [f"s{k}-{j}" for j in range(3)], seed=k, shard=f"{k}/3")[0]
        for k in range(3)
    ]
    merged = IntentStore.open(merge_stores([paths[2], paths[0], paths[1]], tmp_path / "m.safetensors"))
    assert len(merged) == 9 and merged.metadata.shard == ""
    whole = [_shard(tmp_path, f"w{k}.safetensors", [f"w{k}-{j}" for j in range(2)], seed=k)[0] for k in range(2)]
    assert len(IntentStore.open(merge_stores(whole, tmp_path / "w.safetensors"))) == 4


@pytest.mark.parametrize("bad", [3, -2])
def test_open_refuses_top_items_outside_the_catalogue(tmp_path, bad):
    """Top-f rows written by another tool must index the store's own item ids (or be -1)."""
    raw = json.loads(_meta(perspectives=["long"]).to_json())
    raw.update(num_sessions=2, id_kind="int", top_f=1)
    save_file(
        {
            "intent.long": np.zeros((2, D), np.float32),
            "session_ids": np.array([1, 2], np.int64),
            "item_ids": np.array([7, 8, 9], np.int64),
            "top_items.long": np.array([[-1], [bad]], np.int64),
        },
        str(tmp_path / "top.safetensors"),
        metadata={"llm4sbr": json.dumps(raw)},
    )
    with pytest.raises(StoreError, match=r"outside the catalogue of 3 items \(0..2, or -1 for none\)"):
        IntentStore.open(tmp_path / "top.safetensors")


def test_array_digests_ignore_metadata_but_not_arrays(tmp_path):
    meta = StoreMetadata(perspectives=["long"], text_dim=2, llm="model-a", created_at="2026-01-01")
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    a = write_store(tmp_path / "a.safetensors", [1, 2], {"long": vectors}, meta, answers={"long": ["x", "y"]})
    b = write_store(
        tmp_path / "b.safetensors",
        [1, 2],
        {"long": vectors},
        dataclasses.replace(meta, llm="replay:file"),
        answers={"long": ["x", "y"]},
    )
    c = write_store(tmp_path / "c.safetensors", [1, 2], {"long": vectors}, meta, answers={"long": ["x", "z"]})
    assert array_digests(a) == array_digests(b)
    assert array_digests(a) != array_digests(c)
    assert set(array_digests(a)) == {"session_ids", "intents.long", "answers.long"}
